"""Hyperparameter tuning: one search space, run locally with Optuna or rendered as a Katib Experiment."""
