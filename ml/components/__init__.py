"""The KFP v2 components of the training pipeline and the step functions behind them."""
