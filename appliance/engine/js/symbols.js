// Every name of the VoxEngine API that this file does not implement elsewhere: enums, voice and
// ASR constants, cloud-only namespaces. Each top-level name is built on first use from the symbol
// table (Python's engine/symbols.py), so a session pays only for the names it touches.
"use strict";
(function (global) {
  const vox = global.__vox;
  const names = /*SYMBOL_NAMES*/ [];

  // A function that throws (a cloud-only feature, or one this version does not have yet).
  function refusing(message) {
    return function () {
      throw new Error(message);
    };
  }

  function build(value, parent) {
    if (value === null || typeof value !== "object") return value;
    if (value.$throw !== undefined) return refusing(value.$throw);
    if (value.$chain !== undefined) {
      return function () {
        return parent;
      };
    }
    const out = {};
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item !== null && typeof item === "object" && item.$lazy !== undefined) {
        vox.lazy(out, key, () => build(vox.host("symbols", item.$lazy), out));
      } else {
        out[key] = build(item, out);
      }
    }
    return out;
  }

  for (const name of names) {
    vox.lazy(global, name, () => build(vox.host("symbols", name), global));
  }
})(globalThis);
