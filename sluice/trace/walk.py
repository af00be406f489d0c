"""`sluice trace`: from what an environment runs back to its data, code, evidence and signature.

One walk per (model, environment) at one git commit, six hops in order (overlay, version,
evidence, code, data, image), each verified against the hop before it. The same code serves the
laptop loop (a local branch and a SQLite store) and a cluster setup (the remote branch Argo CD
watches, an MLflow server, a registry): only where git, MLflow and the registry are differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.evidence_check import DEFAULT_ARTIFACT_ROOT, client_for
from sluice.promotion.gitops import Checkout
from sluice.trace import gitref, provenance, registry
from sluice.trace.hops import Hop, Trace, fail, skip, unreachable
from sluice.trace.image import image_hop, served_image

if TYPE_CHECKING:
    from sluice.supply_chain.trust import Trust

MLFLOW_HOPS = ("version", "evidence", "code", "data")


@dataclass(frozen=True)
class Request:
    """What to trace (model + env, model + version, or an image) and where to look."""

    repo: Path
    tracking_uri: str
    model: str | None = None
    env: str | None = None
    version: str | None = None
    image: str | None = None
    ref: str | None = None
    remote: str = "origin"
    branch: str = "main"
    artifact_root: str = DEFAULT_ARTIFACT_ROOT
    data: str | None = None
    home: Path | None = None  # a laptop home: its run records say where the snapshot was read
    code_repo: Path | None = None  # where the code commit lives, when not in the GitOps repository
    trust: Trust | None = None
    allow_insecure_loopback: bool = False
    docker_config: str | None = None


def check_request(req: Request) -> Request:
    """Usage errors (exit 2) before anything is read: exactly one way of naming what to trace."""
    if req.image:
        if req.model or req.env or req.version:
            raise SluiceError("trace IMAGE@sha256:… takes no --model, --env or --version")
        overlay.require_pinned(req.image, "image", error=SluiceError)
        return req
    if not req.model:
        raise SluiceError("trace needs --model with --env or --version, or an IMAGE@sha256:… to find")
    overlay.check_model_name(req.model)
    if req.env:
        overlay.check_env(req.env)
    if req.version:
        return Request(**{**req.__dict__, "version": overlay.check_version(req.version)})
    if not req.env:
        raise SluiceError(f"trace --model {req.model} needs --env staging|production or --version V")
    return req


def _targets(co: Checkout, req: Request, where: str) -> list[tuple[str | None, str | None]]:
    """(model, env) pairs to walk; env None when nothing at the ref serves what was asked for."""
    if req.model and req.env:
        return [(req.model, req.env)]
    overlays = gitref.overlays_at(co)
    if req.model:  # --version: every environment holding it, else the version alone
        held = [
            (req.model, env) for env, st in overlays.get(req.model, {}).items() if st.version == req.version
        ]
        return held or [(req.model, None)]
    found = [(m, e) for m, envs in overlays.items() for e, st in envs.items() if st.image == req.image]
    if not found:  # overlays that leave the image to the runtime: what they render to
        for m, envs in overlays.items():
            for e, st in envs.items():
                if not st.image and st.version and _renders(co, m, e, st) == req.image:
                    found.append((m, e))
    return found or [(None, None)]


def _renders(co: Checkout, model: str, env: str, state: overlay.OverlayState) -> str | None:
    try:
        return served_image(co, model, env, state)
    except SluiceError:
        return None


def _mlflow_hops(
    trace: Trace, co: Checkout, req: Request, client: Any, state: overlay.OverlayState | None
) -> None:
    model, version = trace.model or "", trace.version or ""
    history = gitref.promotion_history(co, model)
    hop, mv = registry.version_hop(client, model, version, state, history, req.artifact_root)
    trace.hops.append(hop)
    if mv is None:
        why = f"v{version} could not be read from MLflow"
        trace.hops += [skip(name, why) for name in MLFLOW_HOPS[1:]]
        return
    found = dict(mv.tags or {})
    attempts: list[Any] = []

    def evidence() -> Hop:
        hop, attempts[:] = registry.evidence_hop(client, model, version, mv, state)
        return hop

    trace.hops += [
        _guarded("evidence", evidence),
        _guarded("code", lambda: provenance.code_hop(co, [p for p in (req.repo, req.code_repo) if p], found)),
        _guarded("data", lambda: provenance.data_hop(client, found, attempts, req.data, req.home)),
    ]


def _guarded(name: str, check: Callable[[], Hop]) -> Hop:
    """A hop that could not be completed is its ✘ line (naming why), never a crash of the trace."""
    try:
        return check()
    except SluiceError as exc:
        return registry.failed(name, exc)


def _walk(
    co: Checkout,
    where: str,
    req: Request,
    target: tuple[str | None, str | None],
    client: Any,
    mlflow_down: str | None,
) -> Trace:
    model, env = target
    trace = Trace(model=model, env=env, ref=where, commit=co.head(), version=req.version, image=req.image)
    state = None
    if model and env:
        hop, state = gitref.overlay_hop(co, model, env, where)
        trace.hops.append(hop)
        trace.version = req.version or (state.version if state else None)
    elif model:
        trace.hops.append(skip("overlay", f"{model} v{req.version} is in no overlay at {where}"))
    else:
        trace.hops.append(fail("overlay", f"no overlay at {where} serves {req.image}"))
    if not (model and trace.version):
        trace.hops += [skip(name, "no model version to look up") for name in MLFLOW_HOPS]
    elif mlflow_down:
        trace.hops += [unreachable(name, mlflow_down) for name in MLFLOW_HOPS]
    else:
        _mlflow_hops(trace, co, req, client, state)
    trace.hops.append(_image(co, trace, state, req))
    return trace


def _image(co: Checkout, trace: Trace, state: overlay.OverlayState | None, req: Request) -> Hop:
    if trace.image is None and state is not None and state.version and trace.model and trace.env:
        try:
            trace.image = served_image(co, trace.model, trace.env, state)
        except SluiceError as exc:
            return fail("image", f"cannot tell which image serves {trace.model} in {trace.env}: {exc}")
    return image_hop(
        trace.image,
        trace.env,
        req.trust,
        allow_insecure_loopback=req.allow_insecure_loopback,
        docker_config=req.docker_config,
    )


def trace(req: Request, probe: Callable[[str], None] | None = None) -> list[Trace]:
    """Walk every target; `probe(tracking_uri)` raises SluiceError when MLflow does not answer."""
    req = check_request(req)
    mlflow_down = None
    if probe is not None:
        try:
            probe(req.tracking_uri)
        except SluiceError as exc:
            mlflow_down = str(exc)
    client = client_for(req.tracking_uri)
    with gitref.open_ref(req.repo, req.remote, req.ref, req.branch) as (co, where):
        return [_walk(co, where, req, target, client, mlflow_down) for target in _targets(co, req, where)]
