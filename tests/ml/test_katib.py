"""`sluice tune --katib`: the search space rendered as its Katib Experiment. The committed Experiment
is exactly the render of the committed space (a stale one fails here), every field of the space
lands where Katib reads it, and a changed space is a new Experiment (Katib refuses edits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml.tuning.space import default_path, load
from sluice.environment import PYTHON_IMAGE
from sluice.lint import pins
from tests.conftest import REPO_ROOT

TRAINING = REPO_ROOT / "apps" / "credit-default" / "training"
COMMITTED = TRAINING / "experiment.yaml"
DECLARATION = TRAINING / "retraining.yaml"


@pytest.fixture
def katib_env(pinned_crds, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render validates against the pinned Katib OpenAPI document: read it from the session cache."""
    monkeypatch.setenv(pins.CACHE_ENV, str(pinned_crds.directory))
    monkeypatch.delenv(pins.MIRROR_ENV, raising=False)


def render(sluice, out: Path, *extra: str):
    return sluice("tune", "--katib", out, "--trainer-image", PYTHON_IMAGE, "--schedule", DECLARATION, *extra)


def test_the_committed_experiment_is_the_render_of_the_search_space(sluice, katib_env, tmp_path) -> None:
    out = tmp_path / "experiment.yaml"
    done = render(sluice, out)
    assert done.code == 0, done.err
    assert out.read_text() == COMMITTED.read_text(), (
        "apps/credit-default/training/experiment.yaml is stale: run `sluice tune --katib "
        "apps/credit-default/training/experiment.yaml --trainer-image <image> --schedule "
        "apps/credit-default/training/retraining.yaml`"
    )
    assert "unchanged" in render(sluice, out).out


def test_every_field_of_the_space_lands_where_katib_reads_it() -> None:
    space = load(default_path("credit-default"))
    spec = yaml.safe_load(COMMITTED.read_text())["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"]) == (
        space.trials,
        space.parallel,
        space.max_failed,
    )
    assert spec["objective"]["type"] == space.direction
    assert spec["objective"]["objectiveMetricName"] == space.metric
    settings = {s["name"]: s["value"] for s in spec["algorithm"]["algorithmSettings"]}
    assert spec["algorithm"]["algorithmName"] == "multivariate-tpe"
    assert settings == {"random_state": str(space.seed), "n_startup_trials": str(space.startup_trials)}
    declared = {p["name"]: p for p in spec["parameters"]}
    assert list(declared) == [p.name for p in space.parameters]
    forest_leaf = declared["min_samples_leaf"]["feasibleSpace"]
    assert forest_leaf["distribution"] == "logUniform" and forest_leaf["min"] == "1"
    assert declared["max_features"]["feasibleSpace"]["list"] == ["sqrt", "log2"]
    template = spec["trialTemplate"]
    container = template["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == PYTHON_IMAGE and container["command"][-1] == "ml.tuning.trial"
    assert f"--space-sha256={space.sha256}" in container["args"]
    for p in space.parameters:
        assert f"--set={p.name}=${{trialParameters.{p.name}}}" in container["args"]
    assert {t["reference"] for t in template["trialParameters"]} == set(declared)


def test_a_changed_space_is_a_new_experiment(sluice, katib_env, tmp_path) -> None:
    doc = yaml.safe_load(default_path("credit-default").read_text())
    doc["budget"]["trials"] = 30
    space = tmp_path / "credit-default.yaml"
    space.write_text(yaml.safe_dump(doc))
    out = tmp_path / "experiment.yaml"
    assert render(sluice, out, "--space", space).code == 0
    renamed = yaml.safe_load(out.read_text())
    committed = yaml.safe_load(COMMITTED.read_text())
    assert renamed["spec"]["maxTrialCount"] == 30
    assert renamed["metadata"]["name"] != committed["metadata"]["name"]
    assert renamed["metadata"]["name"].startswith("credit-default-tune-")


def test_an_unpinned_trainer_image_is_one_line(sluice, katib_env, tmp_path) -> None:
    out = tmp_path / "x.yaml"
    done = sluice("tune", "--katib", out, "--trainer-image", "python:3.11", "--schedule", DECLARATION)
    assert done.code == 2 and len(done.err_lines) == 1 and "--trainer-image" in done.err, done.err
    assert not out.exists()
