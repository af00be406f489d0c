"""Load a data contract and read a data snapshot against it.

Reading and judging are separate on purpose: an unreadable file is a usage error (exit 2), but a
readable file that breaks its contract is a *gate failure* that must leave evidence (exit 1). So
`read_table` raises only when bytes cannot become a table, and `coerce_to_contract` returns the
typed frame together with the list of contract violations for the data gate to record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.data.words import FALSE_WORDS, TRUE_WORDS
from sluice.digest import sha256_file
from sluice.errors import SluiceError
from sluice.paths import require_file
from sluice.yamlfile import first_schema_error, load_yaml_mapping

SCHEMA_PATH = Path(__file__).with_name("contract.schema.json")
NUMERIC_DTYPES = ("integer", "float")
# Spellings a careful reader takes as "missing"; pandas' default list also maps "None"/"NULL".
NA_WORDS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A"]
_PLAIN_COLUMN = re.compile(r"^[A-Za-z0-9_.-]+$")


def column_label(column: str) -> str:
    """A column name as people read it in a sentence: bare when plain, else JSON-quoted.

    A contract allows any column name; quoting keeps `mean radius`, `a"b` or `x]` from running
    into the text around them (and says exactly which characters the name has).
    """
    return column if _PLAIN_COLUMN.match(column) else json.dumps(column, ensure_ascii=False)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True)
class Contract:
    name: str
    label: str
    columns: tuple[Column, ...]
    positive_class: Any = 1
    sensitive_attribute: str | None = None
    timestamp: str | None = None
    description: str = ""
    path: str = ""
    sha256: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[Column]:
        """Model inputs: every column but the label, the sensitive attribute and the timestamp."""
        excluded = {self.label, self.sensitive_attribute, self.timestamp}
        return [c for c in self.columns if c.name not in excluded]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@cache
def contract_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def parse_contract(doc: Any, path: Path, sha256: str = "") -> Contract:
    """Validate a parsed contract document and build a Contract; raises SluiceError on any flaw."""
    first_schema_error(doc, contract_schema(), path, "contract")
    columns = tuple(
        Column(
            name=c["name"],
            dtype=c["dtype"],
            nullable=c.get("nullable", False),
            min=c.get("min"),
            max=c.get("max"),
            categories=tuple(str(v) for v in c["categories"]) if "categories" in c else None,
            description=c.get("description", ""),
        )
        for c in doc["columns"]
    )
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SluiceError(f"contract {path} declares column(s) twice: {', '.join(dupes)}")
    for role in ("label", "sensitive_attribute", "timestamp"):
        if role in doc and doc[role] not in names:
            raise SluiceError(f"contract {path}: {role} {doc[role]!r} is not one of its columns")
    label_col = columns[names.index(doc["label"])]
    if label_col.dtype not in ("integer", "boolean", "category"):
        raise SluiceError(f"contract {path}: label {label_col.name!r} must be integer, boolean or category")
    if "timestamp" in doc and columns[names.index(doc["timestamp"])].dtype != "datetime":
        raise SluiceError(f"contract {path}: timestamp column {doc['timestamp']!r} must have dtype datetime")
    contract = Contract(
        name=doc["name"],
        label=doc["label"],
        columns=columns,
        positive_class=doc.get("positive_class", 1),
        sensitive_attribute=doc.get("sensitive_attribute"),
        timestamp=doc.get("timestamp"),
        description=doc.get("description", ""),
        path=str(path),
        sha256=sha256,
        raw=doc,
    )
    if not contract.features:
        raise SluiceError(f"contract {path} leaves no feature columns besides label/sensitive/timestamp")
    return contract


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    doc, digest = load_yaml_mapping(path, "contract")
    return parse_contract(doc, path, digest)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV (as text, typed later against the contract) or Parquet; raise only if unusable.

    CSV cells stay strings so that quoted numbers and odd spellings are judged by the contract,
    not guessed by pandas; a UTF-8 byte-order mark is accepted. A file with a header but no rows is
    unusable input (exit 2), the same from `sluice run` and `sluice gate data`: there is nothing
    to judge, and "no rows" says more than a failed volume check would.
    """
    path = require_file(path, "data file")
    if path.stat().st_size == 0:
        raise SluiceError(f"data file {path} is empty (0 bytes)")
    frame = _read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else _read_csv(path)
    if len(frame) == 0:
        raise SluiceError(f"data file {path} has a header but no rows")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise SluiceError(f"cannot read Parquet file {path}: {str(exc).splitlines()[0]}") from exc


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=NA_WORDS,
            skipinitialspace=True,
        )
    except UnicodeDecodeError as exc:
        raise SluiceError(f"data file {path} is not UTF-8 text (byte {exc.start})") from exc
    except pd.errors.EmptyDataError as exc:
        raise SluiceError(f"data file {path} has no header row") from exc
    except pd.errors.ParserError as exc:
        raise SluiceError(f"cannot parse CSV {path}: {str(exc).strip().splitlines()[-1]}") from exc
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        position = frame.columns.get_loc(unnamed[0]) + 1
        raise SluiceError(f"CSV {path} has a header cell with no name (column {position})")
    return frame


def _coerce_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    words = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[words.isin(TRUE_WORDS)] = True
    out[words.isin(FALSE_WORDS)] = False
    return out


def _coerce_column(values: pd.Series, col: Column) -> pd.Series:
    if col.dtype in NUMERIC_DTYPES:
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            return values.astype("float64")
        text = values.astype("string").str.strip().str.replace(",", "", regex=False)
        return pd.to_numeric(text, errors="coerce").astype("float64")
    if col.dtype == "boolean":
        return _coerce_bool(values)
    if col.dtype == "datetime":
        return pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    # category: compare as text, so 1 and "1" name the same category
    text = values.astype("string")
    return text.str.strip() if not pd.api.types.is_numeric_dtype(values) else text


def coerce_to_contract(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, list[str]]:
    """Type every contract column; return the typed frame and the contract violations found.

    Violations are sentences naming the column and what is wrong; values that could not be typed
    become missing in the returned frame so that later checks can still run.
    """
    problems: list[str] = []
    present = [str(c) for c in frame.columns]
    missing = [c for c in contract.column_names if c not in present]
    extra = [c for c in present if c not in contract.column_names]
    if missing:
        problems.append(f"missing column(s): {', '.join(map(column_label, missing))}")
    if extra:
        problems.append(f"unexpected column(s): {', '.join(map(column_label, extra))}")
    typed = {}
    for col in contract.columns:
        if col.name not in present:
            continue
        raw = frame[col.name]
        values = _coerce_column(raw, col)
        was_null = raw.isna()
        bad = values.isna() & ~was_null
        if bad.any():
            example = raw[bad].iloc[0]
            problems.append(
                f"column {column_label(col.name)}: {int(bad.sum())} value(s) are not {col.dtype} "
                f"(e.g. {example!r})"
            )
        if col.dtype == "integer":
            finite = values[np.isfinite(values)]
            fractional = finite[finite != np.round(finite)]
            if len(fractional):
                problems.append(
                    f"column {column_label(col.name)}: {len(fractional)} value(s) are not whole numbers "
                    f"(e.g. {fractional.iloc[0]!r})"
                )
        typed[col.name] = values
    return pd.DataFrame(typed, index=frame.index, copy=False), problems


def load_snapshot(data_path: str | Path, contract: Contract) -> tuple[pd.DataFrame, list[str], str]:
    """Read and type a snapshot; returns (typed frame, contract violations, data sha256)."""
    raw = read_table(data_path)
    typed, problems = coerce_to_contract(raw, contract)
    return typed, problems, sha256_file(data_path)
