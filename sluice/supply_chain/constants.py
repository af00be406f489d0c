"""The names that the Tekton sign task, the Kyverno policies and `sluice verify` must agree on.

One module so that a change of predicate version is one edit here plus the two YAML files that a
test (tests/sluice/supply_chain/test_agreement.py) holds to these values.
"""

from __future__ import annotations

# The Sluice gate-evidence predicate. Bump the trailing version when the evidence schema changes
# incompatibly; verifiers then ask for the version they understand.
PREDICATE_VERSION = "v1"
PREDICATE_TYPE = f"https://sluice.dev/attestations/gate-evidence/{PREDICATE_VERSION}"
EVIDENCE_SCHEMA_VERSION = "sluice.dev/evidence/v1"

# Kubernetes Secrets holding key material (never in git). Names only, no secrets here.
PUBLIC_KEY_SECRET = "sluice-cosign-pub"  # noqa: S105
PUBLIC_KEY_SECRET_NAMESPACE = "kyverno"  # noqa: S105
PUBLIC_KEY_SECRET_KEY = "cosign.pub"  # noqa: S105 - the data key cosign's k8s:// key reference reads
SIGNING_SECRET = "sluice-cosign-signing"  # noqa: S105
SIGNING_SECRET_KEYS = ("cosign.key", "cosign.password")

# cosign's tag-based ("legacy") storage: pkg/oci/remote/options.go, pkg/types/media.go,
# pkg/oci/static/signature.go at sigstore/cosign d6d86c22.
SIGNATURE_TAG_SUFFIX = "sig"
ATTESTATION_TAG_SUFFIX = "att"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
PREDICATE_TYPE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"

# in-toto / DSSE
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"

# OCI / Docker media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST_V2)
ACCEPTED_MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST)

# Bounds on what a registry may make a verifier read (an attacker who can push tags controls the
# .sig/.att images). MAX_ATTACHMENT_LAYERS is cosign's maxLayers (pkg/oci/remote/signatures.go):
# more layers than that and the attachment image is refused as a whole, before any blob is read.
# One layer is read into memory at a time, at most ATTACHMENT_LAYER_LIMIT bytes (cosign allows 128
# MiB, COSIGN_MAX_ATTACHMENT_SIZE; a signature payload is ~300 bytes and gate evidence a few KiB),
# and at most READ_BUDGET_BYTES per attachment image in total.
MAX_ATTACHMENT_LAYERS = 1000
ATTACHMENT_LAYER_LIMIT = 16 * 1024 * 1024
READ_BUDGET_BYTES = 64 * 1024 * 1024
