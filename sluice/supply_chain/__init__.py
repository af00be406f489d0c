"""Supply chain: cosign-compatible signatures and gate-evidence attestations, in pure Python.

Tekton signs with the real cosign CLI; this package verifies those signatures before promotion
(`verify.verify_image`, with a key or keyless against a Sigstore trusted root) and, for the laptop
loop and the tests, writes the same tag-based format byte for byte (`sign`, `attachments`).
Registries are not trusted: `transport` decides where credentials go, `bounded` how much is read.
"""
