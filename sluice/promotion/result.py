"""What a promotion did, in one record the CLI prints and `sluice run` keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PromotionResult:
    """What a promotion did; `changed` is False when the overlay already held the version."""

    model: str
    version: str
    env: str
    changed: bool
    target_branch: str
    branch: str | None = None  # where the commit went (target branch or promote/... branch)
    commit: str | None = None
    pushed: bool = False
    overlay_path: str = ""
    diff: str = ""
    image_lines: list[str] = field(default_factory=list)
    model_lines: list[str] = field(default_factory=list)
    evidence_path: Path | None = None
    report_path: Path | None = None
    pr_body_path: Path | None = None
    pr_url: str | None = None
    attempts: int = 1
    subject: str = ""  # the commit's first line; the pull request's title
    image: str | None = None  # the image the predictor runs after this change
    message: str = ""

    def lines(self) -> list[str]:
        out = [self.message]
        if self.diff:
            out += ["", "overlay diff:", self.diff.rstrip("\n")]
        if self.model_lines or self.image_lines:
            out += ["", "rendered:"] + [f"  {line}" for line in self.model_lines + self.image_lines]
        if self.report_path:
            out += ["", f"evidence report: {self.report_path}"]
        if self.pr_body_path:
            out.append(f"pull request body: {self.pr_body_path}")
        if self.pr_url:
            out.append(f"pull request: {self.pr_url}")
        return out
