"""`sluice promote --finalize`: make MLflow's `champion` alias follow what production's git holds.

Git is the truth about what runs; the registry's aliases are a convenient index of it. So the
alias moves only after the production pull request is merged, and it moves to whatever the
production overlay on the target branch holds (merged promotion or merged rollback alike):
  champion -> that version; the previous champion -> archived; challenger cleared if it was it.
Each step is idempotent, so a finalize interrupted halfway is completed by running it again.
Run it from the delivery pipeline on every push to the target branch that touches a production
overlay (or by hand after merging).
"""

from __future__ import annotations

from pathlib import Path

from sluice import tags
from sluice.errors import Refused, SluiceError
from sluice.promotion import overlay
from sluice.promotion.evidence_check import client_for, mlflow_call
from sluice.promotion.gitops import clone_branch, repo_top

CHAMPION, CHALLENGER, ARCHIVED = "champion", "challenger", "archived"


def finalize(
    repo: Path,
    model: str,
    *,
    tracking_uri: str,
    remote: str = "origin",
    branch: str = "main",
    env: str = "production",
) -> str:
    overlay.check_model_name(model)
    if env != "production":
        raise SluiceError("--finalize applies to production: champion names what production serves")
    rel = overlay.relative_overlay_file(model, env)
    with clone_branch(repo_top(repo), remote, branch) as co:
        text = co.show("HEAD", rel)
        commit = co.git("log", "-1", "--format=%H", "--", rel).stdout.strip()
    if text is None:
        raise SluiceError(f"{rel} does not exist on {remote}/{branch}")
    state = overlay.parse(text, rel)
    if not state.version:
        raise SluiceError(f"production overlay of {model} on {remote}/{branch} holds no version yet")
    version = state.version
    client = client_for(tracking_uri)
    mv = mlflow_call(f"model {model} version {version}", client.get_model_version, model, version)
    found = dict(mv.tags or {})
    if found.get(tags.EVIDENCE_PASSED, "").lower() != "true":
        raise Refused(
            f"production holds {model} v{version} but its evidence did not pass: not making it champion"
        )
    if state.evidence_sha256 and found.get(tags.EVIDENCE_SHA256) != state.evidence_sha256:
        raise Refused(
            f"production overlay records evidence {state.evidence_sha256[:12]}… but MLflow's "
            f"{tags.EVIDENCE_SHA256} for v{version} is {str(found.get(tags.EVIDENCE_SHA256))[:12]}…: "
            "registry and git disagree"
        )
    aliases = dict(mlflow_call(f"registered model {model}", client.get_registered_model, model).aliases or {})
    previous = aliases.get(CHAMPION)
    steps = []
    if str(previous) != version:
        mlflow_call("set champion", client.set_registered_model_alias, model, CHAMPION, version)
        steps.append(f"champion -> v{version}")
        if previous is not None:
            mlflow_call("set archived", client.set_registered_model_alias, model, ARCHIVED, str(previous))
            steps.append(f"archived -> v{previous}")
    if str(aliases.get(CHALLENGER)) == version:
        mlflow_call("clear challenger", client.delete_registered_model_alias, model, CHALLENGER)
        steps.append("challenger cleared")
    if found.get(tags.PRODUCTION_COMMIT) != commit:
        mlflow_call(
            "tag version", client.set_model_version_tag, model, version, tags.PRODUCTION_COMMIT, commit
        )
    if not steps:
        return f"champion of {model} is already v{version}, as production on {branch} holds: nothing to do"
    return f"finalized {model}: production on {branch} holds v{version} ({commit[:12]}); " + ", ".join(steps)
