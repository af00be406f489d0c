"""`python -m ml.serving`: the model server the serving image runs and the latency gate measures."""

from ml.serving.app import main

main()
