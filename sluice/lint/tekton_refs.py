"""Cross-reference check for Tekton resources: the mistakes only a running cluster would reveal.

The CRD schemas cannot see across documents: a Pipeline naming a Task that does not exist, a param
passed under a misspelled name, a `$(tasks.build.results.DIGEST)` for a result the task never
writes, or a TriggerTemplate placeholder nobody declared all validate fine and fail at run time,
often half-way through an eight-hour delivery. This module resolves every such reference against
the resources it is given and reports each broken one as a `Problem`.

Input is what the lint engine already has: `(repo-relative path, 1-based line of the document,
parsed object)` per YAML document. Non-Tekton documents are ignored. The step rules (every step image
pinned or built in the same run, nothing installed at run time) live in `tekton_steps` and report
through here.

TriggerBindings that a cluster's operator creates (a value only the cluster knows, such as a pinned
image digest) are declared on the EventListener that references them, with the params each supplies:
`metadata.annotations["sluice.dev/cluster-trigger-bindings"]: "name=param|param, other=param"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sluice.lint.problems import Problem
from sluice.lint.tekton_steps import check_step_images

Resource = tuple[str, int, dict]

RULE_TASK_REF = "tekton-task-ref"
RULE_PIPELINE_REF = "tekton-pipeline-ref"
RULE_UNKNOWN_PARAM = "tekton-unknown-param"
RULE_MISSING_PARAM = "tekton-missing-param"
RULE_UNDECLARED_PARAM = "tekton-undeclared-param"
RULE_UNKNOWN_WORKSPACE = "tekton-unknown-workspace"
RULE_MISSING_WORKSPACE = "tekton-missing-workspace"
RULE_UNDECLARED_WORKSPACE = "tekton-undeclared-workspace"
RULE_RESULT_REF = "tekton-result-ref"
RULE_UNDECLARED_RESULT = "tekton-undeclared-result"
RULE_TASK_NAME = "tekton-pipeline-task-ref"
RULE_TRIGGER_REF = "tekton-trigger-ref"
CLUSTER_BINDINGS_ANNOTATION = "sluice.dev/cluster-trigger-bindings"

# $(params.name) $(params.name[*]) $(params.name[0]) $(params.name.key) $(params["name"]) $(params['a.b'])
_PARAMS = re.compile(r"\$\(params(?:\.([A-Za-z0-9_-]+)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
_TT_PARAMS = re.compile(r"\$\(tt\.params\.([A-Za-z0-9_.-]+?)\)")
# $(tasks.X.results.Y) $(tasks.X.results.Y[*]) $(tasks.X.results.Y.key) $(tasks.X.status) $(tasks.status)
_TASKS = re.compile(r"\$\(tasks\.([A-Za-z0-9_-]+)(?:\.(results|status|reason)(?:\.([A-Za-z0-9_-]+))?)?")
_RESULTS = re.compile(r"\$\(results\.([A-Za-z0-9_-]+)\.path\)")
_WORKSPACES = re.compile(r"\$\(workspaces\.([A-Za-z0-9_-]+)\.(?:path|bound|claim|volume)\)")


@dataclass
class _Index:
    """Everything the references can point at, by kind and name."""

    tasks: dict[str, dict] = field(default_factory=dict)
    pipelines: dict[str, dict] = field(default_factory=dict)
    bindings: dict[str, dict] = field(default_factory=dict)
    templates: dict[str, dict] = field(default_factory=dict)


def _is_tekton(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("apiVersion", "")).split("/")[0] in {
        "tekton.dev",
        "triggers.tekton.dev",
    }


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _list(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _names(items: Any) -> set[str]:
    return {str(item["name"]) for item in _list(items) if "name" in item}


def _required_params(spec: dict) -> set[str]:
    return {str(p["name"]) for p in _list(spec.get("params")) if "name" in p and "default" not in p}


def _strings(node: Any) -> Iterator[str]:
    """Every string anywhere inside node (keys excluded): where Tekton substitutes variables."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _param_refs(node: Any) -> Iterator[str]:
    for text in _strings(node):
        for match in _PARAMS.finditer(text):
            yield match.group(1) or match.group(2)


def _name(obj: dict) -> str:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        return str(meta.get("name") or meta.get("generateName") or "<unnamed>")
    return "<unnamed>"


def _index(resources: Iterable[Resource]) -> _Index:
    index = _Index()
    kinds = {
        "Task": index.tasks,
        "Pipeline": index.pipelines,
        "TriggerBinding": index.bindings,
        "TriggerTemplate": index.templates,
    }
    for _path, _line, obj in resources:
        if _is_tekton(obj) and obj.get("kind") in kinds:
            kinds[obj["kind"]][_name(obj)] = obj
    return index


Finding = tuple[str, str]  # (rule, message); the caller knows the path and line


def _check_task_spec(where: str, spec: dict, extra_params: set[str]) -> Iterator[Finding]:
    """A task uses only the params, results and workspaces it declares."""
    body = {k: v for k, v in spec.items() if k not in {"params", "description", "results", "workspaces"}}
    texts = list(_strings(body))
    declared = _names(spec.get("params")) | extra_params
    for name in sorted(set(_param_refs(body)) - declared):
        yield RULE_UNDECLARED_PARAM, f"{where} uses $(params.{name}) but declares no param {name!r}"
    written = {m.group(1) for text in texts for m in _RESULTS.finditer(text)}
    for name in sorted(written - _names(spec.get("results"))):
        yield RULE_UNDECLARED_RESULT, f"{where} writes $(results.{name}.path) but declares no result {name!r}"
    used = {m.group(1) for text in texts for m in _WORKSPACES.finditer(text)}
    for name in sorted(used - _names(spec.get("workspaces"))):
        yield RULE_UNDECLARED_WORKSPACE, f"{where} uses workspace {name!r} but does not declare it"


def _task_spec_for(pipeline_task: dict, index: _Index) -> tuple[dict | None, str | None]:
    """(spec of the task it runs, None), or (None, why it is broken); (None, None) if out of reach."""
    if isinstance(pipeline_task.get("taskSpec"), dict):
        return pipeline_task["taskSpec"], None
    ref = pipeline_task.get("taskRef")
    if not isinstance(ref, dict):
        return None, "has neither taskRef nor taskSpec"
    if "resolver" in ref or ref.get("kind", "Task") != "Task" or ref.get("apiVersion"):
        return None, None  # remote, cluster-scoped or custom task: not defined in this repository
    name = str(ref.get("name", ""))
    if name not in index.tasks:
        return None, f"references Task {name!r}, which is not defined"
    return _spec(index.tasks[name]), None


def _check_bindings(label: str, pt: dict, task_spec: dict, pipeline_ws: set[str]) -> Iterator[Finding]:
    """Params and workspaces a pipeline task passes exist on its task; nothing required is left out."""
    passed = _names(pt.get("params"))
    for name in sorted(passed - _names(task_spec.get("params"))):
        yield RULE_UNKNOWN_PARAM, f"{label} passes param {name!r}, which its task does not declare"
    for name in sorted(_required_params(task_spec) - passed):
        yield RULE_MISSING_PARAM, f"{label} does not pass required param {name!r}"
    declared = {str(w["name"]): w for w in _list(task_spec.get("workspaces")) if "name" in w}
    bound = _list(pt.get("workspaces"))
    for binding in bound:
        name = str(binding.get("name"))
        if name not in declared:
            yield RULE_UNKNOWN_WORKSPACE, f"{label} binds workspace {name!r}, which its task does not declare"
        source = binding.get("workspace", name)
        if source not in pipeline_ws:
            yield RULE_UNDECLARED_WORKSPACE, f"{label} binds pipeline workspace {source!r}, not declared"
    bound_names = _names(bound)
    for name, decl in sorted(declared.items()):
        if not decl.get("optional") and name not in bound_names:
            yield RULE_MISSING_WORKSPACE, f"{label} does not bind required workspace {name!r}"


def _check_task_refs(
    pipeline: str, node: Any, task_names: set[str], specs: dict[str, dict | None]
) -> Iterator[Finding]:
    """Every $(tasks.X.results.Y) names a task of this pipeline and a result its task declares."""
    seen: set[tuple[str, str | None]] = set()
    for text in _strings(node):
        for match in _TASKS.finditer(text):
            task, kind, result = match.group(1), match.group(2), match.group(3)
            if (task == "status" and kind is None) or (task, result) in seen:
                continue  # $(tasks.status) is the aggregate status, valid in finally
            seen.add((task, result))
            if task not in task_names:
                yield RULE_RESULT_REF, f"Pipeline {pipeline} refers to $(tasks.{task}...): no such task"
                continue
            task_spec = specs.get(task)
            if kind == "results" and task_spec is not None and result not in _names(task_spec.get("results")):
                yield RULE_RESULT_REF, f"Pipeline {pipeline}: task {task!r} declares no result {result!r}"


def _check_pipeline(obj: dict, index: _Index) -> Iterator[Finding]:
    spec = _spec(obj)
    pipeline = _name(obj)
    tasks, finally_tasks = _list(spec.get("tasks")), _list(spec.get("finally"))
    task_names = _names(tasks)
    declared_params = _names(spec.get("params"))
    declared_workspaces = _names(spec.get("workspaces"))
    specs: dict[str, dict | None] = {}
    for pt in tasks + finally_tasks:
        label = f"Pipeline {pipeline} task {pt.get('name', '<unnamed>')}"
        task_spec, broken = _task_spec_for(pt, index)
        specs[str(pt.get("name"))] = task_spec
        if broken:
            yield RULE_TASK_REF, f"{label} {broken}"
        for after in pt.get("runAfter") or []:
            if after not in task_names:
                yield RULE_TASK_NAME, f"{label} runs after {after!r}, which is not a task of the pipeline"
        if task_spec is not None:
            yield from _check_bindings(label, pt, task_spec, declared_workspaces)
        if isinstance(pt.get("taskSpec"), dict):
            # Pipeline params propagate into an embedded spec, so both sets are in scope there.
            yield from _check_task_spec(f"{label} (taskSpec)", pt["taskSpec"], declared_params)
    # Outside embedded task specs, only the pipeline's own params are in scope.
    skip = {"params", "description", "workspaces", "tasks", "finally"}
    body = {k: v for k, v in spec.items() if k not in skip}
    body["tasks"] = [{k: v for k, v in pt.items() if k != "taskSpec"} for pt in tasks + finally_tasks]
    for name in sorted(set(_param_refs(body)) - declared_params):
        yield RULE_UNDECLARED_PARAM, f"Pipeline {pipeline} uses $(params.{name}) but declares no such param"
    yield from _check_task_refs(pipeline, body, task_names, specs)


def _check_pipeline_run(run: dict, index: _Index, where: str) -> Iterator[Finding]:
    """A PipelineRun (alone or inside a TriggerTemplate) fits the Pipeline it references."""
    spec = _spec(run)
    ref = spec.get("pipelineRef")
    if isinstance(spec.get("pipelineSpec"), dict):
        pipeline_spec, label = spec["pipelineSpec"], f"{where} (inline pipelineSpec)"
    elif isinstance(ref, dict) and "resolver" not in ref:
        name = str(ref.get("name", ""))
        if name not in index.pipelines:
            yield RULE_PIPELINE_REF, f"{where} references Pipeline {name!r}, which is not defined"
            return
        pipeline_spec, label = _spec(index.pipelines[name]), f"{where} (Pipeline {name})"
    else:
        return
    passed = _names(spec.get("params"))
    for name in sorted(passed - _names(pipeline_spec.get("params"))):
        yield RULE_UNKNOWN_PARAM, f"{label} passes param {name!r}, which the pipeline does not declare"
    for name in sorted(_required_params(pipeline_spec) - passed):
        yield RULE_MISSING_PARAM, f"{label} does not pass required param {name!r}"
    declared = {str(w["name"]): w for w in _list(pipeline_spec.get("workspaces")) if "name" in w}
    bound = _names(spec.get("workspaces"))
    for name in sorted(bound - set(declared)):
        yield RULE_UNKNOWN_WORKSPACE, f"{label} binds workspace {name!r}, which the pipeline does not declare"
    for name, decl in sorted(declared.items()):
        if not decl.get("optional") and name not in bound:
            yield RULE_MISSING_WORKSPACE, f"{label} does not bind required workspace {name!r}"
    pipeline_tasks = _names(pipeline_spec.get("tasks")) | _names(pipeline_spec.get("finally"))
    for run_spec in _list(spec.get("taskRunSpecs")):
        name = run_spec.get("pipelineTaskName")
        if name not in pipeline_tasks:
            yield RULE_TASK_NAME, f"{label} has taskRunSpecs for {name!r}, not a task of the pipeline"


def _check_trigger_template(obj: dict, index: _Index) -> Iterator[Finding]:
    spec = _spec(obj)
    where = f"TriggerTemplate {_name(obj)}"
    templates = _list(spec.get("resourcetemplates"))
    used = {m.group(1) for text in _strings(templates) for m in _TT_PARAMS.finditer(text)}
    for name in sorted(used - _names(spec.get("params"))):
        yield RULE_UNDECLARED_PARAM, f"{where} uses $(tt.params.{name}) but declares no param {name!r}"
    for resource in templates:
        if _is_tekton(resource) and resource.get("kind") == "PipelineRun":
            yield from _check_pipeline_run(resource, index, f"{where} PipelineRun")


def _cluster_bindings(obj: dict) -> dict[str, set[str]]:
    """Bindings declared as created by the cluster's operator: name -> the params they supply."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    text = (meta.get("annotations") or {}).get(CLUSTER_BINDINGS_ANNOTATION, "")
    found: dict[str, set[str]] = {}
    for entry in filter(None, (part.strip() for part in str(text).split(","))):
        name, _, params = entry.partition("=")
        found[name.strip()] = {p.strip() for p in params.split("|") if p.strip()}
    return found


def _check_event_listener(obj: dict, index: _Index) -> Iterator[Finding]:
    """Bindings and templates exist, and the bindings supply every template param without a default."""
    cluster_bindings = _cluster_bindings(obj)
    for trigger in _list(_spec(obj).get("triggers")):
        label = f"EventListener {_name(obj)} trigger {trigger.get('name', '<unnamed>')}"
        supplied: set[str] = set()
        for binding in _list(trigger.get("bindings")):
            ref = binding.get("ref")
            if ref is None:
                supplied.add(str(binding.get("name")))  # an inline binding: name + value
            elif binding.get("kind", "TriggerBinding") != "TriggerBinding":
                supplied = {"*"}  # a ClusterTriggerBinding lives outside the repository
            elif ref in cluster_bindings and ref not in index.bindings:
                supplied |= cluster_bindings[ref]
            elif ref not in index.bindings:
                yield RULE_TRIGGER_REF, f"{label} references TriggerBinding {ref!r}, which is not defined"
            else:
                supplied |= _names(_spec(index.bindings[ref]).get("params"))
        template = trigger.get("template")
        ref = template.get("ref") if isinstance(template, dict) else None
        if ref is None:
            continue
        if ref not in index.templates:
            yield RULE_TRIGGER_REF, f"{label} references TriggerTemplate {ref!r}, which is not defined"
        elif "*" not in supplied:
            for name in sorted(_required_params(_spec(index.templates[ref])) - supplied):
                yield RULE_MISSING_PARAM, f"{label} supplies no value for TriggerTemplate param {name!r}"


def _findings(obj: dict, index: _Index) -> Iterator[Finding]:
    kind = obj.get("kind")
    if kind == "Task":
        yield from _check_task_spec(f"Task {_name(obj)}", _spec(obj), set())
    elif kind == "Pipeline":
        yield from _check_pipeline(obj, index)
    elif kind == "PipelineRun":
        yield from _check_pipeline_run(obj, index, f"PipelineRun {_name(obj)}")
    elif kind == "TriggerTemplate":
        yield from _check_trigger_template(obj, index)
    elif kind == "EventListener":
        yield from _check_event_listener(obj, index)


def check_tekton_refs(resources: list[Resource]) -> list[Problem]:
    """Every broken cross-reference among the given Tekton resources, sorted by place."""
    index = _index(resources)
    problems = {
        Problem(path, line, rule, message)
        for path, line, obj in resources
        if _is_tekton(obj)
        for rule, message in _findings(obj, index)
    }
    problems |= {Problem(*finding) for finding in check_step_images(resources)}
    return sorted(problems)
