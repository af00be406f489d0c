"""What `sluice run` prints after its progress lines: candidates, the winner, where things are."""

from __future__ import annotations

from typing import Any, TextIO


def print_summary(record: dict[str, Any], out: TextIO) -> None:
    candidates = record.get("candidates") or []
    if candidates:
        out.write("\n  candidate              accuracy      f1  roc_auc   (validation split)\n")
        for cand in candidates:
            star = "*" if cand["name"] == record.get("selected") else " "
            m = cand["metrics"]
            out.write(f"{star} {cand['name']:<22} {m['accuracy']:8.4f} {m['f1']:7.4f} {m['roc_auc']:8.4f}\n")
    holdout = record.get("holdout") or {}
    if holdout:
        out.write(
            "  holdout of the winner:  "
            + "  ".join(f"{k} {holdout[k]:.4f}" for k in ("accuracy", "f1", "roc_auc") if k in holdout)
            + "\n"
        )
    if record.get("outcome") == "registered":
        how = "reused" if record.get("reused") else "registered"
        out.write(f"\n  {how} model version {record['model_name']} {record['version']} (alias challenger)\n")
    if record.get("evidence_dir"):
        out.write(f"  evidence: {record['evidence_dir']}\n")
    uri = record.get("tracking_uri", "")
    if uri.startswith(("http://", "https://")):
        out.write(f"  browse: {uri}\n")
    elif uri:
        out.write(f"  browse: mlflow ui --backend-store-uri {uri}\n")
