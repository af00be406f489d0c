"""Tekton steps run images that were pinned or built, and install nothing at run time.

A step that runs `pip install` resolves dependency versions when the pod starts, needs a package
index from every task pod, and judges or trains with code nobody built or signed. So each step
image (steps, sidecars, stepTemplate) of a Task must be one of (a literal that is not pinned, or a
param default that is not, is already the `image-digest` rule's finding and is not reported twice):
- a tool image pinned by digest (`repo[:tag]@sha256:<64 hex>`);
- `$(params.NAME)` with a pinned default, or with no default and every Pipeline task that runs the
  Task passing an image built in the same run (`$(tasks.T.results.IMAGE_URL)@$(tasks.T.results.
  IMAGE_DIGEST)`), a pinned reference, or a Pipeline param (pinned default, or none: the run supplies
  it, and a literal in a PipelineRun or TriggerTemplate must be pinned).
And no step script, command or args may install packages (pip, python -m venv, uv pip, npm, apt).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sluice.lint.images import is_pinned

RULE_STEP_IMAGE = "tekton-step-image"
RULE_RUNTIME_INSTALL = "tekton-runtime-install"

Resource = tuple[str, int, dict]
Finding = tuple[str, str]

_PARAM_IMAGE = re.compile(r"^\$\(params\.([A-Za-z0-9_-]+)\)$")
_BUILT_IMAGE = re.compile(
    r"^\$\(tasks\.([\w-]+)\.results\.IMAGE_URL\)@\$\(tasks\.\1\.results\.IMAGE_DIGEST\)$"
)
_TT_PARAM = re.compile(r"^\$\(tt\.params\.([A-Za-z0-9_.-]+)\)$")
INSTALLS = re.compile(
    r"""\bpip[0-9.]*"?\s+install\b|\bpython[0-9.]*\s+-m\s+venv\b|\buv\s+pip\b|\bnpm\s+(?:ci|install|i)\b"""
    r"""|\bapt(?:-get)?\s+install\b|\bapk\s+add\b|\b(?:dnf|yum|microdnf)\s+install\b"""
)


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _list(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _name(obj: dict) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "<unnamed>") if isinstance(meta, dict) else "<unnamed>"


def _containers(spec: dict) -> Iterator[tuple[str, dict]]:
    for key in ("steps", "sidecars"):
        for item in _list(spec.get(key)):
            yield f"{key[:-1]} {item.get('name', '<unnamed>')}", item
    if isinstance(spec.get("stepTemplate"), dict):
        yield "stepTemplate", spec["stepTemplate"]


def _defaults(params: Any) -> dict[str, Any]:
    return {str(p["name"]): p.get("default") for p in _list(params) if "name" in p}


def _passed_value_ok(value: Any, pipeline_params: dict[str, Any]) -> bool:
    """A Pipeline task's value for an image param: built in this run, pinned, or a param that is."""
    if not isinstance(value, str):
        return False
    if _BUILT_IMAGE.match(value) or is_pinned(value):
        return True
    match = _PARAM_IMAGE.match(value)
    if not match or match.group(1) not in pipeline_params:
        return False
    default = pipeline_params[match.group(1)]
    return default is None or (isinstance(default, str) and is_pinned(default))


def _task_image_findings(where: str, spec: dict) -> tuple[list[Finding], set[str]]:
    """Findings for one Task's own images, and the no-default params its images come from."""
    findings: list[Finding] = []
    from_callers: set[str] = set()
    declared = _defaults(spec.get("params"))
    for label, container in _containers(spec):
        image = container.get("image")
        if image is None and label == "stepTemplate":
            continue
        text = str(image or "").strip()
        match = _PARAM_IMAGE.match(text)
        if match and match.group(1) in declared:
            if declared[match.group(1)] is None:
                from_callers.add(match.group(1))  # checked where pipelines pass it
        elif not text or "$(" in text or "${" in text:
            findings.append((
                RULE_STEP_IMAGE,
                f"{where} {label}: image {text!r} is neither pinned by digest nor a $(params.…) reference",
            ))
        parts = [part for key in ("script", "command", "args") for part in _as_list(container.get(key))]
        found = INSTALLS.search(" ".join(map(str, parts)))
        if found:
            findings.append((
                RULE_RUNTIME_INSTALL,
                f"{where} {label} installs packages at run time ({found.group(0)!r}): "
                "use an image that already holds them",
            ))
    return findings, from_callers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _pipeline_findings(pipeline: dict, image_params: dict[str, set[str]]) -> Iterator[Finding]:
    spec = _spec(pipeline)
    declared = _defaults(spec.get("params"))
    for pt in _list(spec.get("tasks")) + _list(spec.get("finally")):
        ref = pt.get("taskRef")
        task = str(ref.get("name", "")) if isinstance(ref, dict) else ""
        passed = {str(p.get("name")): p.get("value") for p in _list(pt.get("params"))}
        for param in sorted(image_params.get(task, set())):
            value = passed.get(param)
            if value is not None and not _passed_value_ok(value, declared):
                yield (
                    RULE_STEP_IMAGE,
                    f"Pipeline {_name(pipeline)} task {pt.get('name')} passes {param}={value!r}: a step "
                    "image must be built in this run ($(tasks.T.results.IMAGE_URL)@$(tasks.T.results."
                    "IMAGE_DIGEST)), pinned by digest, or a pipeline param",
                )


def _run_findings(
    where: str, run: dict, image_params: dict[str, set[str]], pipelines: dict[str, dict], tt_defaults: dict
) -> Iterator[Finding]:
    """A PipelineRun's value for a pipeline param that becomes a step image must be pinned, or come from a
    TriggerTemplate param whose default (if it has one) is pinned."""
    ref = _spec(run).get("pipelineRef")
    pipeline = pipelines.get(str(ref.get("name"))) if isinstance(ref, dict) else None
    if pipeline is None:
        return
    feeds: set[str] = set()
    for pt in _list(_spec(pipeline).get("tasks")) + _list(_spec(pipeline).get("finally")):
        task_ref = pt.get("taskRef")
        task = str(task_ref.get("name", "")) if isinstance(task_ref, dict) else ""
        for p in _list(pt.get("params")):
            match = _PARAM_IMAGE.match(str(p.get("value", "")))
            if p.get("name") in image_params.get(task, set()) and match:
                feeds.add(match.group(1))
    for p in _list(_spec(run).get("params")):
        value = p.get("value")
        if p.get("name") not in feeds or not isinstance(value, str):
            continue
        template = _TT_PARAM.match(value)
        if template:
            value = tt_defaults.get(template.group(1))
            if value is None:
                continue  # supplied by the trigger's bindings
        if not is_pinned(str(value)):
            yield RULE_STEP_IMAGE, f"{where} passes {p.get('name')}={value!r}: a step image, not pinned"


def check_step_images(resources: list[Resource]) -> list[tuple[str, int, str, str]]:
    """(path, line, rule, message) for every step image or run-time install the rules above refuse."""
    image_params: dict[str, set[str]] = {}
    pipelines: dict[str, dict] = {}
    found: list[tuple[str, int, str, str]] = []
    for path, line, obj in resources:
        if not isinstance(obj, dict) or not str(obj.get("apiVersion", "")).startswith("tekton.dev/"):
            continue
        if obj.get("kind") == "Task":  # every Task first: pipelines are checked against all of them
            findings, params = _task_image_findings(f"Task {_name(obj)}", _spec(obj))
            image_params[_name(obj)] = params
            found += [(path, line, rule, message) for rule, message in findings]
        elif obj.get("kind") == "Pipeline":
            pipelines[_name(obj)] = obj
    for path, line, obj in resources:
        if not isinstance(obj, dict):
            continue
        if obj.get("kind") == "Pipeline" and obj in pipelines.values():
            found += [(path, line, r, m) for r, m in _pipeline_findings(obj, image_params)]
        runs = [obj] if obj.get("kind") == "PipelineRun" else []
        tt_defaults: dict[str, Any] = {}
        if obj.get("kind") == "TriggerTemplate":
            runs = [r for r in _list(_spec(obj).get("resourcetemplates")) if r.get("kind") == "PipelineRun"]
            tt_defaults = _defaults(_spec(obj).get("params"))
        for run in runs:
            where = f"{obj.get('kind')} {_name(obj)}"
            found += [
                (path, line, r, m) for r, m in _run_findings(where, run, image_params, pipelines, tt_defaults)
            ]
    return found
