"""`sluice status`: per model and environment, what git holds next to what MLflow's aliases say.

Git (the target branch on the remote, what Argo CD reconciles) is the truth; aliases are an index
that can drift: a forgotten `--finalize`, a hand-moved alias, a rollback. Status shows both and
names every disagreement, exiting 1 when there is one so CI can alert on drift.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.evidence_check import client_for
from sluice.promotion.finalize import CHALLENGER, CHAMPION
from sluice.promotion.gitops import Checkout, clone_branch, repo_top

ARGOCD_TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass
class Row:
    model: str
    env: str
    version: str | None
    image: str | None
    model_uri: str | None
    traffic: int | None
    aliases: list[str] = field(default_factory=list)
    argocd: dict[str, Any] | None = None
    trace: str = ""  # the command that walks this line back to its data, code, evidence and signature


@dataclass
class Status:
    branch: str
    rows: list[Row]
    mismatches: list[str]
    registry: dict[str, dict[str, str]]  # model -> alias -> version


def read_overlays(co: Checkout) -> tuple[dict[str, dict[str, overlay.OverlayState]], list[str]]:
    """Every overlay's state, and one line per file that does not parse (with the commit that
    last changed it): a broken machine-owned file is reported, never a reason to stop."""
    found: dict[str, dict[str, overlay.OverlayState]] = {}
    unreadable = []
    for path in sorted((co.path / "apps").glob(f"*/overlays/*/{overlay.FILE_NAME}")):
        model, env = path.parts[-4], path.parts[-2]
        if env not in overlay.ENVIRONMENTS:
            continue
        rel = path.relative_to(co.path).as_posix()
        try:
            state = overlay.read(path, rel)
        except overlay.MalformedOverlay as exc:
            why = str(exc).split(": ", 1)[-1]
            unreadable.append(
                f"{rel} is unreadable as of commit {co.last_change(rel)[:12]} ({why}): "
                f"promote a version to {env} to regenerate it"
            )
            continue
        if state is not None:
            found.setdefault(model, {})[env] = state
    return found, unreadable


def mismatches_for(
    model: str, states: dict[str, overlay.OverlayState], aliases: dict[str, str] | None
) -> list[str]:
    if aliases is None:
        return [f"{model}: not a registered model in MLflow, yet apps/{model} has overlays"]
    found = []
    production = states.get("production")
    staging = states.get("staging")
    prod_version = production.version if production else None
    stage_version = staging.version if staging else None
    champion = aliases.get(CHAMPION)
    challenger = aliases.get(CHALLENGER)
    if prod_version and champion != prod_version:
        found.append(
            f"{model}: production holds v{prod_version} but champion is "
            f"{'v' + champion if champion else 'unset'} "
            f"(run: sluice promote --finalize --model {model} --env production)"
        )
    if champion and not prod_version:
        found.append(f"{model}: champion is v{champion} but production holds no version")
    if challenger and challenger != stage_version and challenger != prod_version:
        found.append(
            f"{model}: challenger v{challenger} is not in staging (staging holds "
            f"{'v' + stage_version if stage_version else 'nothing'})"
        )
    return found


def trace_command(model: str, env: str, remote: str, branch: str) -> str:
    """`sluice trace` for one environment line, naming the ref only when it is not the default."""
    ref = "" if (remote, branch) == ("origin", "main") else f" --remote {remote} --ref {branch}"
    return f"sluice trace --model {model} --env {env}{ref}"


def collect(
    repo: Path,
    *,
    tracking_uri: str,
    remote: str = "origin",
    branch: str = "main",
    argocd_url: str | None = None,
    argocd_app: str = "sluice-{env}",
) -> Status:
    with clone_branch(repo_top(repo), remote, branch) as co:
        overlays, unreadable = read_overlays(co)
    if not overlays and not unreadable:
        raise SluiceError(f"no apps/<model>/overlays/<env>/{overlay.FILE_NAME} on {remote}/{branch}")
    client = client_for(tracking_uri)
    from mlflow.exceptions import MlflowException

    rows, problems, registry = [], list(unreadable), {}
    for model, states in overlays.items():
        try:
            aliases = {k: str(v) for k, v in (client.get_registered_model(model).aliases or {}).items()}
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise SluiceError(f"MLflow error reading {model}: {str(exc).splitlines()[0]}") from exc
            aliases = None
        except OSError as exc:
            raise SluiceError(f"cannot reach the MLflow tracking server at {tracking_uri}") from exc
        registry[model] = aliases or {}
        problems += mismatches_for(model, states, aliases)
        for env in overlay.ENVIRONMENTS:
            state = states.get(env)
            if state is None:
                continue
            rows.append(
                Row(
                    model=model,
                    env=env,
                    version=state.version,
                    image=state.image,
                    model_uri=state.model_uri,
                    traffic=state.traffic,
                    aliases=sorted(
                        a for a, v in (aliases or {}).items() if state.version and v == state.version
                    ),
                    trace=trace_command(model, env, remote, branch),
                )
            )
    if argocd_url:
        problems += _add_argocd(rows, argocd_url, argocd_app)
    return Status(branch=branch, rows=rows, mismatches=problems, registry=registry)


def _add_argocd(rows: list[Row], base_url: str, app_template: str) -> list[str]:
    """Sync/health per environment from the Argo CD API (sluice.argocd.api, the Argo CD area's)."""
    try:
        module = importlib.import_module("sluice.argocd.api")
    except ModuleNotFoundError as exc:
        raise SluiceError("--argocd needs sluice.argocd.api, which is not installed in this build") from exc
    token = os.environ.get(ARGOCD_TOKEN_ENV, "")
    cache: dict[str, dict] = {}
    problems = []
    for row in rows:
        app = app_template.format(env=row.env, model=row.model)
        if app not in cache:
            cache[app] = module.fetch_app_status(base_url, token, app)
            sync = _argocd_cell(cache[app]).split("/")[0]
            if sync != "Synced":
                problems.append(
                    f"Argo CD application {app} is {sync}: git holds changes the cluster does not run"
                )
        row.argocd = cache[app]
    return problems


def format_table(status: Status, with_trace: bool = False) -> str:
    header = ("MODEL", "ENV", "GIT", "ALIASES", "TRAFFIC", "IMAGE")
    lines = []
    for row in status.rows:
        image = row.image or "(runtime default)"
        if "@sha256:" in image:
            name, digest = image.split("@sha256:", 1)
            image = f"{name}@sha256:{digest[:12]}…"
        cells = (
            row.model,
            row.env,
            f"v{row.version}" if row.version else "unpromoted",
            ",".join(row.aliases) or "-",
            f"{row.traffic}%" if row.traffic is not None else "-",
            image,
        )
        if row.argocd is not None:
            cells = (*cells, _argocd_cell(row.argocd))
        if with_trace:
            cells = (*cells, row.trace)
        lines.append(cells)
    if any(row.argocd is not None for row in status.rows):
        header = (*header, "ARGO CD")
    if with_trace:
        header = (*header, "TRACE")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=False)]
    out = [
        "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()
        for cells in (header, *lines)
    ]
    if status.mismatches:
        out += ["", "mismatches:"] + [f"  {m}" for m in status.mismatches]
    else:
        out += ["", f"git ({status.branch}) and MLflow aliases agree"]
    return "\n".join(out)


def _argocd_cell(info: dict) -> str:
    sync = info.get("sync") or info.get("sync_status") or "?"
    health = info.get("health") or info.get("health_status") or "?"
    if isinstance(sync, dict):
        sync = sync.get("status", "?")
    if isinstance(health, dict):
        health = health.get("status", "?")
    return f"{sync}/{health}"


def format_json(status: Status) -> str:
    return json.dumps(
        {
            "branch": status.branch,
            "rows": [asdict(r) for r in status.rows],
            "mismatches": status.mismatches,
            "registry": status.registry,
        },
        indent=2,
        sort_keys=True,
    )
