"""The JS prelude every session runs before its scenarios, compiled to bytecode once per process.

The prelude is one file per part of the API (engine/js/); values shared with Python (limits, the
names of the symbol table, the cloud modules) are written into the sources here, so each is
defined once.
"""

from __future__ import annotations

import json
from importlib import resources

from appliance.engine import limits, symbols

FILES = (
    "core.js", "symbols.js", "call.js", "media.js", "player.js", "recorder.js", "asr.js", "websocket.js",
    "voxengine.js", "easyprocess.js", "timers.js", "logger.js", "net.js", "storage.js", "utils.js",
)
PREFIX = "voxengine/"  # file names of prelude code in stack traces


def sources() -> list[tuple[str, str]]:
    """(file name, source) of each prelude file, in the order they run."""
    fills = {
        "/*LIMITS*/ {}": json.dumps(limits.FOR_JS),
        "/*SYMBOL_NAMES*/ []": json.dumps(symbols.top_level_names()),
        "/*CLOUD_MODULES*/ {}": json.dumps(symbols.CLOUD_MODULES),
    }
    out = []
    folder = resources.files("appliance.engine") / "js"
    for name in FILES:
        text = (folder / name).read_text(encoding="utf-8")
        for placeholder, value in fills.items():
            text = text.replace(placeholder, value)
        out.append((PREFIX + name, text))
    return out
