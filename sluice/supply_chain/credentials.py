"""Registry credentials from docker's `config.json`, as the docker CLI, cosign and skopeo find them.

Inline `auth` (base64 user:password) or `username`/`password`, per-registry `credHelpers`, and
the `credsStore` fallback (the `docker-credential-<helper> get` protocol). Identity tokens are
refused rather than half-supported. Only username/password pairs come out of here; where they may
be sent is sluice.supply_chain.transport's business.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from sluice.errors import SluiceError
from sluice.supply_chain.refs import DOCKER_HUB, DOCKER_HUB_API


def _docker_config_path(path: str | None) -> Path | None:
    if path:
        candidate = Path(path)
        if candidate.is_dir():
            candidate = candidate / "config.json"
        if not candidate.is_file():
            raise SluiceError(f"docker config not found: {candidate}")
        return candidate
    base = os.environ.get("DOCKER_CONFIG")
    candidate = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    return candidate if candidate.is_file() else None


def _normalise_server(key: str) -> str:
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", DOCKER_HUB_API) else host


def _credential_helper(helper: str, server: str) -> tuple[str, str] | None:
    binary = shutil.which(f"docker-credential-{helper}")
    if not binary:
        raise SluiceError(
            f"docker config names credential helper {helper!r} but docker-credential-{helper} is not on PATH"
        )
    lookup = "https://index.docker.io/v1/" if server == DOCKER_HUB else server
    proc = subprocess.run(
        [binary, "get"], input=lookup, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise SluiceError(
            f"docker-credential-{helper} failed for {server}: {(proc.stderr or proc.stdout).strip()[:200]}"
        )
    try:
        doc = json.loads(proc.stdout)
        username, secret = doc["Username"], doc["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SluiceError(f"docker-credential-{helper} returned no Username/Secret for {server}") from exc
    if username == "<token>":
        raise SluiceError(
            f"docker-credential-{helper} returned an identity token for {server}; not supported"
        )
    return username, secret


def find_credentials(registry: str, docker_config: str | None = None) -> tuple[str, str] | None:
    """(username, password) for `registry` from docker's config.json, or None for anonymous access."""
    path = _docker_config_path(docker_config)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SluiceError(f"docker config {path} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise SluiceError(f"docker config {path} is not a JSON object")
    server = _normalise_server(registry)
    helpers = config.get("credHelpers") or {}
    for key, helper in helpers.items():
        if _normalise_server(key) == server:
            return _credential_helper(helper, server)
    for key, entry in (config.get("auths") or {}).items():
        if _normalise_server(key) != server or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken") or entry.get("registrytoken"):
            raise SluiceError(
                f"docker config entry for {server} holds a token; only username/password is supported"
            )
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise SluiceError(
                    f"docker config {path}: 'auth' for {server} is not base64 user:password"
                ) from exc
            return user, password
        if entry.get("username") is not None:
            return entry["username"], entry.get("password", "")
    if config.get("credsStore"):
        return _credential_helper(config["credsStore"], server)
    return None
