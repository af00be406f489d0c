"""Evidence written before v2 stays readable and verifiable.

The fixtures are real v1 documents: written by the gates of commit 959b7ed (a `sluice run` on a
3,000-row demo slice), byte for byte. They load under their own schema, render, count, and a
version that cites one by digest in the old layout (`evidence/model-evidence.json`, no artifact
tag) still passes `sluice promote`'s evidence check and shows in `sluice evidence list`/`show`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from pathlib import Path

import pytest

from gates.evidence import SCHEMA_V1, load_evidence, summarize, to_html, to_markdown, validate_evidence
from sluice.cli import main
from sluice.errors import SluiceError
from tests.gates.report_parsing import Page

V1 = Path(__file__).parent / "fixtures" / "evidence-v1"


@pytest.mark.parametrize(
    "name", ["data-evidence.json", "model-evidence-passed.json", "model-evidence-failed.json"]
)
def test_v1_documents_load_render_and_count(name):
    doc = load_evidence(V1 / name)
    assert doc["schema_version"] == SCHEMA_V1 and "verdict" not in doc
    summary = summarize(doc)
    assert summary.passed == doc["passed"]
    assert to_markdown(doc).startswith(f"## {doc['kind'].capitalize()} gate {summary.word}")
    page = Page(to_html(doc))
    assert doc["summary"] in page.text_of("p") and page.active_content() == []


def test_v1_counts_read_the_old_names():
    failed = summarize(load_evidence(V1 / "model-evidence-failed.json"))
    assert [c["name"] for c in failed.failures] == ["latency.achieved_rps"]
    assert failed.refusal().startswith("model gate failed: latency.achieved_rps: answered")
    data = load_evidence(V1 / "data-evidence.json")
    assert any(c["name"].startswith("nulls.") for c in data["checks"])  # the column packed in the name
    assert summarize(data).counts["blocking_failed"] == 0


def test_a_v1_document_is_not_mistaken_for_v2():
    doc = json.loads((V1 / "data-evidence.json").read_text())
    doc["schema_version"] = "sluice.dev/evidence/v2"
    with pytest.raises(SluiceError, match="evidence schema"):
        validate_evidence(doc)
    doc["schema_version"] = "sluice.dev/evidence/v9"
    with pytest.raises(SluiceError, match="is not one of"):
        validate_evidence(doc)


@pytest.mark.slow
def test_a_version_citing_v1_evidence_in_the_old_layout_still_verifies(mlflow_server, tmp_path, capsys):
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from sluice.promotion.evidence_check import load_candidate

    # The session's server is shared and `credit-default` belongs to the pipeline tests: the v1
    # document is re-issued for a model of its own (one field changed, still a valid v1 document).
    model = f"v1-evidence-{uuid.uuid4().hex[:6]}"
    doc = json.loads((V1 / "model-evidence-passed.json").read_text())
    doc["subject"]["model"] = model
    evidence = tmp_path / "model-evidence.json"
    evidence.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    assert load_evidence(evidence)["schema_version"] == SCHEMA_V1
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        x = np.random.RandomState(3).rand(30, 2)
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(x, x[:, 0] > 0.5), name="model", registered_model_name=model,
                serialization_format="cloudpickle", pip_requirements=["scikit-learn"],
            )
            with tempfile.TemporaryDirectory() as staging:  # the pre-v2 layout: evidence/<stem>.*
                for suffix in (".json", ".md", ".html"):
                    target = Path(staging) / f"model-evidence{suffix}"
                    target.write_bytes(evidence.read_bytes() if suffix == ".json" else b"rendering")
                mlflow.log_artifacts(staging, "evidence")
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    version = str(info.registered_model_version)
    client.set_model_version_tag(model, version, "sluice.evidence_sha256", digest)
    client.set_model_version_tag(model, version, "sluice.evidence_passed", "true")

    candidate = load_candidate(client, model, version, tmp_path / "download", allow_local_uri=True)
    assert candidate.evidence_sha256 == digest and candidate.report_artifact == "evidence/model-evidence.html"
    assert candidate.evidence["schema_version"] == SCHEMA_V1

    capsys.readouterr()
    listing = ["evidence", "list", "--model", model, "--tracking-uri", mlflow_server, "--format", "json"]
    assert main(listing) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["sha256"], a["legacy"], a["versions"], a["run_id"]) for a in listed] == [
        (digest, True, [version], run.info.run_id)
    ]
    assert main(["evidence", "show", digest[:10], "--tracking-uri", mlflow_server, "--format", "json"]) == 0
    assert hashlib.sha256(capsys.readouterr().out.encode()).hexdigest() == digest
