"""Options and helpers the supply-chain verbs share (`verify`, `sign`, `keygen`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from sluice.errors import SluiceError

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable name


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SluiceError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def password(confirm: bool = False) -> bytes:
    """COSIGN_PASSWORD (may be empty, as with cosign), else a prompt when there is a terminal."""
    value = os.environ.get(PASSWORD_ENV)
    if value is not None:
        return value.encode()
    if not sys.stdin.isatty():
        raise SluiceError(f"set {PASSWORD_ENV} (it may be empty) or run in a terminal to be prompted")
    first = getpass.getpass("Enter password for private key: ")
    if confirm and getpass.getpass("Enter password for private key again: ") != first:
        raise SluiceError("passwords do not match")
    return first.encode()


def registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docker-config",
        metavar="PATH",
        help="docker config.json (or its directory) for registry credentials",
    )
    parser.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        help="talk plain HTTP to a registry on localhost/127.0.0.1/::1 (never elsewhere)",
    )
    parser.add_argument(
        "--ed25519-mode",
        choices=("ph", "pure"),
        default="ph",
        help="Ed25519 keys: ph = Ed25519ph as cosign does (default), pure = plain Ed25519",
    )
