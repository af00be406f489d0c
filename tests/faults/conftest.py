"""The fault matrix: fixtures, the scenario-by-outcome table, and the time budget of repetitions.

Every fault test records what happened to its scenario (`matrix.record(outcome)`); a failing test
records `FAILED`. At the end of the session the table is printed (and written as JSON to
$SLUICE_FAULT_MATRIX_JSON when set), so figures can be compared from one run to the next.

Repetitions beyond the first, and kill points beyond the core set, carry the `heavy` marker. They
run as part of the default `python -m pytest` while the fault suite has spent less than
$SLUICE_FAULTS_BUDGET_S seconds (default 300); once the budget is spent they are skipped with
the reason shown. `SLUICE_FAULTS_BUDGET_S=inf` runs all of them; `-m "not heavy"` none.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.data.demo import write_demo
from tests.conftest import create_database, start_mlflow_server
from tests.sluice.promotion.conftest import gitops, registry  # noqa: F401 - shared fixtures

HERE = Path(__file__).resolve().parent
FAULT_POLICY = HERE / "fault-policy.yaml"
SLICE_ROWS = 3000
BUDGET_ENV = "SLUICE_FAULTS_BUDGET_S"
DEFAULT_BUDGET_S = 300.0
REPETITIONS = 10  # each race and each kill point is tried this many times when the budget allows
MATRIX_JSON_ENV = "SLUICE_FAULT_MATRIX_JSON"

_matrix: dict[str, Counter] = {}
_figures: dict[str, list[float]] = {}
_first_start: list[float] = []


class Matrix:
    """Records one outcome per test for its scenario."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.outcome: str | None = None

    def record(self, outcome: str, scenario: str | None = None) -> None:
        self.outcome = outcome
        self.scenario = scenario or self.scenario

    def figure(self, label: str, value: float) -> None:
        """A measured figure shown under the table (median, min-max over the repetitions)."""
        _figures.setdefault(f"{self.scenario}: {label}", []).append(value)

    def name(self, scenario: str) -> None:
        """Name the row when the test is parametrised over scenarios."""
        self.scenario = scenario


@pytest.fixture
def matrix(request: pytest.FixtureRequest):
    scenario = request.node.get_closest_marker("scenario")
    recorder = Matrix(scenario.args[0] if scenario else request.node.originalname)
    yield recorder
    report = getattr(request.node, "_fault_call_report", None)
    if report is not None and hasattr(report, "wasxfail"):
        outcome = "xfail"  # a known failure another issue fixes (the reason is in the test's mark)
    elif report is not None and report.outcome == "skipped":
        return
    elif report is None or report.failed:
        outcome = "FAILED"
    else:
        outcome = recorder.outcome or "passed"
    _matrix.setdefault(recorder.scenario, Counter())[outcome] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item._fault_call_report = report  # type: ignore[attr-defined]


def budget_s() -> float:
    raw = os.environ.get(BUDGET_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_BUDGET_S
    except ValueError:
        return DEFAULT_BUDGET_S


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "faults" not in item.path.parts:
        return
    if not _first_start:
        _first_start.append(time.monotonic())
    if item.get_closest_marker("heavy") is None:
        return
    spent = time.monotonic() - _first_start[0]
    budget = budget_s()
    if not math.isinf(budget) and spent > budget:
        pytest.skip(f"fault budget spent ({spent:.0f} s of {budget:.0f} s; {BUDGET_ENV}=inf runs them all)")


def repetitions(name: str = "rep", count: int = REPETITIONS) -> list:
    """Repetition 1 is core; 2..count are heavy (run while the budget allows)."""
    return [pytest.param(1, id=f"{name}1")] + [
        pytest.param(i, id=f"{name}{i}", marks=pytest.mark.heavy) for i in range(2, count + 1)
    ]


def pytest_terminal_summary(terminalreporter) -> None:
    if not _matrix:
        return
    outcomes = sorted({o for counts in _matrix.values() for o in counts}, key=lambda o: (o == "FAILED", o))
    width = max(len(s) for s in _matrix) + 2
    tr = terminalreporter
    tr.section("fault matrix (scenario x outcome, repetitions)")
    tr.write_line(f"{'scenario':<{width}}{'runs':>5}  " + "  ".join(outcomes))
    for scenario in sorted(_matrix):
        counts = _matrix[scenario]
        cells = "  ".join(f"{counts.get(o, 0) or '-':>{len(o)}}" for o in outcomes)
        tr.write_line(f"{scenario:<{width}}{sum(counts.values()):>5}  {cells}")
    for label, values in sorted(_figures.items()):
        ordered = sorted(values)
        median = ordered[len(ordered) // 2]
        spread = f"min {ordered[0]:.1f}, max {ordered[-1]:.1f}, n={len(ordered)}"
        tr.write_line(f"{label}: median {median:.1f} ({spread})")
    if os.environ.get(MATRIX_JSON_ENV):
        Path(os.environ[MATRIX_JSON_ENV]).write_text(
            json.dumps({s: dict(c) for s, c in sorted(_matrix.items())}, indent=2) + "\n"
        )


@pytest.fixture(scope="session")
def fault_slice(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fault-slice")
    return write_demo(folder, reference_rows=SLICE_ROWS, current_rows=SLICE_ROWS)


class OutageServer:
    """An MLflow server on PostgreSQL that a test may kill and start again on the same port."""

    def __init__(self, backend: str, base: Path) -> None:
        self.backend, self.base = backend, base
        base.mkdir(parents=True, exist_ok=True)
        self.proc, self.url = start_mlflow_server(backend, base / "artifacts", base / "server-1.log")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.starts = 1

    def kill(self) -> None:
        """SIGKILL the server and its workers (`mlflow server` serves from child processes)."""
        from sluice.lifeline import descendants

        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.starts += 1
        log = self.base / f"server-{self.starts}.log"
        self.proc, _ = start_mlflow_server(self.backend, self.base / "artifacts", log, port=self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def outage_server(postgres: dict, tmp_path: Path):
    """A tracking server of this test's own (its own database), so killing it disturbs nobody."""
    name = f"outage_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    server = OutageServer(create_database(postgres, name), tmp_path / "outage-server")
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class AttestedImages:
    """Two serving images, both signed with passing evidence attested: a production race needs
    two images that are each acceptable on their own."""

    key_pem: bytes
    one: str
    two: str


@pytest.fixture(scope="session")
def attested_images(oci_registry: str) -> AttestedImages:
    pytest.importorskip("sluice.supply_chain.sign")
    from cryptography.hazmat.primitives.asymmetric import ec

    from sluice.supply_chain.constants import PREDICATE_TYPE
    from sluice.supply_chain.keys import public_key_pem
    from sluice.supply_chain.oci import RegistryClient
    from sluice.supply_chain.sign import attest_image, sign_image
    from tests.sluice.promotion.conftest import _push_image, evidence_document

    key = ec.generate_private_key(ec.SECP256R1())
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    refs = []
    for name in ("fault-one", "fault-two"):
        digest = _push_image(client, "sluice/serving-faults", name, f"layer {name}".encode())
        ref = f"{oci_registry}/sluice/serving-faults@{digest}"
        sign_image(ref, key, allow_insecure_loopback=True)
        attest_image(ref, key, evidence_document("any"), PREDICATE_TYPE, allow_insecure_loopback=True)
        refs.append(ref)
    return AttestedImages(public_key_pem(key), refs[0], refs[1])
