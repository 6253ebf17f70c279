"""The names of the VoxEngine API as trees the JS prelude builds lazily (engine/js/symbols.js).

Sources: data/voxengine-symbols.json (every name of version 28 of the official typings) and
data/legacy-symbols.json (names older scenarios still use). A tree's leaves are values; markers
stand for what JS must make: {"$lazy": path} a sub-namespace built on first use, {"$throw": text} a
function (or constructor) that throws that text, {"$chain": 1} a no-op returning its namespace.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

# Namespaces and classes the prelude implements in JS; the symbol table does not define them.
IMPLEMENTED = frozenset({
    "VoxEngine", "Call", "Conference", "Player", "SequencePlayer", "Recorder", "ASR", "WebSocket", "Net", "Logger",
    "Crypto", "ApplicationStorage",
})

# Cloud features: their functions and classes throw "<feature> is not available on this appliance".
CLOUD_FEATURES = {
    "ACDRequest": "ACD",
    "AI": "Dialogflow",
    "AMD": "Answering machine detection",
    "CCAI": "CCAI",
    "CallList": "CallList",
    "Cartesia": "Cartesia",
    "ElevenLabs": "ElevenLabs",
    "Gemini": "Gemini",
    "OpenAI": "OpenAI",
    "SmartQueueTask": "SmartQueue",
    "StreamingAgent": "RTMP streaming",
    "Ultravox": "Ultravox",
    "VoximplantAPI": "VoximplantAPI",
    "VoximplantApi": "VoximplantAPI",
    "VoximplantAvatar": "Avatar",
    "Yandex": "Yandex",
}
# require(Modules.X) of these logs that the feature is cloud-only.
CLOUD_MODULES = {
    "acd": "ACD",
    "ai": "Dialogflow",
    "avatar": "Avatar",
    "calllist": "CallList",
    "cartesia": "Cartesia",
    "elevenlabs": "ElevenLabs",
    "gemini": "Gemini",
    "openai": "OpenAI",
    "pushservice": "Push notifications",
    "smartqueue": "SmartQueue",
    "streamingagent": "RTMP streaming",
    "ultravox": "Ultravox",
    "voximplantapi": "VoximplantAPI",
    "yandex": "Yandex",
}
# Chainable no-ops (Google Analytics helpers: nothing to send to from a box).
CHAINED = frozenset({"MeasurementProtocol"})
# Enums whose members have no declared value but whose APIs take the member names.
NAMED_BY_MEMBER = frozenset({"ConferenceMode", "ConferenceDirection"})
LAZY_ABOVE = 64  # sub-namespaces with more entries than this are built on first use


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (resources.files("appliance.engine") / "data" / name).read_text(encoding="utf-8")
    )
    return data


def _enum_values(path: str, members: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    numeric = all(isinstance(v, str) and v.isdigit() for v in members.values())
    for member, declared in members.items():
        if declared is None:
            values[member] = member if path in NAMED_BY_MEMBER else f"{path}.{member}"
        elif numeric:
            values[member] = int(declared)  # TypeScript numeric enums (DTMFType, WebSocketCloseCode)
        else:
            values[member] = declared
    return values


def _not_supported(path: str) -> str:
    return f"{path} is not supported by this version of the appliance yet"


@functools.cache
def _full_tree() -> dict[str, Any]:
    symbols = _load("voxengine-symbols.json")
    legacy = _load("legacy-symbols.json")
    root: dict[str, Any] = {}

    def node(path: str) -> dict[str, Any]:
        here = root
        for part in path.split("."):
            here = here.setdefault(part, {})
        return here

    def feature_error(path: str) -> str:
        feature = CLOUD_FEATURES.get(path.split(".", maxsplit=1)[0])
        return f"{feature} is not available on this appliance" if feature else _not_supported(path)

    for path, members in symbols["enums"].items():
        node(path).update(_enum_values(path, members))
    for path, members in legacy["enums"].items():
        node(path).update(_enum_values(path, members))
    for path, names in symbols["namespace_constants"].items():
        node(path).update({n: f"{path}.{n}" for n in names})
    for path, functions in symbols["namespace_functions"].items():
        marker: dict[str, Any] | None = {"$chain": 1} if path in CHAINED else None
        node(path).update({f: marker or {"$throw": feature_error(f"{path}.{f}")} for f in functions})
    for path in symbols["classes"]:
        parent, _, name = path.rpartition(".")
        (node(parent) if parent else root)[name] = {"$throw": feature_error(path)}
    root["VoximplantApi"] = root.get("VoximplantAPI", {})
    for name in IMPLEMENTED:
        root.pop(name, None)
    return root


def _shallow(tree: Any, path: str) -> Any:
    """The tree with big sub-namespaces replaced by $lazy markers."""
    if not isinstance(tree, dict) or any(k.startswith("$") for k in tree):
        return tree
    out = {}
    for key, value in tree.items():
        sub = f"{path}.{key}"
        is_namespace = isinstance(value, dict) and not any(k.startswith("$") for k in value)
        out[key] = {"$lazy": sub} if is_namespace and len(value) > LAZY_ABOVE else _shallow(value, sub)
    return out


def top_level_names() -> list[str]:
    return sorted(_full_tree())


@functools.cache
def tree_json(path: str) -> str:
    """The JSON tree of one dotted path ("CallEvents", "VoiceList.Google"); KeyError if unknown."""
    here: Any = _full_tree()
    for part in path.split("."):
        here = here[part]
    return json.dumps(_shallow(here, path), separators=(",", ":"))
