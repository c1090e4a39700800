"""A pipeline's model as `build_model` returns it from a seed, untrained, built once per pipeline and seed.

Building a Keras application costs one to two seconds (creating and initializing hundreds of
variables), as much as a check's own passes. The checks that only look at an untrained model
(labels, preprocessing, the determinism replay) share one build and put back what they change
(a training-mode pass restores its state); save_load, which loads a weights file into it,
takes it out of the cache.

The build is seeded as `training.train` seeds it, without clearing TensorFlow's compiled
functions (`compat.set_random_seed(..., keep_compiled=True)`): on Keras 3 with TensorFlow its
initializers are stateless, so it equals the training run's initial model.
"""

from __future__ import annotations

import weakref

from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import Pipeline

_BUILDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> {seed: model}


def fresh_build(pipeline: Pipeline, seed: int):
    """The shared untrained model of `pipeline` from `seed`; callers must leave it as they found it."""
    builds = _BUILDS.setdefault(pipeline, {})
    if seed not in builds:
        builds[seed] = _build(pipeline, seed)
    return builds[seed]


def take_fresh_build(pipeline: Pipeline, seed: int):
    """The untrained model of `pipeline` from `seed`, no longer shared: the caller may change it."""
    model = _BUILDS.get(pipeline, {}).pop(seed, None)
    return _build(pipeline, seed) if model is None else model


def forget_fresh_builds(pipeline: Pipeline | None = None) -> None:
    """Drop the shared builds of `pipeline`, or of every pipeline."""
    if pipeline is None:
        _BUILDS.clear()
    else:
        _BUILDS.pop(pipeline, None)


def _build(pipeline: Pipeline, seed: int):
    compat.set_random_seed(seed, keep_compiled=True)
    return pipeline.fresh_model()
