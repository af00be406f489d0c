#!/usr/bin/env bash
# Re-lock the dependencies: resolve pyproject.toml into uv.lock, then export the hashed
# requirements files pip reads (images and CI install from those, never from the ranges).
#
#   tools/relock.sh                         after editing dependencies in pyproject.toml
#   tools/relock.sh --upgrade-package NAME  to move one pin on purpose (any `uv lock` option works)
#
# Needs uv (pinned in the `test` extra: pip install -e '.[test]'). tests/test_lock.py fails until
# this has been run after a change to pyproject.toml; commit uv.lock and requirements*.lock together.
set -euo pipefail
cd "$(dirname "$0")/.."

uv lock "$@"
export_lock() {
  local out="$1"
  shift
  uv export --frozen --quiet --format requirements-txt --no-emit-project "$@" -o "${out}"
}
export_lock requirements.lock --no-default-groups                              # runtime: the images
export_lock requirements-dev.lock --no-default-groups --extra test --extra lint  # + tests, linters: CI
export_lock requirements-build.lock --only-group build                         # setuptools, wheel
export_lock requirements-tools.lock --only-group tools                         # kubectl: the images
export_lock requirements-ci.lock --only-group ci                               # node: the ci image
sha256sum requirements.lock
