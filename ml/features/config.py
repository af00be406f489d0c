"""Which feature store a command talks to: `feature_store.<env>.yaml`, variables filled in, checked.

Feast runs `os.path.expandvars` over its YAML and keeps an unset `${NAME}` as literal text, which
then fails far away (an authentication error, an unresolvable host). Sluice fills the variables in
itself and refuses, naming the variable, when one is unset. The local file's only variable,
`SLUICE_FEATURE_HOME`, is the `features/` folder of the Sluice home.

Variables are filled in after the YAML is parsed, value by value, so a password with YAML syntax in
it stays a string. `online` replaces the file's online store by a Redis one
(`HOST:PORT[,password=...]`): how a laptop or the test session points the same repository at a
real Redis. `need_online=False` (plan) replaces it by a scratch SQLite file, so planning needs
neither the online store nor its password: a pull request's check holds only a read-only
registry credential.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import SluiceError

HERE = Path(__file__).resolve().parent
ENVIRONMENTS = ("local", "cluster")
HOME_VARIABLE = "SLUICE_FEATURE_HOME"
REDIS_ENV = "SLUICE_FEATURE_REDIS"  # HOST:PORT[,password=...]: the online store `--online` defaults to
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_path(env: str) -> Path:
    if env not in ENVIRONMENTS:
        raise SluiceError(f"unknown feature store environment {env!r} (one of: {', '.join(ENVIRONMENTS)})")
    return HERE / f"feature_store.{env}.yaml"


def expand(node: Any, variables: dict[str, str], origin: Path) -> Any:
    """Every `${NAME}` in every string of a parsed document replaced; an unset one refused by name."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise SluiceError(f"{origin}: variable {name} is not set (export it, or use the local store)")
        return variables[name]

    if isinstance(node, dict):
        return {key: expand(item, variables, origin) for key, item in node.items()}
    if isinstance(node, list):
        return [expand(item, variables, origin) for item in node]
    return _VARIABLE.sub(value, node) if isinstance(node, str) else node


@dataclass(frozen=True)
class StoreConfig:
    """A parsed feature_store.yaml, plus where the local registry and online database live."""

    doc: dict[str, Any]
    home: Path
    origin: Path

    @property
    def online_type(self) -> str:
        return str(self.doc.get("online_store", {}).get("type", "sqlite"))

    @property
    def redis_address(self) -> str | None:
        if self.online_type != "redis":
            return None
        return str(self.doc["online_store"]["connection_string"]).split(",", 1)[0]

    @property
    def registry_file(self) -> Path | None:
        registry = self.doc.get("registry", {})
        if isinstance(registry, dict) and registry.get("registry_type", "file") == "file":
            return Path(registry["path"])
        return None

    def repo_config(self) -> Any:
        from feast.repo_config import RepoConfig

        return RepoConfig(**self.doc, repo_path=str(self.home))


def load(
    env: str = "local",
    home: str | Path = ".sluice/features",
    online: str | None = None,
    need_online: bool = True,
) -> StoreConfig:
    origin = config_path(env)
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load(origin.read_text())
    online = online or os.environ.get(REDIS_ENV)
    if not need_online:
        doc["online_store"] = {"type": "sqlite", "path": str(home / "plan-online.db")}
    elif online:
        doc["online_store"] = {"type": "redis", "connection_string": online}
    doc = expand(doc, {**os.environ, HOME_VARIABLE: str(home)}, origin)
    return StoreConfig(doc, home, origin)


def check_online_reachable(config: StoreConfig, timeout: float = 3.0) -> None:
    """Redis unreachable is a usage error before anything is registered or written, naming the address."""
    address = config.redis_address
    if address is None:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise SluiceError(f"online store Redis at {address} is unreachable ({exc})") from exc
