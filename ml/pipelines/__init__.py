"""KFP v2 pipeline definitions and their committed, compiled IR."""
