// Global utilities: bytes and strings, base64, Crypto, uuidgen, getLocalTime, levenshtein_distance.
"use strict";
(function (global) {
  const vox = global.__vox;

  global.str2bytes = (data, encoding) => vox.host("encode", String(data), encoding || "utf-8");
  global.bytes2str = (data, encoding) => vox.host("decode", Array.from(data || []), encoding || "utf-8");
  global.bytes2hex = (data, upper) => {
    const hex = Array.from(data || [], (b) => ((Number(b) & 255) + 256).toString(16).slice(1)).join("");
    return upper ? hex.toUpperCase() : hex;
  };
  global.hex2bytes = (data) => {
    const text = String(data);
    if (text.length % 2 !== 0 || /[^0-9a-fA-F]/.test(text)) throw new TypeError("hex2bytes: not a hex string");
    const out = [];
    for (let i = 0; i < text.length; i += 2) out.push(parseInt(text.slice(i, i + 2), 16));
    return out;
  };
  global.base64_encode = (data) =>
    vox.host("base64_encode", Array.isArray(data) ? { bytes: data } : { text: String(data) });
  global.base64_decode = (data) => vox.host("base64_decode", String(data));
  global.uuidgen = () => vox.host("uuid");
  global.PhoneNumber.getInfo = (number, country) => vox.host("phoneInfo", String(number), country ? String(country) : null);

  global.getLocalTime = (timezone, date) => {
    const at = date === undefined ? Date.now() : new Date(date).getTime();
    return new Date(at + vox.host("tzoffset", String(timezone), at));
  };
  global.levenshtein_distance = (a, b) => {
    const s = String(a);
    const t = String(b);
    let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
    for (let i = 1; i <= s.length; i++) {
      const row = [i];
      for (let j = 1; j <= t.length; j++) {
        row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1)));
      }
      prev = row;
    }
    return prev[t.length];
  };

  const text = (data) => (Array.isArray(data) ? data.map(String).join("") : String(data));
  global.Crypto = {
    md5: (data) => vox.host("digest", "md5", text(data)),
    sha1: (data) => vox.host("digest", "sha1", text(data)),
    sha256: (data) => vox.host("digest", "sha256", text(data)),
    hmac_sha256: (key, data) => vox.host("hmac_sha256", String(key), String(data)),
  };
})(globalThis);
