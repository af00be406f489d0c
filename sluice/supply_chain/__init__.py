"""Supply chain: cosign-compatible signatures and gate-evidence attestations, in pure Python.

Tekton signs with the real cosign CLI; this package verifies those signatures before promotion
(`verify.verify_image`) and, for the laptop loop and the tests, writes the same tag-based format.
"""
