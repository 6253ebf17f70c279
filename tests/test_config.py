"""The configuration file: defaults, overrides, and refusals that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import DEFAULT_DATA_DIR, SIM_DATA_DIR, Config, load_config, parse_address
from appliance.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voxgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file() -> None:
    config = load_config(None)
    assert config.appliance.name == "voxgate"
    assert config.appliance.data_dir == ""
    assert config.http.listen == "0.0.0.0:8080"
    assert config.http.public_url == ""
    assert 1 <= config.engine.workers <= 4
    assert config.log.level == "info"
    assert config.data_dir(sim=True) == SIM_DATA_DIR
    assert config.data_dir(sim=False) == DEFAULT_DATA_DIR


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")) == Config()


def test_file_overrides_defaults(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = _write(
        tmp_path,
        f"""
[appliance]
name = "box-7"
data_dir = "{data_dir}"

[http]
listen = "127.0.0.1:9090"
public_url = "https://gw.example.com"

[engine]
workers = 7

[log]
level = "DEBUG"
""",
    )
    config = load_config(path)
    assert config.appliance.name == "box-7"
    assert config.http.listen == "127.0.0.1:9090"
    assert config.http.public_url == "https://gw.example.com"
    assert config.engine.workers == 7
    assert config.log.level == "DEBUG"
    assert config.data_dir(sim=True) == data_dir
    assert config.data_dir(sim=False) == data_dir


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, '[http]\nlisten = "[::1]:8443"\n'))
    assert config.http.listen == "[::1]:8443"
    assert config.http.public_url == ""
    assert config.appliance.name == "voxgate"
    assert config.log.level == "info"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[bogus]\nx = 1\n", ["[bogus]"]),
        ('[http]\nlisten = "0.0.0.0:1"\nlisen = "x"\n', ["'lisen'", "[http]"]),
        ('[engine]\nworkers = "4"\n', ["[engine].workers", "expected int", "got str"]),
        ("[engine]\nworkers = 2.0\n", ["[engine].workers", "expected int", "got float"]),
        ("[engine]\nworkers = true\n", ["[engine].workers", "expected int", "got bool"]),
        ("[engine]\nworkers = 0\n", ["[engine].workers"]),
        ("[appliance]\nname = 5\n", ["[appliance].name", "expected str"]),
        ('[http]\nlisten = "localhost"\n', ["[http].listen", "'localhost'"]),
        ('[http]\nlisten = "0.0.0.0:70000"\n', ["[http].listen"]),
        ('[http]\nlisten = "0.0.0.0:http"\n', ["[http].listen"]),
        ('[log]\nlevel = "verbose"\n', ["[log].level"]),
        ("http = 5\n", ["http"]),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, names: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_bad_toml_syntax(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http\nlisten = \n")
    with pytest.raises(ConfigError, match="line 1"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such file") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("example.com:65535", ("example.com", 65535)),
        ("[::1]:5060", ("::1", 5060)),
        ("[::]:80", ("::", 80)),
        (":8080", ("0.0.0.0", 8080)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, "--http") == expected


@pytest.mark.parametrize(
    "text",
    ["", "8080", "host", "host:", "host:65536", "host:-1", "host:80a", "[::1]", "1.2.3.4: 80", "host:+80",
     "::1:80", "[::1:80", "::1]:80", "[]:80", "[[::1]]:80"],
)
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_address(text, "--http")
    assert str(info.value).startswith("--http:")
    assert repr(text) in str(info.value)
