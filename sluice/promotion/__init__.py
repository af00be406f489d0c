"""GitOps promotion: commit gated model versions into Kustomize overlays; roll back; report status.

`sluice.promotion.promote` promotes through a remote (staging push, production pull request);
`sluice.promotion.local` is the laptop loop's last step, a local branch after `sluice run`.
"""
