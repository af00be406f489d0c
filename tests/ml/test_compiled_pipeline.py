"""The committed KFP IR is current, deterministic, and says what the pipeline promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from ml.pipelines.training import COMPILED_PATH, DEFAULT_BASE_IMAGE, compile_pipeline

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _compile(tmp_path, image=DEFAULT_BASE_IMAGE):
    return compile_pipeline(tmp_path / "training.yaml", base_image=image).read_bytes()


def test_committed_ir_is_not_stale(tmp_path):
    fresh = _compile(tmp_path)
    assert fresh == COMPILED_PATH.read_bytes(), (
        "ml/pipelines/training.yaml is stale: run `python -m ml.pipelines.training` and commit it"
    )


def test_compile_does_not_depend_on_hash_order(tmp_path):
    """Two interpreters with different hash seeds must write identical bytes (dicts, sets)."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.yaml"
        code = f"from ml.pipelines.training import compile_pipeline; compile_pipeline({str(out)!r})"
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def _ir() -> dict:
    return yaml.safe_load(COMPILED_PATH.read_text())


def _all_tasks(ir: dict) -> dict[str, dict]:
    tasks = dict(ir["root"]["dag"]["tasks"])
    for comp in ir["components"].values():
        tasks.update(comp.get("dag", {}).get("tasks", {}))
    return tasks


def test_every_executor_image_is_pinned_by_digest():
    executors = _ir()["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {DEFAULT_BASE_IMAGE}
    assert DIGEST.search(DEFAULT_BASE_IMAGE)
    # no component pip-installs at run time: the image carries the project
    for spec in executors.values():
        assert "pip install" not in " ".join(spec["container"]["command"])


def test_retries_only_on_registry_steps_and_resources_on_training():
    tasks = _all_tasks(_ir())
    retried = {name for name, task in tasks.items() if task.get("retryPolicy")}
    assert retried == {"log-candidate", "register-challenger", "record-rejection", "record-data-gate"}
    executors = _ir()["deploymentSpec"]["executors"]
    resources = executors["exec-train-and-evaluate"]["container"].get("resources", {})
    assert resources.get("cpuRequest") or resources.get("resourceCpuRequest")
    assert resources.get("memoryRequest") or resources.get("resourceMemoryRequest")


def test_caching_is_on_for_deterministic_steps_and_off_where_the_world_can_change():
    tasks = _all_tasks(_ir())
    caching = {
        name: task.get("cachingOptions", {}).get("enableCache", False)
        for name, task in tasks.items()
        if "componentRef" in task and not name.startswith(("condition", "for-loop"))
    }
    assert {n for n, on in caching.items() if on} == {
        "load-snapshot",
        "split-snapshot",
        "train-and-evaluate",
        "select-best",
    }
    assert {n for n, on in caching.items() if not on} == {
        "data-gate",
        "log-candidate",
        "model-gate",
        "register-challenger",
        "record-rejection",
        "record-data-gate",
    }


def test_gates_branch_on_bool_outputs():
    tasks = _all_tasks(_ir())
    conditions = [
        t["triggerPolicy"]["condition"] for t in tasks.values() if t.get("triggerPolicy", {}).get("condition")
    ]
    # data gate passed / trained nothing, model gate passed / failed
    assert len(conditions) >= 4
    for condition in conditions:
        assert re.search(r"pipelinechannel--(data-gate|model-gate)-Output'\] (==|!=) true", condition), (
            condition
        )


def test_candidates_fan_out_and_are_collected():
    ir = _ir()
    loops = [t for t in _all_tasks(ir).values() if t.get("parameterIterator")]
    assert len(loops) == 1
    select_inputs = _all_tasks(ir)["select-best"]["inputs"]
    assert "models" in select_inputs["artifacts"] and "summaries" in select_inputs["parameters"]


def test_every_step_that_talks_to_mlflow_carries_the_stated_budget():
    """#14: an MLflow outage costs a bounded time. The HTTP budget travels with each MLflow step
    (locally and on a cluster) and the retried steps back off 5, 10, 20 s (ml/registry/budget.py)."""
    from ml.registry.budget import DEFAULT_STEP_BACKOFF_S, DEFAULT_STEP_RETRIES, HTTP_DEFAULTS

    ir = _ir()
    executors = ir["deploymentSpec"]["executors"]
    for step in ("log-candidate", "model-gate", "register-challenger", "record-rejection"):
        env = {e["name"]: e["value"] for e in executors[f"exec-{step}"]["container"].get("env", [])}
        assert env == HTTP_DEFAULTS, step
    for step in ("log-candidate", "register-challenger", "record-rejection"):
        policy = _all_tasks(ir)[step]["retryPolicy"]
        assert policy["maxRetryCount"] == DEFAULT_STEP_RETRIES
        assert policy["backoffDuration"] == f"{DEFAULT_STEP_BACKOFF_S}s" and policy["backoffFactor"] == 2
