// Net: HTTP requests and e-mail. Failures are reported as result codes, never thrown; only the
// count limits throw, at call time, as Voximplant does.
"use strict";
(function (global) {
  const vox = global.__vox;
  const pending = new Map(); // id -> function(result)
  let httpOutstanding = 0;
  let mailOutstanding = 0;

  function headerPairs(headers) {
    const pairs = [];
    if (Array.isArray(headers)) {
      // Legacy form: ["User-Agent: VoxImplant", ...]
      for (const line of headers) {
        const text = String(line);
        const colon = text.indexOf(":");
        if (colon > 0) pairs.push([text.slice(0, colon).trim(), text.slice(colon + 1).trim()]);
      }
    } else if (headers !== null && typeof headers === "object") {
      for (const key of Object.keys(headers)) pairs.push([key, String(headers[key])]);
    }
    return pairs;
  }

  function seconds(value, max) {
    const n = Number(value);
    return Number.isFinite(n) && n > 0 ? Math.min(n, max) : max;
  }

  function startHttp(url, options, done) {
    if (httpOutstanding >= vox.limits.httpTotal) {
      throw new Error("Exceeded the HTTP connection count limit!");
    }
    const opts = options || {};
    const id = vox.newId();
    let body = null;
    if (typeof opts.postData === "string") body = { text: opts.postData };
    else if (Array.isArray(opts.postData)) body = { bytes: opts.postData.map((b) => Number(b) & 255) };
    else if (opts.postData !== undefined && opts.postData !== null) body = { text: String(opts.postData) };
    const params = [];
    if (opts.params !== null && typeof opts.params === "object") {
      for (const key of Object.keys(opts.params)) params.push([key, String(opts.params[key])]);
    }
    httpOutstanding++;
    pending.set(id, (result) => {
      httpOutstanding--;
      done(result);
    });
    vox.send({
      op: "http",
      id,
      url: String(url),
      method: String(opts.method || "GET").toUpperCase(),
      headers: headerPairs(opts.headers),
      body,
      params,
      rawOutput: !!opts.rawOutput,
      timeout: seconds(opts.timeout, vox.limits.httpTimeoutS),
      connectTimeout: seconds(opts.connectionTimeout, vox.limits.httpConnectTimeoutS),
      systemLog: !!opts.enableSystemLog,
    });
  }

  function startMail(server, from, to, title, body, options, done) {
    if (mailOutstanding >= vox.limits.smtpTotal) {
      throw new Error("Exceeded the SMTP connection count limit!");
    }
    const opts = options || {};
    const list = (v) => (v === undefined || v === null ? [] : (Array.isArray(v) ? v : [v]).map(String));
    const id = vox.newId();
    mailOutstanding++;
    pending.set(id, (result) => {
      mailOutstanding--;
      done(result);
    });
    vox.send({
      op: "mail",
      id,
      server: String(server),
      from: String(from),
      to: list(to),
      cc: list(opts.cc),
      bcc: list(opts.bcc),
      title: String(title),
      body: String(body),
      html: opts.html === undefined || opts.html === null ? null : String(opts.html),
      port: opts.port === undefined ? null : Number(opts.port),
      login: opts.login === undefined ? null : String(opts.login),
      password: opts.password === undefined ? null : String(opts.password),
    });
  }

  vox.handlers.result = (event) => {
    const done = pending.get(event.id);
    if (done === undefined) return;
    pending.delete(event.id);
    done(event.result);
  };

  const callbackOrNothing = (callback) => (typeof callback === "function" ? callback : () => {});

  function HttpRequestOptions() {}
  function HttpRequestResult() {}
  function SendMailOptions() {}
  function SendMailResult() {}

  global.Net = {
    httpRequest(url, callback, options) {
      startHttp(url, options, callbackOrNothing(callback));
    },
    httpRequestAsync(url, options) {
      return new Promise((resolve) => startHttp(url, options, resolve));
    },
    sendMail(server, from, to, title, body, callback, options) {
      startMail(server, from, to, title, body, options, callbackOrNothing(callback));
    },
    sendMailAsync(server, from, to, title, body, options) {
      return new Promise((resolve) => startMail(server, from, to, title, body, options, resolve));
    },
    HttpRequestOptions,
    HttpRequestResult,
    SendMailOptions,
    SendMailResult,
  };
})(globalThis);
