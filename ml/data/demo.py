"""A seeded, realistic credit-default data set, so Sluice has something true to train and gate on.

The generator draws applicants from one fixed causal story (income, debt, utilisation and
delinquencies drive the default risk; `sex` is recorded but plays no part in it) and writes two
snapshots of it: a *reference* period (what a champion was trained on) and a later *current*
period with the mild drift real lending data shows over a quarter (incomes up a few percent,
rates up about half a point, a little more debt consolidation). The drift is deliberately
small: a healthy demo must pass the default drift thresholds (PSI 0.2), while tests that want
a failing gate make their own damage.

Everything is formatted explicitly, so the same seed gives the same bytes (and the same sha256)
on any machine with the same numpy major version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sluice.atomic import write_bytes

DEFAULT_SEED = 20240701
REFERENCE_ROWS = 30_000
CURRENT_ROWS = 20_000
CONTRACT_PATH = Path(__file__).resolve().with_name("credit-default.contract.yaml")
CONTRACT_FILENAME = CONTRACT_PATH.name

# Periods the two snapshots cover (half-open, UTC).
REFERENCE_PERIOD = ("2023-01-01", "2024-07-01")
CURRENT_PERIOD = ("2024-07-01", "2024-10-01")

COLUMNS = (
    "application_date",
    "sex",
    "age",
    "annual_income",
    "employment_status",
    "education",
    "home_ownership",
    "region",
    "loan_purpose",
    "loan_amount",
    "loan_term_months",
    "interest_rate",
    "debt_to_income",
    "credit_utilization",
    "num_open_accounts",
    "num_delinquencies_2y",
    "months_since_last_delinquency",
    "credit_history_years",
    "num_credit_inquiries_6m",
    "has_cosigner",
    "default",
)
EMPLOYMENT = ("employed", "self_employed", "unemployed", "retired", "student")
EDUCATION = ("high_school", "bachelor", "master", "doctorate", "other")
HOME_OWNERSHIP = ("rent", "mortgage", "own", "other")
REGIONS = ("north", "south", "east", "west", "central")
PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "medical",
    "small_business",
    "other",
)


@dataclass(frozen=True)
class Drift:
    """How the current period differs from the reference one (all zero = no drift)."""

    income_factor: float = 1.0
    rate_shift: float = 0.0
    consolidation_shift: float = 0.0


NO_DRIFT = Drift()
QUARTER_DRIFT = Drift(income_factor=1.04, rate_shift=0.5, consolidation_shift=0.03)


@dataclass(frozen=True)
class DemoFiles:
    reference: Path
    current: Path
    contract: Path

    def sha256s(self) -> dict[str, str]:
        return {p.name: _sha256(p) for p in (self.reference, self.current, self.contract)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _choice(rng: np.random.Generator, values: tuple[str, ...], probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: `probs` is (n, k), each row a distribution over `values`."""
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))[:, None]
    index = np.minimum((u > cumulative).sum(axis=1), len(values) - 1)
    return np.asarray(values, dtype=object)[index]


def generate(n: int, seed: int, period: tuple[str, str], drift: Drift = NO_DRIFT) -> dict[str, np.ndarray]:
    """Draw `n` applications; returns column arrays in COLUMNS order, rows sorted by time.

    The helpers draw from one generator in a fixed order: reordering them changes every byte.
    """
    rng = np.random.default_rng(seed)
    start, end = (np.datetime64(p, "s") for p in period)
    seconds = rng.integers(0, int((end - start).astype(np.int64)), size=n)
    when = np.sort(start + seconds.astype("timedelta64[s]"))
    people = _applicants(rng, n, drift)
    money = _finances(rng, n, people, drift)
    default = (_risk(rng, n, people, money) > 0).astype(int)
    return {
        "application_date": np.datetime_as_string(when, unit="s"),
        "sex": people["sex"],
        "age": people["age"],
        "annual_income": money["income"],
        "employment_status": people["employment"],
        "education": people["education"],
        "home_ownership": people["home"],
        "region": people["region"],
        "loan_purpose": people["purpose"],
        "loan_amount": money["loan"],
        "loan_term_months": money["term"],
        "interest_rate": money["rate"],
        "debt_to_income": money["dti"],
        "credit_utilization": money["utilization"],
        "num_open_accounts": money["open_accounts"],
        "num_delinquencies_2y": money["delinquencies"],
        "months_since_last_delinquency": money["months_since"],
        "credit_history_years": money["history"],
        "num_credit_inquiries_6m": money["inquiries"],
        "has_cosigner": money["cosigner"],
        "default": default,
    }


def _applicants(rng: np.random.Generator, n: int, drift: Drift) -> dict[str, np.ndarray]:
    sex = np.where(rng.random(n) < 0.48, "female", "male").astype(object)
    age = np.clip(np.round(rng.normal(41, 12, n)), 21, 75).astype(int)
    emp_p = np.tile([0.74, 0.14, 0.06, 0.03, 0.03], (n, 1))
    emp_p[age >= 62] = [0.35, 0.12, 0.03, 0.50, 0.0]
    emp_p[age <= 24] = [0.55, 0.05, 0.10, 0.0, 0.30]
    employment = _choice(rng, EMPLOYMENT, emp_p)
    education = _choice(rng, EDUCATION, np.tile([0.38, 0.34, 0.16, 0.04, 0.08], (n, 1)))
    home_p = np.tile([0.45, 0.35, 0.15, 0.05], (n, 1))
    home_p[age >= 40] = [0.25, 0.45, 0.26, 0.04]
    home = _choice(rng, HOME_OWNERSHIP, home_p)
    region = _choice(rng, REGIONS, np.tile([0.22, 0.24, 0.18, 0.21, 0.15], (n, 1)))
    purpose_p = np.tile(
        [0.34 + drift.consolidation_shift, 0.20, 0.12, 0.14, 0.06, 0.05, 0.09 - drift.consolidation_shift],
        (n, 1),
    )
    purpose = _choice(rng, PURPOSES, purpose_p)
    return {
        "sex": sex,
        "age": age,
        "employment": employment,
        "education": education,
        "home": home,
        "region": region,
        "purpose": purpose,
    }


def _finances(rng: np.random.Generator, n: int, people: dict, drift: Drift) -> dict[str, np.ndarray]:
    age, education, employment = people["age"], people["education"], people["employment"]
    edu_effect = np.select(
        [education == "bachelor", education == "master", education == "doctorate"], [0.18, 0.32, 0.45], 0.0
    )
    emp_effect = np.select(
        [
            employment == "unemployed",
            employment == "student",
            employment == "retired",
            employment == "self_employed",
        ],
        [-0.9, -0.8, -0.35, 0.05],
        0.0,
    )
    log_income = np.log(46_000) + 0.012 * (np.minimum(age, 60) - 40) + edu_effect + emp_effect
    income = np.clip(np.exp(log_income + rng.normal(0, 0.42, n)) * drift.income_factor, 6_000, 600_000)
    loan = np.clip(np.exp(np.log(0.22 * income) + rng.normal(0, 0.55, n)), 1_000, 80_000)
    term = rng.choice(np.array([12, 24, 36, 48, 60]), size=n, p=[0.10, 0.18, 0.36, 0.16, 0.20])
    dti = np.clip(rng.normal(0.27, 0.11, n) + 0.08 * (loan / income), 0.0, 0.95)
    utilization = np.clip(rng.beta(2.0, 3.2, n) + 0.1 * (dti - 0.27), 0.0, 1.0)
    open_accounts = rng.poisson(6.0, n)
    delinquencies = rng.poisson(0.22 + 0.6 * utilization * (employment == "unemployed") + 0.25 * dti, n)
    months_since = np.where(delinquencies > 0, rng.integers(1, 25, n).astype(float), np.nan)
    history = np.clip((age - 18) - rng.exponential(4.0, n), 0.0, None)
    inquiries = rng.poisson(0.9 + 1.2 * utilization, n)
    cosigner = rng.random(n) < 0.08
    # Lenders price risk they can see; the rest of the rate is noise and the market.
    rate = np.clip(
        7.5
        + 6.0 * dti
        + 4.0 * utilization
        + 1.2 * delinquencies
        + 0.02 * term
        + rng.normal(0, 2.0, n)
        + drift.rate_shift,
        2.5,
        35.0,
    )
    return {
        "income": income,
        "loan": loan,
        "term": term,
        "dti": dti,
        "utilization": utilization,
        "open_accounts": open_accounts,
        "delinquencies": delinquencies,
        "months_since": months_since,
        "history": history,
        "inquiries": inquiries,
        "cosigner": cosigner,
        "rate": rate,
    }


def _risk(rng: np.random.Generator, n: int, people: dict, money: dict) -> np.ndarray:
    """The latent default risk: what the models try to learn (positive means default)."""
    purpose, employment = people["purpose"], people["employment"]
    purpose_effect = np.select(
        [
            purpose == "small_business",
            purpose == "medical",
            purpose == "debt_consolidation",
            purpose == "car",
        ],
        [0.45, 0.25, 0.15, -0.15],
        0.0,
    )
    employment_risk = np.select(
        [employment == "unemployed", employment == "student", employment == "self_employed"],
        [0.85, 0.35, 0.25],
        0.0,
    )
    m = money
    return (
        -1.75
        + 3.0 * (m["dti"] - 0.30)
        + 2.2 * (m["utilization"] - 0.40)
        + 1.4 * (m["utilization"] > 0.85)
        + 0.50 * m["delinquencies"]
        + 0.18 * m["inquiries"]
        - 0.55 * (np.log(m["income"]) - np.log(46_000))
        + 0.35 * (m["loan"] / m["income"] - 0.25)
        + 0.05 * (m["rate"] - 12.0)
        - 0.025 * (m["history"] - 15.0)
        + 0.0008 * (people["age"] - 45.0) ** 2
        - 0.40 * m["cosigner"]
        + employment_risk
        + purpose_effect
        + rng.logistic(0, 0.45, n)
    )


# How each column is spelled in the CSV: explicit, so bytes never depend on a library's float repr.
_FORMATS = {
    "application_date": lambda v: f"{v}Z",
    "annual_income": lambda v: f"{v:.2f}",
    "loan_amount": lambda v: f"{v:.2f}",
    "interest_rate": lambda v: f"{v:.2f}",
    "debt_to_income": lambda v: f"{v:.4f}",
    "credit_utilization": lambda v: f"{v:.4f}",
    "credit_history_years": lambda v: f"{v:.1f}",
    "months_since_last_delinquency": lambda v: "" if np.isnan(v) else f"{v:.0f}",
    "has_cosigner": lambda v: "true" if v else "false",
}


def to_csv_bytes(columns: dict[str, np.ndarray]) -> bytes:
    cells = []
    for name in COLUMNS:
        fmt = _FORMATS.get(name, str)
        cells.append([fmt(v) for v in columns[name].tolist()])
    lines = [",".join(COLUMNS)]
    lines.extend(",".join(row) for row in zip(*cells, strict=True))
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_demo(
    out_dir: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    reference_rows: int = REFERENCE_ROWS,
    current_rows: int = CURRENT_ROWS,
) -> DemoFiles:
    """Write reference.csv, current.csv and the contract into `out_dir` (atomically, file by file)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(out / "reference.csv", out / "current.csv", out / CONTRACT_FILENAME)
    # Different seeds per period: the current quarter is new applicants, not the old ones again.
    reference = generate(reference_rows, seed, REFERENCE_PERIOD)
    current = generate(current_rows, seed + 1, CURRENT_PERIOD, QUARTER_DRIFT)
    write_bytes(files.reference, to_csv_bytes(reference))
    write_bytes(files.current, to_csv_bytes(current))
    write_bytes(files.contract, CONTRACT_PATH.read_bytes())
    return files


def ensure_demo(
    out_dir: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    reference_rows: int = REFERENCE_ROWS,
    current_rows: int = CURRENT_ROWS,
) -> DemoFiles:
    """Generate the demo into `out_dir` unless an intact copy with these settings is already there.

    A small manifest records the settings and the sha256 of each file, so a file edited by hand is
    noticed and regenerated rather than silently trained on.
    """
    out = Path(out_dir)
    manifest_path = out / "demo-manifest.json"
    settings = {
        "seed": seed,
        "reference_rows": reference_rows,
        "current_rows": current_rows,
        "contract_sha256": _sha256(CONTRACT_PATH),
    }
    files = DemoFiles(out / "reference.csv", out / "current.csv", out / CONTRACT_FILENAME)
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings") == settings and manifest.get("sha256") == files.sha256s():
            return files
    except (OSError, ValueError):
        pass
    files = write_demo(out, seed=seed, reference_rows=reference_rows, current_rows=current_rows)
    manifest = {"settings": settings, "sha256": files.sha256s()}
    write_bytes(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return files
