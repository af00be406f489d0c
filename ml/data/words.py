"""Spellings shared by the contract reader, the preprocessing and the model server, defined once.

Standard library only: the model server (`ml.serving`) decodes request values with these words
and must not import pandas to get them (~0.5 s of its start-up).
"""

from __future__ import annotations

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})
# The category a missing value becomes before one-hot encoding (training and serving alike).
MISSING_CATEGORY = "__missing__"
