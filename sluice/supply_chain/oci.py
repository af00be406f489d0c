"""A small client for the OCI distribution API: manifests and blobs, read and written.

Enough of the protocol for cosign's tag-based attachments: anonymous access, Bearer token and
Basic auth (sluice.supply_chain.transport), credentials from docker's `config.json`
(sluice.supply_chain.credentials). HTTPS always, except plain HTTP to a loopback registry when the
caller asks for it.

Nothing the registry returns is trusted: every manifest fetched by digest and every blob is hashed
and compared with the digest it was asked for, and nothing is read beyond the limit the caller gives.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass

from sluice.errors import SluiceError
from sluice.supply_chain.constants import ACCEPTED_MANIFEST_TYPES, DOCKER_MANIFEST_V1_SIGNED
from sluice.supply_chain.credentials import find_credentials
from sluice.supply_chain.refs import DIGEST_RE, DOCKER_HUB, DOCKER_HUB_API
from sluice.supply_chain.transport import Origin, RegistryIntegrityError, Reply, Transport, is_loopback_host

MANIFEST_LIMIT = 4 * 1024 * 1024
BLOB_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        try:
            doc = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SluiceError(f"manifest {self.digest} is not JSON") from exc
        if not isinstance(doc, dict):
            raise SluiceError(f"manifest {self.digest} is not a JSON object")
        return doc


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(status: int, body: bytes, what: str) -> SluiceError:
    detail = ""
    try:
        errors = json.loads(body).get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        detail = body[:200].decode(errors="replace").strip()
    return SluiceError(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""))


class RegistryClient:
    """One registry: its transport (origin, credentials, tokens) and the distribution API calls."""

    def __init__(
        self,
        registry: str,
        *,
        docker_config: str | None = None,
        allow_insecure_loopback: bool = False,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.registry = registry
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.transport = Transport(
            host,
            credentials=find_credentials(registry, docker_config),
            insecure=allow_insecure_loopback and is_loopback_host(host),
            ca_file=ca_file,
            timeout=timeout,
        )

    @property
    def base(self) -> str:
        return self.transport.base

    # -- manifests -----------------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest at a tag or digest, or None when the registry has none there (404)."""
        resp = self.transport.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join((*ACCEPTED_MANIFEST_TYPES, DOCKER_MANIFEST_V1_SIGNED))},
            limit=MANIFEST_LIMIT,
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise _error(resp.status, resp.body, f"GET manifest {self.registry}/{repository}:{reference}")
        digest = sha256_digest(resp.body)
        if DIGEST_RE.match(reference) and digest != reference:
            raise RegistryIntegrityError(
                f"registry returned a manifest for {repository}@{reference} whose sha256 is {digest}"
            )
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        try:
            declared = json.loads(resp.body).get("mediaType")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            declared = None
        return Manifest(resp.body, declared or media_type, digest)

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self._push("PUT", f"/v2/{repository}/manifests/{reference}", repository, body, media_type)
        if resp.status not in (200, 201):
            raise _error(resp.status, resp.body, f"PUT manifest {self.registry}/{repository}:{reference}")
        digest = sha256_digest(body)
        returned = resp.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise RegistryIntegrityError(f"registry stored manifest as {returned}, expected {digest}")
        return digest

    # -- blobs ---------------------------------------------------------------------------------------

    def get_blob(self, repository: str, digest: str, limit: int = BLOB_LIMIT) -> bytes | None:
        """The blob, or None (404); RegistryIntegrityError for more than `limit` bytes or another digest."""
        path = f"/v2/{repository}/blobs/{digest}"
        with self.transport.open("GET", path, scope=f"repository:{repository}:pull") as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                body = resp.read(4096, truncate=True)
                raise _error(resp.status, body, f"GET blob {self.registry}/{repository}@{digest}")
            data = resp.read(limit)
        actual = sha256_digest(data)
        if actual != digest:
            raise RegistryIntegrityError(
                f"registry returned blob {digest} of {repository} with sha256 {actual}"
            )
        return data

    def blob_exists(self, repository: str, digest: str) -> bool:
        resp = self.transport.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull", limit=0
        )
        return resp.status == 200

    def _push(self, method: str, path: str, repository: str, body: bytes, media_type: str) -> Reply:
        return self.transport.request(
            method,
            path,
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            body=body,
            limit=MANIFEST_LIMIT,
        )

    def put_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=); skipped when the blob is already there."""
        digest = sha256_digest(data)
        if self.blob_exists(repository, digest):
            return digest
        start = self._push(
            "POST", f"/v2/{repository}/blobs/uploads/", repository, b"", "application/octet-stream"
        )
        if start.status != 202 or "location" not in start.headers:
            raise _error(start.status, start.body, f"start blob upload to {self.registry}/{repository}")
        location = urllib.parse.urljoin(self.base + "/", start.headers["location"])
        if Origin.of(location) != self.transport.origin:
            raise SluiceError(
                f"registry {self.registry} sent the upload to another origin ({location}); refusing"
            )
        url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        done = self._push("PUT", url, repository, data, "application/octet-stream")
        if done.status != 201:
            raise _error(done.status, done.body, f"upload blob {digest} to {self.registry}/{repository}")
        return digest
