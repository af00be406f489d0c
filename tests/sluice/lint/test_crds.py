"""CRD schemas read with Kubernetes semantics, and the cache that makes them cheap."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest

from sluice.lint import core_schemas, crds
from sluice.lint.crds import convert, load_crds
from sluice.lint.validate import Schemas, validate_object

WIDGET_CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.com
    spec:
      group: example.com
      names: {kind: Widget, plural: widgets}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [size]
                  properties:
                    size: {x-kubernetes-int-or-string: true}
                    labels: {type: object, additionalProperties: {type: string}}
                    free: {type: object, x-kubernetes-preserve-unknown-fields: true}
                    template: {type: object, x-kubernetes-embedded-resource: true,
                               x-kubernetes-preserve-unknown-fields: true}
                    ratio: {type: number, minimum: 0, exclusiveMinimum: true}
                    either:
                      type: object
                      properties: {a: {type: string}, b: {type: string}}
                      anyOf: [{required: [a]}, {required: [b]}]
        - name: v0
          served: false
          storage: false
          schema: {openAPIV3Schema: {type: object}}
    """)


def _validator(schema: dict) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schema, registry=core_schemas.registry())


def _errors(schema: dict, instance: dict) -> list[str]:
    return sorted(e.message for e in _validator(schema).iter_errors(instance))


def test_listed_properties_reject_unknown_fields_like_a_strict_client():
    schema = convert({"type": "object", "properties": {"a": {"type": "string"}}})
    assert _errors(schema, {"a": "x"}) == []
    assert _errors(schema, {"a": "x", "b": 1}) != []


def test_preserve_unknown_fields_keeps_unknown_fields():
    schema = convert(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"a": {"type": "string"}},
        }
    )
    assert _errors(schema, {"a": "x", "anything": {"goes": 1}}) == []
    assert _errors(schema, {"a": 5}) != []  # known fields are still typed


def test_int_or_string_accepts_both_and_nothing_else():
    schema = convert({"x-kubernetes-int-or-string": True})
    assert _errors(schema, 3) == [] and _errors(schema, "50%") == []
    assert _errors(schema, 1.5) != [] and _errors(schema, [1]) != []


def test_embedded_resource_needs_apiversion_and_kind_and_real_metadata():
    schema = convert(
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    assert _errors(schema, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}) == []
    assert any("'kind' is a required property" in m for m in _errors(schema, {"apiVersion": "v1"}))
    assert _errors(schema, {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": 1}}}) != []


def test_value_validations_inside_anyof_do_not_ban_fields():
    schema = convert(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "anyOf": [{"required": ["a"]}, {"properties": {"b": {"minLength": 1}}}],
        }
    )
    assert "additionalProperties" not in schema["anyOf"][1]
    assert _errors(schema, {"b": "x"}) == []


def test_openapi_exclusive_minimum_flag_becomes_a_bound():
    schema = convert({"type": "number", "minimum": 0, "exclusiveMinimum": True})
    assert _errors(schema, 0) != [] and _errors(schema, 0.1) == []


def test_root_metadata_is_validated_as_objectmeta():
    schema = convert({"type": "object", "properties": {"metadata": {"type": "object"}}}, root=True)
    good = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "labels": {"k": "v"}}}
    assert _errors(schema, good) == []
    assert _errors(schema, {**good, "metadata": {"name": "a", "labels": {"k": 1}}}) != []


@pytest.fixture()
def widget_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLUICE_LINT_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "crds"
    directory.mkdir()
    (directory / "widget.yaml").write_text(WIDGET_CRD)
    return directory


def _widget(spec: dict, api_version: str = "example.com/v1") -> dict:
    return {"apiVersion": api_version, "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_custom_resources_validate_against_their_crd(widget_dir: Path):
    schemas = Schemas(load_crds(widget_dir), widget_dir)
    assert (
        validate_object(
            _widget({"size": "10%", "free": {"x": [1]}, "ratio": 0.5, "either": {"b": "y"}}), schemas
        )
        == []
    )
    messages = [
        f.message for f in validate_object(_widget({"size": 1.5, "colour": "red", "either": {}}), schemas)
    ]
    assert "spec.colour: unknown field 'colour'" in messages
    assert any(m.startswith("spec.size:") for m in messages)
    assert any(m.startswith("spec.either:") for m in messages)


def test_null_fields_are_pruned_as_the_api_server_does(widget_dir: Path):
    schemas = Schemas(load_crds(widget_dir), widget_dir)
    assert validate_object(_widget({"size": 1, "labels": None}), schemas) == []
    assert [f.rule for f in validate_object(_widget({"size": None}), schemas)] == ["crd-schema"]


def test_unserved_and_unknown_versions_are_errors(widget_dir: Path):
    schemas = Schemas(load_crds(widget_dir), widget_dir)
    unserved = validate_object(_widget({"size": 1}, "example.com/v0"), schemas)
    assert [f.rule for f in unserved] == ["k8s-unknown-api-version"] and "not served" in unserved[0].message
    unknown = validate_object(_widget({"size": 1}, "example.com/v9"), schemas)
    assert [f.rule for f in unknown] == ["k8s-unknown-api-version"]


def test_cache_is_reused_until_a_crd_file_changes(widget_dir: Path, monkeypatch: pytest.MonkeyPatch):
    first = load_crds(widget_dir)
    assert ("example.com/v1", "Widget") in first.kinds

    def no_rebuild(*_args):
        raise AssertionError("CRDs re-parsed although nothing changed")

    monkeypatch.setattr(crds, "_build", no_rebuild)
    cached = load_crds(widget_dir)
    assert cached.schema("example.com/v1", "Widget") == first.schema("example.com/v1", "Widget")

    monkeypatch.undo()
    monkeypatch.setenv("SLUICE_LINT_CACHE", str(widget_dir.parent / "cache"))
    (widget_dir / "widget.yaml").write_text(WIDGET_CRD.replace("kind: Widget", "kind: Gadget"))
    changed = load_crds(widget_dir)
    assert ("example.com/v1", "Gadget") in changed.kinds
    assert ("example.com/v1", "Widget") not in changed.kinds


def test_kubectl_get_crd_list_output_is_understood(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`kubectl get crd … -o yaml` writes a v1 List; that is one of the two documented ways to fill a dir."""
    import yaml

    monkeypatch.setenv("SLUICE_LINT_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "from-cluster"
    directory.mkdir()
    crd = yaml.safe_load(WIDGET_CRD)
    (directory / "cluster.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [crd]})
    )
    assert ("example.com/v1", "Widget") in load_crds(directory).kinds


def test_upstream_crds_load_with_every_documented_kind(crds_dir: Path):
    index = load_crds(crds_dir)
    assert index.problems == []
    for api_version, kind in [
        ("tekton.dev/v1", "Task"),
        ("tekton.dev/v1", "Pipeline"),
        ("tekton.dev/v1", "PipelineRun"),
        ("triggers.tekton.dev/v1beta1", "EventListener"),
        ("argoproj.io/v1alpha1", "Application"),
        ("argoproj.io/v1alpha1", "ApplicationSet"),
        ("serving.kserve.io/v1beta1", "InferenceService"),
        ("serving.kserve.io/v1alpha1", "ServingRuntime"),
        ("kyverno.io/v1", "ClusterPolicy"),
        ("policies.kyverno.io/v1", "ImageValidatingPolicy"),
        ("policy.sigstore.dev/v1beta1", "ClusterImagePolicy"),
    ]:
        assert index.schema(api_version, kind), f"{kind} {api_version} missing"
