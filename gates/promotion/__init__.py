"""GitOps promotion: commit gated model versions into Kustomize overlays; roll back; report status.

`promote_to_local_branch` is the laptop loop's last step (called at the end of `sluice run`).
"""

from gates.promotion.promote import PromotionResult, promote_to_local_branch

__all__ = ["PromotionResult", "promote_to_local_branch"]
