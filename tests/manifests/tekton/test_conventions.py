"""Tekton catalog conventions, and the rules Sluice adds: described and typed params, declared and
described results and workspaces, scripts that start with a shebang and `set -eu` and only call
`sluice` or a standard tool, timeouts on every task, a finally block, Chains type hints, and images
passed between tasks only as IMAGE_URL@IMAGE_DIGEST."""

from __future__ import annotations

import re

from tests.manifests.tekton.resources import by_kind_name, pipeline_task, steps

TOOLS = re.compile(r"(?:^|[\s/])(sluice|git|buildah|cosign|curl|kubectl|pip|pytest)[\s\"]")


def tasks(resources) -> list[dict]:
    return [o for _p, _l, o in resources if o["kind"] == "Task"]


def pipelines(resources) -> list[dict]:
    return [o for _p, _l, o in resources if o["kind"] == "Pipeline"]


def test_the_agreed_tasks_exist(resources) -> None:
    names = {t["metadata"]["name"] for t in tasks(resources)}
    assert names >= {
        "git-clone",
        "lint",
        "test",
        "build-image",
        "sign-image",
        "attest-evidence",
        "train",
        "gate",
        "promote",
        "open-pr",
        "report-status",
        "finalize",
    }


def test_params_results_and_workspaces_are_described(resources) -> None:
    for obj in tasks(resources) + pipelines(resources):
        spec, name = obj["spec"], obj["metadata"]["name"]
        assert spec.get("description"), name
        for param in spec.get("params", []):
            assert param.get("description") and param.get("type") in {"string", "array", "object"}, (
                name,
                param,
            )
        for result in spec.get("results", []):
            assert result.get("description"), (name, result["name"])
        for workspace in spec.get("workspaces", []):
            assert workspace.get("description"), (name, workspace["name"])


def test_scripts_start_with_a_shebang_and_set_eu(resources) -> None:
    for task, step, spec in steps(resources):
        if "script" in spec:
            lines = spec["script"].splitlines()
            assert lines[0].startswith("#!/usr/bin/env "), f"{task}/{step}"
            assert lines[1].strip() == "set -eu", f"{task}/{step}"
        else:
            assert spec.get("command"), f"{task}/{step}: a step without a script names its command"


def test_scripts_only_glue_sluice_and_standard_tools(resources) -> None:
    for task, step, spec in steps(resources):
        script = spec.get("script", "")
        assert len(script.splitlines()) <= 20, (
            f"{task}/{step}: logic belongs in tested Python, not YAML shell"
        )
        assert "python -c" not in script and "<<" not in script, f"{task}/{step}"
        command = " ".join(spec.get("command", []))
        assert TOOLS.search(script + " ") or command.endswith("/cosign"), f"{task}/{step}"


def test_every_pipeline_task_has_a_timeout_and_a_finally_reports(resources) -> None:
    for pipeline in pipelines(resources):
        for pt in pipeline["spec"]["tasks"] + pipeline["spec"]["finally"]:
            assert pt.get("timeout"), (pipeline["metadata"]["name"], pt["name"])
        reporters = {pt["taskRef"]["name"] for pt in pipeline["spec"]["finally"]}
        assert reporters == {"report-status"}
        conditions = [pt["when"][0] for pt in pipeline["spec"]["finally"]]
        covered = {v for w in conditions if w["input"] == "$(tasks.status)" for v in w["values"]}
        assert covered == {"Succeeded", "Completed", "Failed", "None"}  # every aggregate status


def test_build_image_emits_chains_type_hints(resources) -> None:
    results = {r["name"] for r in by_kind_name(resources, "Task", "build-image")["spec"]["results"]}
    assert {"IMAGE_URL", "IMAGE_DIGEST"} <= results


def test_images_travel_between_tasks_only_by_digest(resources) -> None:
    by_digest = re.compile(
        r"^\$\(tasks\.([\w-]+)\.results\.IMAGE_URL\)@\$\(tasks\.\1\.results\.IMAGE_DIGEST\)$"
    )
    deliver = by_kind_name(resources, "Pipeline", "sluice-deliver")
    image_params = 0
    for pt in deliver["spec"]["tasks"]:
        for param in pt.get("params", []):
            value = param["value"] if isinstance(param["value"], str) else ""
            if param["name"].endswith("-image"):
                image_params += 1
                assert by_digest.match(value), (pt["name"], value)
            if param["name"] == "image-url":
                digest = {p["name"]: p["value"] for p in pt["params"]}["image-digest"]
                assert value.replace("IMAGE_URL", "IMAGE_DIGEST") == digest, pt["name"]
    # ci into lint and test; trainer into train, gate, promote and open-pr; serving into promote and open-pr
    assert image_params == 8


def test_evidence_travels_as_files_not_results(resources) -> None:
    gate = by_kind_name(resources, "Task", "gate")["spec"]
    assert "evidence" in {w["name"] for w in gate["workspaces"]}
    assert all(r["name"].endswith("-file") for r in gate["results"])  # only paths, well under 4 KB
    attest = pipeline_task(by_kind_name(resources, "Pipeline", "sluice-deliver"), "attest-evidence")
    assert {p["name"]: p["value"] for p in attest["params"]}[
        "predicate-file"
    ] == "$(tasks.gate.results.model-evidence-file)"


def test_attestation_uses_the_sluice_predicate_type(resources) -> None:
    params = {p["name"]: p for p in by_kind_name(resources, "Task", "attest-evidence")["spec"]["params"]}
    assert params["predicate-type"]["default"] == "https://sluice.dev/attestations/gate-evidence/v1"


def test_signing_is_by_digest_and_rekor_is_a_switch(resources) -> None:
    for name in ("sign-image", "attest-evidence"):
        step = by_kind_name(resources, "Task", name)["spec"]["steps"][0]
        assert step["args"][-1] == "$(params.image-url)@$(params.image-digest)"
        assert "--tlog-upload=$(params.rekor-upload)" in step["args"]
        assert step["image"].startswith("gcr.io/projectsigstore/cosign:v2.")  # v2: tag-based .sig/.att


def test_deliver_order_builds_signs_trains_gates_then_promotes(resources) -> None:
    deliver = by_kind_name(resources, "Pipeline", "sluice-deliver")
    after: dict[str, set[str]] = {}
    for pt in deliver["spec"]["tasks"]:
        deps = set(pt.get("runAfter", [])) | set(
            re.findall(r"\$\(tasks\.([\w-]+)\.", str(pt.get("params", [])))
        )
        after[pt["name"]] = deps

    def upstream(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for dep in after[todo.pop()]:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    assert {"lint", "test", "sign-trainer"} <= upstream("train")
    assert "build-ci" in upstream("lint") and "test" in upstream("build-trainer")
    assert {"gate", "sign-serving", "attest-evidence", "test"} <= upstream("promote-staging")
    assert "promote-staging" in upstream("open-production-pr")
