"""Ready-made pipelines: the suite's built-in correct ones and the two bug reports reproduced."""
