"""Sluice's data and training side: demo data, data contracts, the KFP v2 training pipeline."""
