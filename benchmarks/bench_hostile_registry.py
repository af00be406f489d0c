"""Peak memory of `sluice verify` against a hostile registry, as the layer count grows (issue 18).

A loopback registry (tests/sluice/supply_chain/hostile_registry.py) serves an image whose `.sig`
holds N layers, all pointing at one big blob signed by a key nobody trusts; the verifier must refuse
(exit 1) without holding more than one layer. Each case runs `python -m sluice verify` as its own
process and reads its peak RSS from os.wait4; the anchor is a normal verify of a one-layer `.sig`
measured in the same run. Medians of --runs.

    python benchmarks/bench_hostile_registry.py [--runs 3] [--baseline-src /work/main]

--baseline-src runs the same cases against another checkout's `sluice` (PYTHONPATH) for a
before/after comparison; its 1,000-layer case is skipped (it would hold every layer: ~4 GiB).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sluice.supply_chain import keys  # noqa: E402
from sluice.supply_chain.constants import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE  # noqa: E402
from sluice.supply_chain.payload import build_payload  # noqa: E402
from tests.sluice.supply_chain.hostile_registry import HostileRegistry  # noqa: E402

MiB = 1024 * 1024
REPO_NAME = "bench/hostile"
# (label, layers, blob MiB, valid signature first)
CASES = [
    ("anchor: 1 valid signature", 1, 0, True),
    ("hostile: 10 layers x 4 MiB", 10, 4, False),
    ("hostile: 1,000 layers x 4 MiB", 1000, 4, False),
    ("issue 18: 30 layers x 16 MiB", 30, 16, False),
]


def _layer(data: bytes, digest: str, key: ec.EllipticCurvePrivateKey) -> dict:
    signature = base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    return {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(data),
        "digest": digest,
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }


def prepare(reg: HostileRegistry, key: ec.EllipticCurvePrivateKey, count: int, mib: int, valid: bool) -> str:
    image = reg.add_image(f"{count}x{mib}".encode())
    if valid:
        payload = build_payload(f"{reg.host}/{REPO_NAME}", image)
        layers = [_layer(payload, reg.add_blob(payload), key)]
    else:
        junk = os.urandom(16) + bytes(mib * MiB - 16)
        layers = [_layer(junk, reg.add_blob(junk), ec.generate_private_key(ec.SECP256R1()))] * count
    reg.add_attachment(image, "sig", layers)
    return f"{reg.host}/{REPO_NAME}@{image}"


def run_once(ref: str, pub: Path, pythonpath: str) -> tuple[int, float, float]:
    """(exit code, peak RSS MiB, seconds) of one `python -m sluice verify` process."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice", "verify", ref, "--key", str(pub), "--allow-insecure-loopback"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=pythonpath,  # `python -m` puts the working directory first on sys.path
    )
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, time.perf_counter() - started


def measure(source: str, runs: int, pub: Path, key: ec.EllipticCurvePrivateKey, baseline: bool) -> None:
    print(f"\n{source}")
    print(f"  {'case':34} {'exit':>4} {'peak RSS MiB':>13} {'served MiB':>11} {'seconds':>8}")
    for label, count, mib, valid in CASES:
        if baseline and count * mib > 1024:
            print(f"  {label:34} skipped: the unbounded verifier would hold {count * mib} MiB")
            continue
        with HostileRegistry() as reg:
            ref = prepare(reg, key, count, mib, valid)
            results = [run_once(ref, pub, source) for _ in range(runs)]
            served = reg.behaviour.blob_bytes_sent / runs / MiB
        codes = {code for code, _, _ in results}
        rss = statistics.median(r for _, r, _ in results)
        secs = statistics.median(s for _, _, s in results)
        print(f"  {label:34} {'/'.join(map(str, codes)):>4} {rss:13.1f} {served:11.1f} {secs:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="another checkout to compare with (e.g. main)")
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp) / "cosign.pub"
        pub.write_bytes(keys.public_key_pem(key))
        print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.runs} runs; peak RSS from os.wait4")
        measure(str(REPO), args.runs, pub, key, baseline=False)
        if args.baseline_src:
            measure(str(args.baseline_src.resolve()), args.runs, pub, key, baseline=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
