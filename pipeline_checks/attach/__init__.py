"""Attaching the checks to a fit the repository runs itself: the public `Recorder`.

Above `checks/` in the flow: a `Recorder` records a fit (`run/recording.py`), turns it into a
pipeline's training run, and runs the families that can judge it on that run.
"""
