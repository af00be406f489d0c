"""The signed retraining event: what a schedule, a drift monitor or new data posts to the EventListener.

It goes through the same interceptor chain as a GitHub push: Tekton's GitHub interceptor checks
the HMAC-SHA256 of the raw body (`X-Hub-Signature-256: sha256=<hex>`) against a Secret and that
`X-GitHub-Event` is in the trigger's allowed `eventTypes`, then a CEL filter checks the body. The
retraining trigger has its own Secret (`sluice-trigger-secret`) and its own event type
(`sluice_retrain`), so whatever holds that Secret can ask for a retraining run and nothing else:
it cannot forge a push, and push deliveries are refused by the retraining trigger.

Standard library only, on purpose: the schedule's CronJob runs this very file (`python -c`, source
embedded by `sluice trigger render`) in a small pinned Python image, so the CronJob, `sluice trigger
post` and `sluice monitor` send byte-for-byte the same kind of event. `verify()` mirrors the
interceptor (tektoncd/triggers pkg/interceptors/github) for the tests and for local checks.

As a script (the CronJob): the settings come from the environment (ENV_* below), the secret from
the Secret by name; exit 0 when the listener accepted the event, 1 when it refused it, 2 when it
could not be sent (unreachable, bad settings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

EVENT_TYPE = "sluice_retrain"  # the X-GitHub-Event value of every retraining event
KINDS = ("schedule", "drift", "data")
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
TIMEOUT_S = 30
ENV = {
    "url": "SLUICE_TRIGGER_URL",
    "secret": "SLUICE_TRIGGER_SECRET",
    "kind": "SLUICE_TRIGGER_KIND",
    "model": "SLUICE_MODEL",
    "data": "SLUICE_DATA",
    "reference": "SLUICE_REFERENCE",
    "contract": "SLUICE_CONTRACT",
    "repository_url": "SLUICE_REPOSITORY_URL",
    "repository_name": "SLUICE_REPOSITORY_NAME",
    "ref": "SLUICE_REF",
}
# Optional: the file to hash when this process sees the snapshot at another path than the cluster
# (a copy); the event still names SLUICE_DATA, the path the retraining run reads.
HASH_FROM_ENV = "SLUICE_DATA_HASH_FROM"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def body(
    kind: str,
    model: str,
    data: str,
    data_sha256: str,
    reference: str,
    contract: str,
    repository: dict,
    ref: str = "refs/heads/main",
    reason: str = "",
    now: dt.datetime | None = None,
) -> bytes:
    """The event's bytes: push-shaped where a push has the same facts (ref, repository)."""
    payload = {
        "ref": ref,
        "repository": {"clone_url": repository["clone_url"], "full_name": repository["full_name"]},
        "sluice": {
            "event": kind,
            "model": model,
            "data": {"path": data, "sha256": data_sha256},
            "reference": reference,
            "contract": contract,
            "reason": reason,
            "requested_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        },
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(
    raw: bytes, secret: bytes, event_type: str = EVENT_TYPE, delivery: str | None = None
) -> dict[str, str]:
    mac = hmac.new(secret, raw, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event_type,
        SIGNATURE_HEADER: f"sha256={mac}",
        DELIVERY_HEADER: delivery or str(uuid.uuid4()),
    }


def verify(headers: dict[str, str], raw: bytes, secret: bytes, event_types: list[str]) -> str:
    """What Tekton's GitHub interceptor answers: "" to pass the event on, else why it stops it."""
    given = {k.lower(): v for k, v in headers.items()}
    if given.get("content-type") == "application/x-www-form-urlencoded":
        return "form parameter encoding not supported"
    if event_types and given.get(EVENT_HEADER.lower(), "") not in event_types:
        return f"event type {given.get(EVENT_HEADER.lower(), '')} is not allowed"
    signature = given.get(SIGNATURE_HEADER.lower(), "")
    if not signature:
        return f"no {SIGNATURE_HEADER} header set"
    algorithm, _, hex_mac = signature.partition("=")
    hashes = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
    if algorithm not in hashes:
        return f"unknown hash type prefix: {algorithm!r}"
    try:
        mac = bytes.fromhex(hex_mac)
    except ValueError:
        return f"error decoding signature {signature!r}"
    if not hmac.compare_digest(mac, hmac.new(secret, raw, hashes[algorithm]).digest()):
        return "payload signature check failed"
    return ""


def post(url: str, raw: bytes, headers: dict[str, str], timeout: float = TIMEOUT_S) -> tuple[int, str]:
    """(HTTP status, first line of the answer); OSError when the listener cannot be reached."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, data=raw, headers=headers, method="POST")  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            return answer.status, answer.read(2048).decode("utf-8", "replace").strip()[:200]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2048).decode("utf-8", "replace").strip()[:200]


def _settings(environ: dict[str, str]) -> dict[str, str]:
    missing = [name for key, name in ENV.items() if key != "ref" and not environ.get(name)]
    if missing:
        raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
    settings = {key: environ.get(name, "") for key, name in ENV.items()}
    if settings["kind"] not in KINDS:
        raise ValueError(f"{ENV['kind']}={settings['kind']!r} is not one of {', '.join(KINDS)}")
    return settings


def main(environ: dict[str, str] | None = None) -> int:
    """The CronJob: hash the snapshot, sign the event, post it; one line on stdout or stderr."""
    environ = dict(os.environ) if environ is None else environ
    try:
        s = _settings(environ)
        sha = file_sha256(environ.get(HASH_FROM_ENV) or s["data"])
    except (ValueError, OSError) as exc:
        print(f"sluice-trigger: error: {exc}", file=sys.stderr)
        return 2
    repository = {"clone_url": s["repository_url"], "full_name": s["repository_name"]}
    raw = body(
        s["kind"],
        s["model"],
        s["data"],
        sha,
        s["reference"],
        s["contract"],
        repository,
        s["ref"] or "refs/heads/main",
    )
    headers = sign(raw, s["secret"].encode())
    try:
        status, answer = post(s["url"], raw, headers)
    except OSError as exc:
        print(f"sluice-trigger: error: cannot reach {s['url']}: {exc}", file=sys.stderr)
        return 2
    line = f"{s['kind']} event for {s['model']} (data sha256 {sha[:12]}, delivery {headers[DELIVERY_HEADER]})"
    if 200 <= status < 300:
        print(f"sluice-trigger: posted {line}: HTTP {status}")
        return 0
    print(f"sluice-trigger: refused {line}: HTTP {status} {answer}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
