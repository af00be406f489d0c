"""`sluice trigger render|post|trainer-image`: the cluster side of continuous training.

- `render`: the model's retraining declaration (apps/<model>/training/retraining.yaml) → the
  CronJob beside it (`--check`: exit 1 when the committed one is stale).
- `post`: send one signed `sluice_retrain` event to the EventListener (what the CronJob does on
  schedule; by hand, or from `sluice monitor` in a cluster).
- `trainer-image`: the signed trainer image an environment runs (its overlay's
  `sluice.dev/trainer-image`), verified with cosign, written as Tekton results for the retraining
  pipeline: retraining never builds an image, it reuses the one that is already signed and serving.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sluice.errors import Refused, SluiceError

SECRET_ENV = "SLUICE_TRIGGER_SECRET"  # noqa: S105 - the variable name


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("trigger", help=summary, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    render = sub.add_parser("render", help="render the model's retraining CronJob from its declaration")
    _declaration_options(render)
    render.add_argument("--check", action="store_true", help="do not write: exit 1 if the file is stale")
    render.set_defaults(func=run_render)

    post = sub.add_parser("post", help="post one signed retraining event to the EventListener")
    _declaration_options(post)
    post.add_argument("--kind", choices=("schedule", "drift", "data"), required=True)
    post.add_argument("--url", help="EventListener URL (default: the declaration's trigger.url)")
    post.add_argument(
        "--secret-file", help=f"file holding the trigger Secret's value (default: ${SECRET_ENV})"
    )
    post.add_argument("--data", help="snapshot path as the cluster sees it (default: the declaration's)")
    post.add_argument("--data-sha256", help="its sha256 (default: hash --data, if it is readable here)")
    post.add_argument("--reason", default="", help="why (recorded in the event)")
    post.set_defaults(func=run_post)

    image = sub.add_parser("trainer-image", help="the verified trainer image of an environment's overlay")
    image.add_argument("--model", required=True)
    image.add_argument("--env", choices=("staging", "production"), default="staging")
    image.add_argument("--repo", default=".", help="the checkout holding apps/ (default: .)")
    image.add_argument("--url-file", help="write the image repository here (a Tekton result)")
    image.add_argument("--digest-file", help="write sha256:<digest> here (a Tekton result)")
    from sluice.cli.signing_options import keyless_options

    image.add_argument("--key", help="cosign public key (default: $SLUICE_COSIGN_PUB)")
    keyless_options(image)
    image.add_argument(
        "--allow-insecure-registry",
        action="store_true",
        help="read signatures over plain HTTP from a loopback registry (tests, laptops)",
    )
    image.set_defaults(func=run_trainer_image)


def _declaration_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="the model (its declaration is apps/<model>/training/retraining.yaml)"
    )
    parser.add_argument("--schedule", metavar="FILE", help="the retraining declaration, instead of --model")


def _root() -> Path:
    from sluice.git import work_tree

    return (work_tree() or Path.cwd()).resolve()


def load_declaration(args: argparse.Namespace):
    from sluice.triggers import schedule

    if not args.schedule and not args.model:
        raise SluiceError("name the model (--model M) or its declaration (--schedule FILE)")
    path = Path(args.schedule) if args.schedule else schedule.default_path(_root(), args.model)
    declared = schedule.load(path)
    if args.model and declared.model != args.model:
        raise SluiceError(f"{path} declares model {declared.model!r}, not {args.model!r}")
    return declared


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(_root()))
    except ValueError:
        return str(path)


def run_render(args: argparse.Namespace) -> int:
    from sluice.atomic import write_text
    from sluice.triggers import schedule

    declared = load_declaration(args)
    source = shown(declared.path)
    text = schedule.to_yaml(schedule.cronjob(declared, source), source)
    target = declared.path.with_name(schedule.CRONJOB_FILE)
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current != text:
            raise Refused(f"{shown(target)} is stale: run `sluice trigger render --model {declared.model}`")
        print(f"sluice: {shown(target)} is up to date")
        return 0
    if current == text:
        print(f"sluice: {shown(target)} unchanged")
        return 0
    write_text(target, text)
    print(f"sluice: wrote {shown(target)} (CronJob {declared.cronjob_name}, schedule {declared.schedule!r})")
    print(f"sluice: next fires: {_next_fires(declared.schedule, declared.time_zone)}")
    return 0


def _next_fires(schedule: str, time_zone: str) -> str:
    """The next three slots in the CronJob's own time zone: what a reviewer checks a cron against."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sluice.triggers.cron import CronError, next_fires

    try:
        fires = next_fires(schedule, dt.datetime.now(ZoneInfo(time_zone)))
    except CronError as exc:  # @every: no calendar to show
        return str(exc)
    return ", ".join(f.isoformat(timespec="minutes") for f in fires)


def _secret(args: argparse.Namespace) -> bytes:
    if args.secret_file:
        try:
            value = Path(args.secret_file).read_bytes().strip()
        except OSError as exc:
            raise SluiceError(f"cannot read --secret-file {args.secret_file}: {exc.strerror}") from exc
    else:
        value = os.environ.get(SECRET_ENV, "").encode()
    if not value:
        raise SluiceError(f"no trigger secret: pass --secret-file FILE or set ${SECRET_ENV}")
    return value


def run_post(args: argparse.Namespace) -> int:
    from sluice.triggers import event

    declared = load_declaration(args)
    data = args.data or declared.current
    sha = args.data_sha256
    if sha is None:
        if not Path(data).is_file():
            raise SluiceError(f"cannot hash {data} here: pass --data-sha256 (the snapshot's sha256)")
        sha = event.file_sha256(data)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise SluiceError(f"--data-sha256 must be 64 lowercase hex digits, got {sha!r}")
    status = post_event(declared, args.kind, data, sha, args.reason, _secret(args), args.url)
    return 0 if status else 1


def post_event(
    declared, kind: str, data: str, sha: str, reason: str, secret: bytes, url: str | None = None
) -> bool:
    """Sign and post; True when the listener accepted it. Unreachable is a SluiceError (exit 2)."""
    from sluice.triggers import event

    repository = {"clone_url": declared.repository_url, "full_name": declared.repository_name}
    raw = event.body(
        kind,
        declared.model,
        data,
        sha,
        declared.reference,
        declared.contract,
        repository,
        declared.ref,
        reason,
    )
    headers = event.sign(raw, secret)
    target = url or declared.url
    try:
        status, answer = event.post(target, raw, headers)
    except OSError as exc:
        raise SluiceError(f"cannot reach the EventListener at {target}: {exc}") from exc
    delivery = headers[event.DELIVERY_HEADER]
    line = f"{kind} event for {declared.model} (data sha256 {sha[:12]}, delivery {delivery})"
    if 200 <= status < 300:
        print(f"sluice: posted {line} to {target}: HTTP {status}")
        return True
    print(
        f"sluice: refused: the EventListener answered HTTP {status} to the {line}: {answer}", file=sys.stderr
    )
    return False


def run_trainer_image(args: argparse.Namespace) -> int:
    from sluice.atomic import write_text
    from sluice.cli.promotion_options import signature_trust
    from sluice.promotion import overlay
    from sluice.promotion.signatures import signature_verifier

    rel = overlay.relative_overlay_file(overlay.check_model_name(args.model), args.env)
    state = overlay.read(Path(args.repo) / rel, rel)
    if state is None or not state.trainer_image:
        raise SluiceError(
            f"{rel} names no trainer image ({overlay.ANN_TRAINER_IMAGE}): nothing trained in the cluster has "
            f"been promoted to {args.env} yet; run the deliver pipeline first"
        )
    trust = signature_trust(args)
    if trust is None:
        raise SluiceError(
            "the trainer image must be verified: pass --key (or $SLUICE_COSIGN_PUB) or a keyless identity"
        )
    # The signature only: the gate-evidence attestation belongs to serving images, not the trainer.
    verify = signature_verifier("staging", trust, allow_insecure_loopback=args.allow_insecure_registry)
    verify(state.trainer_image)
    url, digest = state.trainer_image.rsplit("@", 1)
    if args.url_file:
        write_text(args.url_file, url)
    if args.digest_file:
        write_text(args.digest_file, digest)
    print(f"sluice: {args.env} runs trainer image {state.trainer_image}: signature verified")
    return 0
