// ApplicationStorage: the application's persistent key-value store. Every method returns a Promise.
"use strict";
(function (global) {
  const vox = global.__vox;
  const pending = new Map(); // id -> {resolve, reject}

  function call(method, args) {
    return new Promise((resolve, reject) => {
      const id = vox.newId();
      pending.set(id, { resolve, reject });
      vox.send({ op: "storage", id, method, ...args });
    });
  }

  function checkKey(key) {
    const text = String(key);
    if (text.length === 0 || text.length > vox.limits.storageKeyChars) {
      throw new RangeError(`a storage key must have 1 to ${vox.limits.storageKeyChars} characters`);
    }
    return text;
  }

  vox.handlers.storage = (event) => {
    const p = pending.get(event.id);
    if (p === undefined) return;
    pending.delete(event.id);
    if (event.error !== undefined) p.reject(new Error(event.error));
    else p.resolve(event.value);
  };

  global.ApplicationStorage = {
    get(key) {
      return Promise.resolve().then(() => call("get", { key: checkKey(key) }));
    },
    put(key, value, ttl) {
      return Promise.resolve().then(() => {
        const text = String(value);
        if (text.length > vox.limits.storageValueChars) {
          throw new RangeError(`a storage value must have at most ${vox.limits.storageValueChars} characters`);
        }
        const seconds = ttl === undefined ? 0 : Number(ttl);
        if (!Number.isFinite(seconds) || seconds < 0 || seconds > vox.limits.storageTtlMax) {
          throw new RangeError(`ttl must be between 0 and ${vox.limits.storageTtlMax} seconds`);
        }
        return call("put", { key: checkKey(key), value: text, ttl: seconds });
      });
    },
    remove(key) {
      return Promise.resolve().then(() => call("remove", { key: checkKey(key) }));
    },
    keys(pattern, count) {
      return call("keys", {
        pattern: pattern === undefined || pattern === null ? null : String(pattern),
        count: count === undefined ? 1000 : Number(count),
      });
    },
  };
})(globalThis);
