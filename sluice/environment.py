"""Which environment a run happens in: the dependency lock it was installed from, the trainer image.

A registered model version records both (tags `sluice.lock_sha256`, `sluice.trainer_image`), so
"which versions was this trained and judged with" has an answer. Only what is known is recorded:
- the lock: the runtime export `requirements.lock` (the file the images install with
  --require-hashes; $SLUICE_LOCK_FILE in an image, else the one beside this checkout), and only when
  every distribution it pins for this platform is installed at exactly that version;
- the trainer image: $SLUICE_TRAINER_IMAGE, which `sluice submit` sets on every KFP task to the
  image it compiled the pipeline for, and only when it is pinned by digest.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from sluice import tags
from sluice.digest import sha256_file

LOCK_FILE_NAME = "requirements.lock"
LOCK_FILE_ENV = "SLUICE_LOCK_FILE"
TRAINER_IMAGE_ENV = "SLUICE_TRAINER_IMAGE"
# The image label the build writes the lock's sha256 into (images/Dockerfile, `sluice submit`).
LOCK_LABEL = "dev.sluice.lock.sha256"
_PINNED_IMAGE = re.compile(r"^\S+@sha256:[0-9a-f]{64}$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def checkout_lock(root: Path) -> Path:
    return root / LOCK_FILE_NAME


def default_lock_file() -> Path:
    """$SLUICE_LOCK_FILE (set in the images), else requirements.lock beside the installed sources."""
    explicit = os.environ.get(LOCK_FILE_ENV)
    return Path(explicit) if explicit else checkout_lock(Path(__file__).resolve().parent.parent)


def locked_versions(lock: Path) -> dict[str, str]:
    """{canonical name: version} for every pin of `lock` whose environment marker holds here."""
    from packaging.markers import Marker
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match and (match.group(3) is None or Marker(match.group(3)).evaluate()):
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


@lru_cache(maxsize=8)
def installed_from(lock: Path) -> bool:
    """True when every distribution the lock pins (for this platform) is installed at that version."""
    from packaging.utils import canonicalize_name

    try:
        wanted = locked_versions(lock)
    except (OSError, UnicodeDecodeError):
        return False
    installed = {canonicalize_name(d.metadata["Name"] or ""): d.version for d in metadata.distributions()}
    return bool(wanted) and all(installed.get(name) == version for name, version in wanted.items())


def environment_tags(lock: Path | None = None) -> dict[str, str]:
    """The `sluice.lock_sha256` and `sluice.trainer_image` tags this process can vouch for."""
    lock = default_lock_file() if lock is None else lock
    found: dict[str, str] = {}
    if lock.is_file() and installed_from(lock.resolve()):
        found[tags.LOCK_SHA256] = sha256_file(lock)
    image = os.environ.get(TRAINER_IMAGE_ENV, "")
    if _PINNED_IMAGE.match(image):
        found[tags.TRAINER_IMAGE] = image
    return found
