"""The five-mode agreement oracle (fit, train-mode, evaluate, predict, recalibrated) and its findings."""
