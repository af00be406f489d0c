"""Sluice's decision side: validation gates, evidence, promotion, and the delivery checks."""
