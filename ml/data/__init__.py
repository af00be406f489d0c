"""Data snapshots and their contracts: what a dataset must look like before anything trains on it."""
