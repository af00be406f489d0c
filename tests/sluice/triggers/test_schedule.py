"""The retraining schedule: declared in git, rendered into a CronJob that validates, and a CronJob
whose event the EventListener's retraining trigger accepts: the embedded script is run exactly as
the CronJob runs it, against a loopback listener applying the trigger's HMAC check and CEL filter."""

from __future__ import annotations

import copy
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sluice.errors import SluiceError
from sluice.triggers import cron, event, schedule
from tests.conftest import REPO_ROOT
from tests.sluice.triggers import listener

DECLARATION = REPO_ROOT / "apps" / "credit-default" / "training" / "retraining.yaml"
CRONJOB = DECLARATION.with_name("cronjob.yaml")


@pytest.fixture(scope="module")
def cronjob() -> dict:
    return yaml.safe_load(CRONJOB.read_text())


def test_the_committed_cronjob_is_the_render_of_the_declaration() -> None:
    declared = schedule.load(DECLARATION)
    source = "apps/credit-default/training/retraining.yaml"
    assert CRONJOB.read_text() == schedule.to_yaml(schedule.cronjob(declared, source), source), (
        "stale: run `sluice trigger render --model credit-default`"
    )


def test_render_check_tells_a_stale_file(sluice, tmp_path: Path) -> None:
    copy_dir = tmp_path / "training"
    copy_dir.mkdir()
    (copy_dir / "retraining.yaml").write_text(DECLARATION.read_text().replace('"0 3 * * 1"', '"30 4 * * *"'))
    (copy_dir / "cronjob.yaml").write_text(CRONJOB.read_text())
    stale = sluice("trigger", "render", "--schedule", copy_dir / "retraining.yaml", "--check")
    assert stale.code == 1 and "is stale" in stale.err
    rendered = sluice("trigger", "render", "--schedule", copy_dir / "retraining.yaml")
    assert rendered.code == 0 and re.search(r"next fires: \S+T04:30\+00:00, ", rendered.out), rendered.out
    assert "schedule: 30 4 * * *" in (copy_dir / "cronjob.yaml").read_text()
    assert sluice("trigger", "render", "--schedule", copy_dir / "retraining.yaml", "--check").code == 0


def test_the_cronjob_validates_and_holds_only_its_secret_by_name(cronjob, validate) -> None:
    assert validate(cronjob) == []
    cron.check(cronjob["spec"]["schedule"])
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:3] == ["python", "-I", "-c"]
    assert container["command"][3] == Path(event.__file__).read_text(), "the CronJob runs event.py verbatim"
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert secret_refs == [{"name": "sluice-trigger-secret", "key": "secret"}]
    assert "github-webhook-secret" not in CRONJOB.read_text()
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "sluice-trigger"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_schema_check_bites_on_a_misspelt_cronjob(cronjob, validate) -> None:
    broken = copy.deepcopy(cronjob)
    broken["spec"]["schedul"] = broken["spec"].pop("schedule")
    assert any("schedul" in m for m in validate(broken))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("0 3 * * 1", "0 3 * * 7"), "day of week: 7"),
        (("0 3 * * 1", "0 3 * *"), "expected exactly 5 fields"),
        (("/data/credit-default/current.csv", "/etc/passwd"), "data.current"),
        (("/data/credit-default/current.csv", "/data/../etc/passwd"), "data.current"),
        (("secret: sluice-trigger-secret", "secrett: sluice-trigger-secret"), "trigger"),
        (("name: sluice/sluice", "name: sluice"), "repository.name"),
        (("timeZone: Etc/UTC", "timeZone: Mars/Olympus"), "timeZone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_the_field(tmp_path: Path, edit, field: str) -> None:
    old, new = edit
    path = tmp_path / "retraining.yaml"
    path.write_text(DECLARATION.read_text().replace(old, new, 1))
    with pytest.raises(SluiceError) as refused:
        schedule.load(path)
    message = str(refused.value)
    assert field in message and "\n" not in message, message


def _cronjob_env(cronjob: dict, **overrides: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it: values, and the Secret's value."""
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return {"PATH": os.environ["PATH"], **env, **overrides}


def _run_cronjob(cronjob: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_cronjob_posts_an_event_the_retraining_trigger_accepts(cronjob, demo_slice) -> None:
    """Hash, sign, post, accepted by the same interceptors and CEL filter as in the cluster."""
    secret = secrets.token_hex(32).encode()
    with listener.serve(secret) as el:
        env = _cronjob_env(
            cronjob,
            SLUICE_TRIGGER_URL=el.url,
            SLUICE_TRIGGER_SECRET=secret.decode(),
            SLUICE_DATA_HASH_FROM=str(demo_slice.current),  # the volume's snapshot, as a local copy
        )
        done = _run_cronjob(cronjob, env)
    assert done.returncode == 0, done.stderr
    assert "posted schedule event for credit-default" in done.stdout
    assert el.refused == [] and len(el.accepted) == 1
    body = el.accepted[0]["body"]
    assert body["sluice"]["data"] == {
        "path": "/data/credit-default/current.csv",
        "sha256": event.file_sha256(str(demo_slice.current)),
    }
    assert body["sluice"]["event"] == "schedule" and body["ref"] == "refs/heads/main"
    assert el.accepted[0]["headers"]["x-github-event"] == "sluice_retrain"


def test_a_cronjob_with_another_secret_is_refused_and_says_so(cronjob, demo_slice) -> None:
    with listener.serve(secrets.token_bytes(32)) as el:
        env = _cronjob_env(
            cronjob,
            SLUICE_TRIGGER_URL=el.url,
            SLUICE_TRIGGER_SECRET="not-the-secret",
            SLUICE_DATA_HASH_FROM=str(demo_slice.current),
        )
        done = _run_cronjob(cronjob, env)
    assert done.returncode == 1
    assert el.accepted == [] and el.refused == ["payload signature check failed"]
    assert "refused schedule event" in done.stderr


def test_an_unreachable_listener_or_missing_setting_is_exit_2(cronjob, demo_slice) -> None:
    from tests.conftest import free_port

    env = _cronjob_env(
        cronjob,
        SLUICE_TRIGGER_URL=f"http://127.0.0.1:{free_port()}",
        SLUICE_TRIGGER_SECRET="s",
        SLUICE_DATA_HASH_FROM=str(demo_slice.current),
    )
    unreachable = _run_cronjob(cronjob, env)
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    del env["SLUICE_TRIGGER_SECRET"]
    missing = _run_cronjob(cronjob, env)
    assert missing.returncode == 2 and "SLUICE_TRIGGER_SECRET" in missing.stderr
