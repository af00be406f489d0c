"""`sluice promote`: put a gated model version into an environment's overlay as a git commit.

Flow (every step before the push can fail and leave no trace):
  evidence check in MLflow -> temp clone of the target branch -> write model-version.yaml ->
  `kubectl kustomize` the overlay and the cluster folder -> verify the served image's signature
  -> commit -> push.
staging pushes to the target branch. production never does: it pushes `promote/<model>/v<N>`
and writes (and, with a token, opens) a pull request whose body carries the evidence.

Races: the push is a fast-forward-only ref update, so of two promotions on one branch exactly
one wins; the loser fetches the new tip, regenerates its change there (the overlay file is a
pure function of the promotion, so re-applying is exact where a textual rebase could conflict),
re-renders and pushes again, a bounded number of times.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gates.promotion import overlay
from gates.promotion.evidence_check import (
    DEFAULT_ARTIFACT_ROOT,
    Candidate,
    client_for,
    load_candidate,
    ui_links,
)
from gates.promotion.gitops import Checkout, PushRejected, clone_branch, clone_commit, git, repo_top
from gates.promotion.hooks import checkpoint
from gates.promotion.render import Rendered, inspect, kustomize_build
from ml.errors import SluiceError

MAX_ATTEMPTS = 5
KEY_ENV = "SLUICE_COSIGN_PUB"
UI_ENV = "SLUICE_MLFLOW_UI_URL"
ARTIFACT_ROOT_ENV = "SLUICE_ARTIFACT_ROOT"

Verifier = Callable[[str], None]


@dataclass
class PromotionResult:
    """What a promotion did; `changed` is False when the overlay already held the version."""

    model: str
    version: str
    env: str
    changed: bool
    target_branch: str
    branch: str | None = None  # where the commit went (target branch or promote/... branch)
    commit: str | None = None
    pushed: bool = False
    overlay_path: str = ""
    diff: str = ""
    image_lines: list[str] = field(default_factory=list)
    model_lines: list[str] = field(default_factory=list)
    evidence_path: Path | None = None
    report_path: Path | None = None
    pr_body_path: Path | None = None
    pr_url: str | None = None
    attempts: int = 1
    subject: str = ""  # the commit's first line; the pull request's title
    image: str | None = None  # the image the predictor runs after this change
    message: str = ""

    def lines(self) -> list[str]:
        out = [self.message]
        if self.diff:
            out += ["", "overlay diff:", self.diff.rstrip("\n")]
        if self.model_lines or self.image_lines:
            out += ["", "rendered:"] + [f"  {line}" for line in self.model_lines + self.image_lines]
        if self.report_path:
            out += ["", f"evidence report: {self.report_path}"]
        if self.pr_body_path:
            out.append(f"pull request body: {self.pr_body_path}")
        if self.pr_url:
            out.append(f"pull request: {self.pr_url}")
        return out


@dataclass
class Applied:
    rel: str
    diff: str
    rendered: Rendered
    state: overlay.OverlayState


# --- signature verification -------------------------------------------------------------------


def load_key(path: str | None) -> bytes | None:
    """The cosign public key from --key, else $SLUICE_COSIGN_PUB (a path, or the PEM itself)."""
    source = path or os.environ.get(KEY_ENV)
    if not source:
        return None
    if source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise SluiceError(f"cannot read cosign public key {source}: {exc.strerror}") from exc


def signature_verifier(
    env: str,
    key_pem: bytes | None,
    *,
    allow_insecure_loopback: bool = False,
    warn: Callable[[str], None] = print,
) -> Verifier:
    """Production: signature + passing gate-evidence attestation, key required. Staging: when keyed."""

    def verify(image: str) -> None:
        if key_pem is None:
            if env == "production":
                raise SluiceError(
                    f"production promotion needs a cosign public key (--key or ${KEY_ENV}) to verify {image}"
                )
            warn(f"warning: no cosign public key (--key or ${KEY_ENV}): signature of {image} NOT verified")
            return
        try:
            from gates.supply_chain.constants import PREDICATE_TYPE
            from gates.supply_chain.verify import verify_image
        except ImportError as exc:
            raise SluiceError(
                "signature verification is unavailable (gates.supply_chain not installed)"
            ) from exc
        try:
            verify_image(
                image,
                key_pem,
                attestation_type=PREDICATE_TYPE if env == "production" else None,
                allow_insecure_loopback=allow_insecure_loopback,
            )
        except SluiceError as exc:
            raise SluiceError(f"refusing {image}: {exc}") from exc

    return verify


# --- the change inside a checkout ----------------------------------------------------------------


def apply_change(
    co: Checkout,
    model: str,
    env: str,
    make_text: Callable[[overlay.OverlayState | None], str],
    verify: Verifier,
) -> Applied | None:
    """Write the overlay file in the checkout, render, verify; None when nothing would change."""
    rel = overlay.relative_overlay_file(model, env)
    directory = overlay.overlay_dir(co.path, model, env)
    if not (directory / "kustomization.yaml").is_file():
        raise SluiceError(
            f"no overlay apps/{model}/overlays/{env}/kustomization.yaml in the tree being promoted"
        )
    path = co.path / rel
    current = overlay.read(path, rel)
    text = make_text(current)
    new = overlay.parse(text, rel)
    if current is not None and current.identity() == new.identity():
        return None
    overlay.write_atomic(path, text)
    checkpoint("after-write")
    rendered = inspect(kustomize_build(directory), new.resource or model)
    isvc = next(
        o
        for o in rendered.objects
        if o.get("kind") == "InferenceService" and o["metadata"].get("name") == (new.resource or model)
    )
    served_uri = isvc["spec"]["predictor"]["model"].get("storageUri")
    if served_uri != new.model_uri:
        raise SluiceError(
            f"rendered {rel} serves {served_uri!r}, not {new.model_uri!r}: is the patch listed?"
        )
    cluster = co.path / "clusters" / env
    if (cluster / "kustomization.yaml").is_file():
        kustomize_build(cluster)
    verify(rendered.effective_image)
    checkpoint("after-render")
    return Applied(rel=rel, diff=co.diff(rel), rendered=rendered, state=new)


def commit_message(subject: str, body: list[str], trailers: dict[str, str]) -> str:
    lines = [subject, ""]
    if body:
        lines += [*body, ""]
    lines += [f"{key}: {value}" for key, value in trailers.items()]
    return "\n".join(lines) + "\n"


def promotion_branch(model: str, label: str) -> str:
    return f"promote/{model}/{label}"


def push_to_target(
    co: Checkout,
    branch: str,
    apply: Callable[[Checkout], Applied | None],
    message: Callable[[Applied], str],
    result: PromotionResult,
) -> PromotionResult:
    """Commit on the target branch and push; on a lost race re-apply on the new tip and retry."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        applied = apply(co)
        if applied is None:  # also when a racing promotion already put this very version there
            result.changed, result.commit = False, None
            return result
        result.commit = co.commit([applied.rel], message(applied))
        _fill(result, applied, message)
        checkpoint("after-commit")
        checkpoint("before-push")
        parent = co.git("rev-parse", "HEAD^").stdout.strip()
        try:
            co.push("HEAD", branch)
        except PushRejected as exc:
            tip = co.fetch(branch)
            if tip is None:
                raise SluiceError(
                    f"branch {branch} disappeared from the remote during the promotion"
                ) from None
            if tip == parent:  # refused although nothing moved: a hook or branch protection said no
                raise SluiceError(f"the remote refused the push to {branch}: {exc}") from None
            co.reset_to(tip)
            continue
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {branch} kept moving on the remote")


def push_review_branch(
    co: Checkout,
    review_branch: str,
    apply: Callable[[Checkout], Applied | None],
    message: Callable[[Applied], str],
    result: PromotionResult,
) -> PromotionResult:
    """Commit on top of the target tip and push it as `review_branch` (compare-and-swap)."""
    base = co.head()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        co.reset_to(base)
        applied = apply(co)
        if applied is None:
            result.changed, result.commit = False, None
            return result
        _fill(result, applied, message)
        existing = co.remote_sha(review_branch)
        if existing is not None and _branch_holds(co, existing, review_branch, applied):
            # A previous run (maybe killed before writing the PR body) already pushed it.
            result.commit, result.changed, result.pushed, result.branch = existing, True, True, review_branch
            return result
        result.commit = co.commit([applied.rel], message(applied))
        checkpoint("after-commit")
        checkpoint("before-push")
        try:
            co.push("HEAD", review_branch, expect=existing, lease=True)
        except PushRejected as exc:
            if co.remote_sha(review_branch) == existing:  # nothing moved: refused for another reason
                raise SluiceError(f"the remote refused the push to {review_branch}: {exc}") from None
            continue
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, review_branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {review_branch} kept moving on the remote")


def _branch_holds(co: Checkout, sha: str, branch: str, applied: Applied) -> bool:
    if co.fetch(branch) is None:
        return False
    text = co.show(sha, applied.rel)
    if text is None:
        return False
    return overlay.parse(text, applied.rel).identity() == applied.state.identity()


def _fill(result: PromotionResult, applied: Applied, message: Callable[[Applied], str]) -> None:
    result.subject = message(applied).splitlines()[0]
    result.overlay_path = applied.rel
    result.image = applied.rendered.effective_image
    result.diff = applied.diff
    result.image_lines = applied.rendered.image_lines
    result.model_lines = applied.rendered.model_lines


# --- promote ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromoteOptions:
    model: str
    version: str
    env: str
    image: str | None = None
    traffic: int | None = None
    mlflow_ui_url: str | None = None
    artifact_root: str = DEFAULT_ARTIFACT_ROOT


def _unchanged_result(opts: PromoteOptions, cand: Candidate, branch: str) -> PromotionResult:
    """The result before anything is applied; `changed` and the commit are filled in on success."""
    return PromotionResult(
        model=opts.model,
        version=opts.version,
        env=opts.env,
        changed=False,
        target_branch=branch,
        evidence_path=cand.evidence_path,
        report_path=cand.report_path,
    )


def _spec_maker(opts: PromoteOptions, cand: Candidate) -> Callable[[overlay.OverlayState | None], str]:
    mlflow_url, evidence_url = ui_links(opts.mlflow_ui_url, cand)

    def make(current: overlay.OverlayState | None) -> str:
        carried = current.image if current and current.version else None
        return overlay.render(
            overlay.ModelVersionSpec(
                resource=(current.resource if current and current.resource else opts.model),
                model=opts.model,
                version=opts.version,
                model_uri=cand.model_uri,
                image=opts.image or carried,
                evidence_sha256=cand.evidence_sha256,
                data_sha256=cand.data_sha256,
                mlflow_url=mlflow_url,
                evidence_url=evidence_url,
                traffic=opts.traffic,
            )
        )

    return make


def _promotion_message(opts: PromoteOptions, cand: Candidate) -> Callable[[Applied], str]:
    def message(applied: Applied) -> str:
        traffic = f" at {opts.traffic}% traffic" if opts.traffic is not None else ""
        return commit_message(
            f"promote({opts.model}): v{opts.version} to {opts.env}{traffic}",
            [
                f"Model URI: {cand.model_uri}",
                f"Serving image: {applied.rendered.effective_image}",
                f"Evidence sha256: {cand.evidence_sha256}",
                f"Data sha256: {cand.data_sha256 or 'not recorded'}",
            ],
            {
                "Sluice-Model": opts.model,
                "Sluice-Version": opts.version,
                "Sluice-Environment": opts.env,
                "Sluice-Evidence-Sha256": cand.evidence_sha256,
            },
        )

    return message


def check_options(opts: PromoteOptions) -> PromoteOptions:
    overlay.check_model_name(opts.model)
    overlay.check_env(opts.env)
    version = overlay.check_version(opts.version)
    if opts.image is not None:
        overlay.require_pinned(opts.image, "--image")
    if opts.traffic is not None and opts.env != "production":
        raise SluiceError("--traffic applies to production only (staging serves one version)")
    return PromoteOptions(**{**opts.__dict__, "version": version})


def promote(
    repo: Path,
    opts: PromoteOptions,
    *,
    tracking_uri: str,
    download_dir: Path,
    verify: Verifier,
    remote: str = "origin",
    branch: str = "main",
    pr_body_path: Path | None = None,
    open_pr: Callable[[str, str, str, str], str] | None = None,
    finalize_hint: str | None = None,
) -> PromotionResult:
    """Promote through the remote: staging straight to `branch`, production as a review branch."""
    opts = check_options(opts)
    repo = repo_top(repo)
    cand = load_candidate(
        client_for(tracking_uri), opts.model, opts.version, download_dir, opts.artifact_root
    )
    result = _unchanged_result(opts, cand, branch)
    make = _spec_maker(opts, cand)
    message = _promotion_message(opts, cand)

    def apply(co: Checkout) -> Applied | None:
        return apply_change(co, opts.model, opts.env, make, verify)

    with clone_branch(repo, remote, branch) as co:
        if opts.env == "staging":
            push_to_target(co, branch, apply, message, result)
        else:
            label = f"v{opts.version}" + (f"-traffic-{opts.traffic}" if opts.traffic is not None else "")
            push_review_branch(co, promotion_branch(opts.model, label), apply, message, result)
    if not result.changed:
        result.message = (
            f"{opts.env} already holds {opts.model} v{opts.version} on {branch}: nothing to commit"
        )
        return result
    if opts.env == "staging":
        retried = (
            f" (after {result.attempts} attempts: {branch} moved meanwhile)" if result.attempts > 1 else ""
        )
        where = f"{result.commit[:12]} pushed to {branch}{retried}"
        result.message = f"promoted {opts.model} v{opts.version} to staging: {where}"
        return result
    mlflow_url, evidence_url = ui_links(opts.mlflow_ui_url, cand)
    from gates.promotion.markdown import pull_request_body

    body = pull_request_body(
        model=opts.model,
        version=opts.version,
        env=opts.env,
        model_uri=cand.model_uri,
        image=result.image or "unknown",
        evidence_sha256=cand.evidence_sha256,
        data_sha256=cand.data_sha256,
        mlflow_url=mlflow_url,
        evidence_url=evidence_url,
        diff=result.diff,
        evidence=cand.evidence,
        finalize_command=finalize_hint or f"sluice promote --finalize --model {opts.model} --env production",
    )
    _write_pr(result, pr_body_path or download_dir / f"{opts.model}-v{opts.version}-production.md", body)
    if open_pr is not None:
        result.pr_url = open_pr(result.branch or "", branch, result.subject, body)
    result.message = (
        f"pushed {result.branch} ({result.commit[:12]}) for review; {branch} is unchanged until the pull "
        "request is merged"
    )
    return result


def _write_pr(result: PromotionResult, path: Path, body: str) -> None:
    overlay.write_atomic(path, body)
    result.pr_body_path = path


# --- the laptop loop ---------------------------------------------------------------------------


def promote_to_local_branch(
    repo: Path,
    model: str,
    version: str | int,
    *,
    tracking_uri: str | None = None,
    home: str | Path | None = None,
    image: str | None = None,
    env: str = "staging",
    mlflow_ui_url: str | None = None,
    key_pem: bytes | None = None,
    warn: Callable[[str], None] = print,
) -> PromotionResult:
    """Commit the promotion onto local branch `promote/<model>/<env>-v<N>` of `repo`.

    Built on the repository's HEAD commit in a temporary clone and pushed into `repo` as a new
    branch: the working tree, the index and the current branch stay exactly as they were. The
    model URI may be local (a laptop MLflow); cluster promotions refuse such URIs.
    """
    from ml.paths import home as sluice_home
    from ml.paths import tracking_uri as resolve_tracking_uri

    opts = check_options(
        PromoteOptions(model=model, version=str(version), env=env, image=image, mlflow_ui_url=mlflow_ui_url)
    )
    repo = repo_top(Path(repo))
    head = git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).stdout.strip()
    if not head:
        raise SluiceError(f"repository {repo} has no commit yet: commit once before promoting")
    location = sluice_home(home)
    uri = resolve_tracking_uri(home, tracking_uri)
    cand = load_candidate(client_for(uri), opts.model, opts.version, location.evidence, allow_local_uri=True)
    branch = promotion_branch(opts.model, f"{opts.env}-v{opts.version}")
    result = _unchanged_result(opts, cand, branch)
    verify = signature_verifier(opts.env, key_pem, warn=warn)
    make = _spec_maker(opts, cand)
    message = _promotion_message(opts, cand)
    with clone_commit(repo, head) as co:
        applied = apply_change(co, opts.model, opts.env, make, verify)
        if applied is None:
            result.message = (
                f"HEAD's {opts.env} overlay already holds {opts.model} v{opts.version}: no commit"
            )
            return result
        _fill(result, applied, message)
        existing = co.remote_sha(branch)
        if existing is not None and _branch_holds(co, existing, branch, applied):
            result.commit, result.changed, result.branch = existing, True, branch
            result.message = f"branch {branch} already holds {opts.model} v{opts.version} ({existing[:12]})"
            return result
        result.commit = co.commit([applied.rel], message(applied))
        checkpoint("after-commit")
        try:
            co.push("HEAD", branch, expect=existing, lease=True)
        except PushRejected as exc:
            raise SluiceError(f"branch {branch} changed while promoting; run again") from exc
    result.changed, result.pushed, result.branch = True, False, branch
    result.message = (
        f"committed {opts.model} v{opts.version} to local branch {branch} ({result.commit[:12]}); "
        "working tree and current branch untouched"
    )
    return result
