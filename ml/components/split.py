"""Split step: a seeded, stratified train / validation / holdout split of the gated snapshot."""

from __future__ import annotations

from pathlib import Path

from ml.components.artifacts import only_file
from ml.components.markers import step
from sluice.errors import SluiceError

SPLITS = ("train", "validation", "holdout")


def split(
    contract_dir: str,
    current_dir: str,
    seed: int,
    validation_fraction: float,
    holdout_fraction: float,
    train_dir: str,
    validation_dir: str,
    holdout_dir: str,
) -> None:
    from ml.data.contract import load_contract, load_snapshot
    from ml.training.split import stratified_split

    with step("split") as report:
        contract = load_contract(only_file(contract_dir))
        frame, problems, _ = load_snapshot(only_file(current_dir), contract)
        if problems:  # the data gate passed, so this is a bug or a policy that ignores the contract
            raise SluiceError(f"data breaks its contract after the data gate passed: {problems[0]}")
        frame = frame[frame[contract.label].notna()]
        parts = stratified_split(
            frame,
            contract.label,
            seed=seed,
            validation_fraction=validation_fraction,
            holdout_fraction=holdout_fraction,
        )
        for name, part, out in zip(SPLITS, parts, (train_dir, validation_dir, holdout_dir), strict=True):
            Path(out).mkdir(parents=True, exist_ok=True)
            part.to_parquet(Path(out) / f"{name}.parquet", index=False)
        report["rows"] = {"train": len(parts[0]), "validation": len(parts[1]), "holdout": len(parts[2])}
