"""rtdl pipeline: the steps a user runs (extract, train, predict, evaluate, localize)."""

__version__ = "0.1.0"
