"""Continuous training's triggers: the retraining schedule, its signed event, drift monitoring."""
