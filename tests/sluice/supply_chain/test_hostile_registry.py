"""An attacker who can push tags: `.sig`/`.att` images built to exhaust memory or to turn a
refusal into an input error. Verification must stay bounded (how many layers, how many bytes,
one layer in memory at a time) and refuse with the reason, exit 1.

The registry is tests/sluice/supply_chain/hostile_registry.py on loopback; the verifier is the real
`sluice verify`. Bounds are asserted on what the server actually sent, not on time.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from sluice.supply_chain import constants, keys
from sluice.supply_chain.constants import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from sluice.supply_chain.payload import build_payload
from tests.sluice.supply_chain.hostile_registry import HostileRegistry

INSECURE = "--allow-insecure-loopback"
MiB = 1024 * 1024
REPO = "sluice/hostile"
MAX_LAYERS = 1000  # the default cap: cosign's maxLayers (pkg/oci/remote/signatures.go)
READ_BUDGET = 64 * MiB  # the default bytes read per attachment image


@pytest.fixture
def reg() -> Iterator[HostileRegistry]:
    with HostileRegistry() as registry:
        yield registry


@pytest.fixture
def signer(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(keys.public_key_pem(key))
    return key, pub


def sig_layer(data: bytes, digest: str, key: ec.EllipticCurvePrivateKey, size: int | None = None) -> dict:
    signature = base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    return {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(data) if size is None else size,
        "digest": digest,
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }


def valid_layer(reg: HostileRegistry, image: str, key: ec.EllipticCurvePrivateKey) -> dict:
    payload = build_payload(f"{reg.host}/{REPO}", image)
    return sig_layer(payload, reg.add_blob(payload), key)


def junk_layer(reg: HostileRegistry, size: int) -> dict:
    """A blob of `size` bytes, genuinely signed, by a key nobody trusts."""
    data = os.urandom(16) + bytes(size - 16)
    return sig_layer(data, reg.add_blob(data), ec.generate_private_key(ec.SECP256R1()))


def signed_image(reg: HostileRegistry, layers: list[dict]) -> tuple[str, str]:
    image = reg.add_image(b"hostile")
    reg.add_attachment(image, "sig", layers)
    return image, f"{reg.host}/{REPO}@{image}"


# --- 1. how many layers: refused as a whole, before any blob is read -----------------------------------


def test_more_signatures_than_the_cap_are_refused_naming_the_count(sluice, reg, signer) -> None:
    key, pub = signer
    image = reg.add_image(b"many")
    layers = [valid_layer(reg, image, key)] + [junk_layer(reg, 64)] * MAX_LAYERS
    reg.add_attachment(image, "sig", layers)
    ref = f"{reg.host}/{REPO}@{image}"
    result = sluice("verify", ref, "--key", pub, INSECURE)
    assert result.code == 1, result.err
    assert f"{MAX_LAYERS + 1} layers" in result.err and f"{MAX_LAYERS} allowed" in result.err
    assert reg.behaviour.blob_gets == 0  # refused from the manifest alone

    few = sluice("verify", ref, "--key", pub, INSECURE, "--max-signatures", "5000")
    assert few.code == 0, few.err  # the cap is configurable
    assert sluice("verify", ref, "--key", pub, INSECURE, "--max-signatures", "0").code == 2


def test_layers_are_read_one_at_a_time_and_reading_stops_at_the_first_valid_signature(
    sluice, reg, signer
) -> None:
    key, pub = signer
    image = reg.add_image(b"first")
    reg.add_attachment(image, "sig", [valid_layer(reg, image, key)] + [junk_layer(reg, 64)] * 999)
    result = sluice("verify", f"{reg.host}/{REPO}@{image}", "--key", pub, INSECURE)
    assert result.code == 0, result.err
    assert reg.behaviour.blob_gets == 1


def test_total_bytes_read_are_bounded_by_the_budget(sluice, reg, signer) -> None:
    """The issue's case: 30 layers pointing at one big blob. Before: all of them read into memory."""
    _, pub = signer
    blob = junk_layer(reg, 4 * MiB)
    _, ref = signed_image(reg, [blob] * 30)
    result = sluice("verify", ref, "--key", pub, INSECURE)
    assert result.code == 1
    assert "read budget" in result.err and "does not verify with the given key" in result.err
    assert reg.behaviour.blob_bytes_sent <= READ_BUDGET
    assert reg.behaviour.blob_gets == READ_BUDGET // (4 * MiB)


def test_the_defaults_are_the_documented_ones() -> None:
    assert constants.MAX_ATTACHMENT_LAYERS == MAX_LAYERS
    assert constants.READ_BUDGET_BYTES == READ_BUDGET


def test_bounds_are_configurable_from_python(reg, signer) -> None:
    from sluice.supply_chain.bounded import Bounds
    from sluice.supply_chain.trust import KeyTrust
    from sluice.supply_chain.verdicts import VerificationError
    from sluice.supply_chain.verify import verify_image

    key, pub = signer
    trust = KeyTrust.from_pem(pub.read_bytes())
    blob = junk_layer(reg, MiB)
    image, ref = signed_image(reg, [blob] * 10)
    bounds = Bounds(max_layers=10, layer_bytes=MiB, total_bytes=3 * MiB)
    with pytest.raises(VerificationError, match="read budget") as refused:
        verify_image(ref, trust, allow_insecure_loopback=True, bounds=bounds)
    assert reg.behaviour.blob_bytes_sent == 3 * MiB
    assert "layers 4-10: not fetched" in str(refused.value)
    tight = Bounds(max_layers=10, layer_bytes=MiB - 1, total_bytes=3 * MiB)
    with pytest.raises(VerificationError, match=f"declared size {MiB} bytes is over the {MiB - 1}-byte"):
        verify_image(ref, trust, allow_insecure_loopback=True, bounds=tight)
    assert reg.behaviour.blob_bytes_sent == 3 * MiB  # nothing more was read
    reg.add_attachment(image, "sig", [blob] * 10 + [valid_layer(reg, image, key)])
    with pytest.raises(VerificationError, match="11 layers, more than the 10 allowed"):
        verify_image(ref, trust, allow_insecure_loopback=True, bounds=bounds)


# --- 3. oversized or unreadable attachments refuse that layer, not the run -----------------------------


def test_an_oversized_answer_refuses_that_layer_with_its_reason(sluice, reg, signer) -> None:
    """A 266-byte payload answered with 200 MiB: that layer is refused, another one may still verify."""
    key, pub = signer
    image = reg.add_image(b"oversized")
    good = valid_layer(reg, image, key)
    reg.behaviour.extra_bytes[good["digest"]] = 200 * MiB
    reg.add_attachment(image, "sig", [good])
    ref = f"{reg.host}/{REPO}@{image}"
    alone = sluice("verify", ref, "--key", pub, INSECURE)
    assert alone.code == 1, alone.err  # before: exit 2, "bad input"
    assert f"more than {good['size']} bytes" in alone.err
    assert reg.behaviour.blob_bytes_sent < 32 * MiB  # the client hung up instead of reading 200 MiB

    reg.behaviour.extra_bytes.clear()
    huge = dict(good, size=200 * MiB)
    missing = dict(good, digest="sha256:" + "0" * 64)
    reg.add_attachment(image, "sig", [huge, missing, good])
    mixed = sluice("verify", ref, "--key", pub, INSECURE, "--json")
    assert mixed.code == 0, mixed.err
    assert "signature layer 1: declared size 209715200 bytes is over" in mixed.out
    assert "signature layer 2: blob missing from the registry" in mixed.out


def test_an_unreadable_only_layer_is_a_refusal_not_an_input_error(sluice, reg, signer) -> None:
    _, pub = signer
    image = reg.add_image(b"unreadable")
    reg.add_attachment(image, "sig", [junk_layer(reg, 100) | {"digest": "sha256:" + "1" * 64}])
    result = sluice("verify", f"{reg.host}/{REPO}@{image}", "--key", pub, INSECURE)
    assert result.code == 1 and "blob missing from the registry" in result.err


# --- peak memory, measured in a real process ----------------------------------------------------------


def peak_rss_kib(args: list[str]) -> tuple[int, int]:
    """(exit code, peak RSS in KiB) of `python -m sluice ARGS` as its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_layer_count(reg, signer) -> None:
    """10 vs 1,000 layers of 4 MiB each: one layer in memory at a time, the budget caps the rest."""
    _, pub = signer
    blob = junk_layer(reg, 4 * MiB)
    peaks = {}
    for count in (10, 1000):
        _, ref = signed_image(reg, [blob] * count)
        code, peaks[count] = peak_rss_kib(["verify", ref, "--key", str(pub), INSECURE])
        assert code == 1
    assert peaks[1000] - peaks[10] < 16 * 1024, peaks  # KiB; before: +4 GiB (every layer held)
