"""Model code the pipeline components call: features from the contract, candidates, splits, metrics."""
