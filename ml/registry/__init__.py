"""MLflow as Sluice uses it: one way to connect, find models and versions, and mark pipeline runs.

Imported by the pipeline steps, the gates and the runners; MLflow itself is imported inside the
functions, so importing this package costs nothing.
"""
