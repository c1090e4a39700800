"""What `keras.utils.set_random_seed` sets, kept and put back: for checks run inside a user's process.

`compat.set_random_seed` seeds Python's `random`, NumPy's global generator, TensorFlow's global
seed and its operation-seed counter, Keras' global seed (and its global `SeedGenerator`), and
torch's generator on the torch backend. A check called from the user's own code (the `Recorder`)
seeds them all; `random_state_kept()` gives each back as it was, so the user's next draw is the
one it would have been without the check.
"""

from __future__ import annotations

import contextlib
import copy
import random
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Inside, seed and draw freely; on exit every generator Keras seeds is as it was on entry."""
    restores = [_python(), _numpy(), *_tensorflow(), *_keras(), *_torch()]
    try:
        yield
    finally:
        for restore in reversed(restores):
            restore()


def _python():
    state = random.getstate()
    return lambda: random.setstate(state)


def _numpy():
    import numpy as np

    state = np.random.get_state()
    return lambda: np.random.set_state(state)


def _tensorflow() -> list:
    """The eager context's global seed and the `random.Random` its operation seeds come from,
    and the default graph's seed (what `tf.random.set_seed` sets outside eager mode)."""
    if "tensorflow" not in sys.modules:
        return []
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    eager = context.context()
    seed, rng = getattr(eager, "_seed", None), copy.deepcopy(getattr(eager, "_rng", None))
    graph = ops.get_default_graph()
    graph_seed = graph.seed

    def restore():
        # Set back without `_set_global_seed`, which would also clear every compiled kernel.
        eager._seed, eager._rng = seed, copy.deepcopy(rng)
        graph.seed = graph_seed

    return [restore]


def _keras() -> list:
    """Keras 3's global seed and global SeedGenerator (with its state); Keras 2's seed generator."""
    restores = []
    if "keras" in sys.modules:
        with contextlib.suppress(ImportError):
            restores.append(_keras3_global_state())
    if "tf_keras" in sys.modules:
        with contextlib.suppress(ImportError):
            restores.append(_keras2_seed_generator())
    return restores


def _keras3_global_state():
    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    names = (getattr(rng_utils, "GLOBAL_RANDOM_SEED", "global_random_seed"), seed_generator.GLOBAL_SEED_GENERATOR)
    saved = {name: global_state.get_global_attribute(name) for name in names}
    generator = saved[seed_generator.GLOBAL_SEED_GENERATOR]
    generator_state = np.array(generator.state) if generator is not None else None

    def restore():
        for name, value in saved.items():
            global_state.set_global_attribute(name, value)
        if generator is not None:
            generator.state.assign(generator_state)

    return restore


def _keras2_seed_generator():
    """tf_keras' `set_random_seed` also reseeds `backend._SEED_GENERATOR.generator`, a `random.Random`."""
    from tf_keras.src import backend

    holder = backend._SEED_GENERATOR
    generator = copy.deepcopy(getattr(holder, "generator", None))

    def restore():
        if generator is None:
            with contextlib.suppress(AttributeError):
                del holder.generator
        else:
            holder.generator = copy.deepcopy(generator)

    return restore


def _torch() -> list:
    if "torch" not in sys.modules:
        return []
    import torch

    state = torch.get_rng_state()
    return [lambda: torch.set_rng_state(state)]
