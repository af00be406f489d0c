"""Files are replaced in one step: the old bytes or the new, never half, and no temp file left."""

from __future__ import annotations

import os

import pytest

from sluice.atomic import write_json, write_text


def test_write_replaces_the_file_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "model-version.yaml"
    write_text(path, "old: 1\n")
    write_text(path, "new: 2\n")
    assert path.read_text() == "new: 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-version.yaml"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)  # readable by others, unlike mkstemp's 0600


def test_a_failed_replace_keeps_the_old_bytes_and_removes_the_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model-version.yaml"
    write_text(path, "old: 1\n")

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_text(path, "new: 2\n")
    assert path.read_text() == "old: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-version.yaml"]


def test_json_is_sorted_and_ends_with_a_newline(tmp_path):
    path = write_json(tmp_path / "sub" / "record.json", {"b": 1, "a": [2]})
    assert path.read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
