"""The feature store: a Feast feature repository for the demo model, and how Sluice uses it.

Training builds point-in-time-correct training sets from the offline store (duckdb over Parquet);
serving looks features up by entity key in the online store (Redis in a cluster, SQLite on a
laptop); `sluice features materialize` moves them between the two; the model gate compares what
the online store serves with the offline values (the skew check). Importing Feast costs seconds,
so only the modules that need it import it, and only when a run uses the store.
"""
