"""The YAML reader: duplicate keys rejected (PyYAML accepts them), lines kept for every value."""

from __future__ import annotations

import yaml

from sluice.lint.yamlload import parse_yaml

TEXT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  one: "1"
  two: "2"
---
# second document
list:
  - x: 1
  - x: 2
    y: 3
"""


def test_pyyaml_alone_would_hide_a_duplicate_key():
    """Why a custom loader exists at all: this must stay true, or the rule is redundant."""
    assert yaml.safe_load("a: 1\na: 2\n") == {"a": 2}


def test_duplicate_keys_are_reported_with_both_lines():
    _, problems = parse_yaml("spec:\n  image: a\n  replicas: 1\n  image: b\n", "f.yaml")
    assert [(p.line, p.rule, p.message) for p in problems] == [
        (4, "yaml-duplicate-key", "duplicate key 'image' (first defined on line 2)")
    ]


def test_merge_keys_may_be_overridden_without_a_duplicate_error():
    docs, problems = parse_yaml("base: &b {k: 1, j: 2}\nderived:\n  <<: *b\n  k: 3\n", "f.yaml")
    assert problems == []
    assert docs[0].data["derived"] == {"k": 3, "j": 2}


def test_every_document_and_value_knows_its_line():
    docs, problems = parse_yaml(TEXT, "f.yaml")
    assert problems == []
    assert [d.line for d in docs] == [1, 10]
    assert docs[0].line_of(["data", "two"]) == 7
    assert docs[1].line_of(["list", 1, "y"]) == 13
    # A path that leaves the data stops at the deepest line still known.
    assert docs[0].line_of(["data", "three", "deeper"]) == 5


def test_syntax_error_keeps_documents_before_it():
    docs, problems = parse_yaml("a: 1\n---\nb: [\n", "f.yaml")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(p.rule, p.line) for p in problems] == [("yaml-syntax", 4)]


def test_data_are_plain_python_containers():
    docs, _ = parse_yaml(TEXT, "f.yaml")
    assert type(docs[0].data) is dict and type(docs[1].data["list"]) is list
