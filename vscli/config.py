"""The TOML config file and the documented precedence of settings.

For every setting: a command-line flag wins, then a `VSCLI_*` environment variable, then (for the
endpoint and key) the standard `OPENAI_BASE_URL` / `OPENAI_API_KEY`, then the config file, then the
default. The file lives in the platform's user config dir (`VSCLI_CONFIG` overrides the path) and is
written with mode 0600 because it may hold an API key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vscli.errors import InvalidInput
from vscli.workspace import atomic_write_bytes, os_error

CONFIG_ENV = "VSCLI_CONFIG"
SECRET_KEYS = {"api_key", "milvus_token"}


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[str], Any]
    help: str
    env: tuple[str, ...] = ()  # environment variables, highest priority first
    default: Any = None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _temperature(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 2:
        raise ValueError("must be between 0 and 2")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw.rstrip("/")


KEYS: dict[str, Key] = {k.name: k for k in [
    Key("base_url", _url, "chat-completions endpoint, e.g. http://localhost:11434/v1",
        ("VSCLI_BASE_URL", "OPENAI_BASE_URL")),
    Key("api_key", str, "API key sent as a bearer token", ("VSCLI_API_KEY", "OPENAI_API_KEY")),
    Key("model", str, "chat model name", ("VSCLI_MODEL",), "gpt-4o-mini"),
    Key("top_k", _positive_int, "passages retrieved for ask", ("VSCLI_TOP_K",), 5),
    Key("max_context_tokens", _positive_int, "token budget for the passages", ("VSCLI_MAX_CONTEXT_TOKENS",), 3000),
    Key("temperature", _temperature, "sampling temperature (0-2)", ("VSCLI_TEMPERATURE",)),
    Key("max_tokens", _positive_int, "limit on the answer's tokens", ("VSCLI_MAX_TOKENS",)),
    Key("timeout", _positive_float, "seconds the endpoint has for the whole answer", ("VSCLI_TIMEOUT",), 60.0),
    Key("milvus_token", str, "token for Milvus stores (user:password or an API key)", ("VSCLI_MILVUS_TOKEN",)),
]}


def config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("vscli", appauthor=False)) / "config.toml"


def _key(name: str) -> Key:
    if name not in KEYS:
        raise InvalidInput(f"unknown config key {name!r}; known keys: {', '.join(KEYS)}")
    return KEYS[name]


def parse_value(name: str, raw: str) -> Any:
    try:
        return _key(name).parse(raw)
    except ValueError as exc:
        raise InvalidInput(f"invalid value for {name}: {raw!r} ({exc})") from None


def load() -> dict[str, Any]:
    import tomllib

    path = config_path()
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"cannot parse config file {path}: {exc}") from None
    except OSError as exc:
        raise os_error("read", path, exc) from exc


def _save(values: dict[str, Any]) -> None:
    import tomli_w

    path = config_path()
    try:
        atomic_write_bytes(path, tomli_w.dumps(values).encode("utf-8"))  # mkstemp: mode 0600
        os.chmod(path, 0o600)
    except OSError as exc:
        raise os_error("write", path, exc) from exc


def set_value(name: str, raw: str) -> Any:
    values = load()
    values[name] = parse_value(name, raw)
    _save(values)
    return values[name]


def unset_value(name: str) -> bool:
    _key(name)
    values = load()
    if name not in values:
        return False
    del values[name]
    _save(values)
    return True


def get_value(name: str) -> Any:
    _key(name)
    return load().get(name)


def mask(name: str, value: Any) -> Any:
    if name in SECRET_KEYS and isinstance(value, str) and value:
        return value[:3] + "..." + value[-4:] if len(value) > 12 else "****"
    return value


def _lookup(name: str, flags: dict[str, Any], file_values: dict[str, Any]) -> tuple[Any, str]:
    """One setting's winning value and where it came from."""
    key = KEYS[name]
    if flags.get(name) is not None:
        return flags[name], "flag"
    for env in key.env:
        raw = os.environ.get(env)
        if raw:
            try:
                return key.parse(raw), f"env {env}"
            except ValueError as exc:
                raise InvalidInput(f"invalid value in {env}: {raw!r} ({exc})") from None
    if name in file_values:
        return file_values[name], "config file"
    return key.default, "default"


def value(name: str, flag: Any = None) -> Any:
    """One setting's winning value: the flag, its environment variables, the config file, the default."""
    return _lookup(name, {name: flag}, load())[0]


def resolve(flags: dict[str, Any]) -> dict[str, Any]:
    """Every setting with its winning value: flag > VSCLI_* env > OPENAI_* env > config file > default."""
    file_values = load()
    return {name: _lookup(name, flags, file_values)[0] for name in KEYS}


def explain() -> list[dict[str, Any]]:
    """Each key's effective value (without flags) and its source, for `vscli config list`."""
    file_values = load()
    rows = []
    for name in KEYS:
        value, source = _lookup(name, {}, file_values)
        rows.append({"key": name, "value": value, "source": source if value is not None else "not set"})
    return rows
