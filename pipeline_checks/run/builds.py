"""A pipeline's model as `build_model` returns it from a seed, untrained: every build of the
checks goes through `build`, and the checks share one per pipeline and seed.

Building a Keras application costs one to two seconds (creating and initializing hundreds of
variables), as much as a check's own passes. The checks that only look at an untrained model
(labels, preprocessing, the determinism replay) share one build and put back what they change
(a training-mode pass restores its state); save_load, which loads a weights file into it,
takes it out of the cache.

The shared build is seeded as `training.train` seeds it, without clearing TensorFlow's
compiled functions (`compat.set_random_seed(..., keep_compiled=True)`): on Keras 3 with
TensorFlow its initializers are stateless, so it equals the training run's initial model.
Every build of a pipeline runs with the compiled forward passes of its first
(`forward.share_compiled`), where they prove the same architecture.
"""

from __future__ import annotations

import weakref

from pipeline_checks.model import compat
from pipeline_checks.model.forward import share_compiled
from pipeline_checks.pipelines.pipeline import Pipeline

_BUILDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> {seed: model}
_FIRST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> weakref to its first build


def build(pipeline: Pipeline, seed: int, keep_compiled: bool = False):
    """`pipeline.fresh_model()` seeded from `seed` (`keep_compiled`: see `compat.set_random_seed`)."""
    compat.set_random_seed(seed, keep_compiled=keep_compiled)
    model = pipeline.fresh_model()
    first = _FIRST.get(pipeline)
    if first is None or first() is None:
        _FIRST[pipeline] = weakref.ref(model)
    else:
        share_compiled(model, first())
    return model


def fresh_build(pipeline: Pipeline, seed: int):
    """The shared untrained model of `pipeline` from `seed`; callers must leave it as they found it.
    For one output of a model with several (an `OutputView`), the view of the whole pipeline's."""
    if getattr(pipeline, "whole", None) is not None:
        from pipeline_checks.model.output_models import output_model

        return output_model(fresh_build(pipeline.whole, seed), pipeline.output)
    builds = _BUILDS.setdefault(pipeline, {})
    if seed not in builds:
        builds[seed] = build(pipeline, seed, keep_compiled=True)
    return builds[seed]


def rebuild_fresh_build(pipeline: Pipeline, seed: int):
    """Build `pipeline` from `seed` again, seeded in full (TensorFlow's kernel cache cleared), as its
    shared untrained build; drop the one it replaces first (`forget_fresh_build`), so that two are not held."""
    model = _BUILDS.setdefault(pipeline, {})[seed] = build(pipeline, seed)
    return model


def forget_fresh_build(pipeline: Pipeline, seed: int):
    """Drop the shared untrained build of `pipeline` from `seed` and return it; None if there was none."""
    return _BUILDS.get(pipeline, {}).pop(seed, None)


def take_fresh_build(pipeline: Pipeline, seed: int):
    """The untrained model of `pipeline` from `seed`, no longer shared: the caller may change it."""
    model = forget_fresh_build(pipeline, seed)
    return build(pipeline, seed, keep_compiled=True) if model is None else model


def forget_fresh_builds(pipeline: Pipeline | None = None) -> None:
    """Drop the shared builds of `pipeline`, or of every pipeline."""
    if pipeline is None:
        _BUILDS.clear()
        _FIRST.clear()
    else:
        _BUILDS.pop(pipeline, None)
        _FIRST.pop(pipeline, None)
