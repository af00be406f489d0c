"""Every `sluice.*` MLflow tag, and the identity fields they carry, defined once.

Modelled on MLflow's own `mlflow/utils/mlflow_tags.py`: writers and readers import the constant,
so a tag cannot be spelt two ways. The identity of a training run (what data, reference, contract,
code and policy it saw) has ONE field name everywhere: pipeline parameters, evidence `subject`,
run records and tags (`sluice.<field>`). Versions registered before the names were unified carry
`sluice.reference_data_sha256` and `sluice.git_commit`; `read_tag` still finds those.

Standard library only: the run-key fast path reads tags without importing MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "sluice."

# --- identity fields: the same names in pipeline parameters, evidence subjects and run records
DATA_SHA256_FIELD = "data_sha256"
REFERENCE_SHA256_FIELD = "reference_sha256"
CONTRACT_SHA256_FIELD = "contract_sha256"
POLICY_SHA256_FIELD = "policy_sha256"
CODE_COMMIT_FIELD = "code_commit"
CODE_VERSION_FIELD = "code_version"
# What a registered version's tags must say about where it came from (in this order in displays).
IDENTITY_FIELDS = (
    DATA_SHA256_FIELD,
    REFERENCE_SHA256_FIELD,
    CONTRACT_SHA256_FIELD,
    CODE_COMMIT_FIELD,
    CODE_VERSION_FIELD,
)

# --- tags on runs and model versions
RUN_KEY = "sluice.run_key"
MODEL_NAME = "sluice.model_name"
MODEL_TYPE = "sluice.model_type"
MODEL_LOGGED = "sluice.model_logged"  # set last on a training run: the run is complete
DATA_SHA256 = "sluice.data_sha256"
REFERENCE_SHA256 = "sluice.reference_sha256"
CONTRACT_SHA256 = "sluice.contract_sha256"
POLICY_SHA256 = "sluice.policy_sha256"
CODE_COMMIT = "sluice.code_commit"
CODE_VERSION = "sluice.code_version"
PARAMS = "sluice.params"
PIPELINE_RUN_ID = "sluice.pipeline_run_id"  # the KFP run that created a version
# `sluice.pipeline_run.<KFP run id>` = reused | rejected: what another pipeline run did.
PIPELINE_RUN_PREFIX = "sluice.pipeline_run."
EVIDENCE_SHA256 = "sluice.evidence_sha256"
EVIDENCE_PASSED = "sluice.evidence_passed"
EVIDENCE_ARTIFACT = "sluice.evidence_artifact"
EVIDENCE_REASON = "sluice.evidence_reason"  # on a run: why its latest model-gate attempt failed
# The gate attempt whose evidence the EVIDENCE_* tags of a version (or run) describe.
EVIDENCE_ATTEMPT = "sluice.evidence_attempt"
# `sluice.attempt.<attempt id>` on a run = one gate attempt's index entry (JSON: kind, verdict,
# digest, time, inputs, failing checks); its evidence lies under the run's `evidence/<attempt id>/`.
ATTEMPT_PREFIX = "sluice.attempt."
GATE_RUN = "sluice.gate_run"  # "data" on a run that holds only data-gate attempts (nothing trained)
REGISTRATION_COMPLETE = "sluice.registration_complete"
# On a training run whose model has no fast serving path (no `onnx` flavor): the one-line reason.
SERVING_EXPORT_ERROR = "sluice.serving_export_error"
PRODUCTION_COMMIT = "sluice.production_commit"  # set by `sluice promote --finalize`
# The environment a version was trained in (sluice/environment.py): sha256 of the runtime lock export
# it was installed from, and the trainer image (REF@sha256:...) its pipeline ran in; each when known.
LOCK_SHA256 = "sluice.lock_sha256"
TRAINER_IMAGE = "sluice.trainer_image"
METRIC_PREFIX = "sluice.metric."  # sluice.metric.<accuracy|f1|roc_auc>: holdout figures

# Names written before the identity fields were unified; read, never written.
LEGACY_NAMES = {
    REFERENCE_SHA256: "sluice.reference_data_sha256",
    CODE_COMMIT: "sluice.git_commit",
}


def identity_tag(field: str) -> str:
    """The tag holding identity field `field` (one of IDENTITY_FIELDS or POLICY_SHA256_FIELD)."""
    return PREFIX + field


def attempt_tag(attempt_id: str) -> str:
    return ATTEMPT_PREFIX + attempt_id


def metric_tag(metric: str) -> str:
    return METRIC_PREFIX + metric


def read_tag(tags: Mapping[str, str] | None, name: str) -> str | None:
    """A tag's value, falling back to its pre-unification name; None when neither is set."""
    tags = tags or {}
    value = tags.get(name)
    if value is None and name in LEGACY_NAMES:
        value = tags.get(LEGACY_NAMES[name])
    return value


def identity_tags(identity: Mapping[str, str]) -> dict[str, str]:
    """Tags for every identity field present in `identity` (a run record or pipeline arguments)."""
    return {identity_tag(f): str(identity[f]) for f in IDENTITY_FIELDS if identity.get(f) is not None}


def read_identity(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The identity fields a version's tags record (old and new names), missing ones left out."""
    found = {f: read_tag(tags, identity_tag(f)) for f in IDENTITY_FIELDS}
    return {f: v for f, v in found.items() if v}
