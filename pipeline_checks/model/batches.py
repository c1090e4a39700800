"""Turn what users pass as data into a list of (inputs, targets) batches.

Accepted: an array of inputs; a tuple `(x, y)` or `(x, y, sample_weight)` of arrays;
or an iterable of batches such as a batched `tf.data.Dataset` or a `keras.utils.PyDataset`.
Data is tiny here, so batches are materialized once and reused by every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks._validation import is_integer
from pipeline_checks.model.output_models import per_output

DEFAULT_BATCH_SIZE = 32  # Keras' own default for fit, evaluate and predict.


@dataclass(frozen=True)
class Batches:
    inputs: list
    targets: list | None

    @property
    def sizes(self) -> list[int]:
        return [len(x) for x in self.inputs]

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def all_inputs(self) -> np.ndarray:
        return np.concatenate([np.asarray(x) for x in self.inputs])

    def all_targets(self):
        """Every batch's targets in one array; a dict or list of arrays for targets per output."""
        first = self.targets[0]
        if isinstance(first, dict):
            return {name: np.concatenate([np.asarray(y[name]) for y in self.targets]) for name in first}
        if isinstance(first, list):
            return [np.concatenate([np.asarray(y[i]) for y in self.targets]) for i in range(len(first))]
        return np.concatenate([np.asarray(y) for y in self.targets])


def collect_batches(
    data: Any, batch_size: int | None = None, need_targets: bool = False, shuffle: bool = False
) -> Batches:
    """Materialize `data` as batches; arrays are split into `batch_size` (default 32) slices.

    With `shuffle`, arrays are permuted first (always the same permutation), as `fit`
    shuffles them: tiny datasets come ordered by class, and a batch of one class has
    batch statistics no training batch had. Iterables keep their own order.
    """
    from pipeline_checks.testing.datasets import TinyImageDataset

    if batch_size is not None and (not is_integer(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None; received: batch_size={batch_size!r}")
    if isinstance(data, TinyImageDataset):
        raise TypeError(
            "Pass model inputs, not a TinyImageDataset of raw uint8 images: preprocess them first, "
            "e.g. (preprocess_input(data.images.astype('float32')), data.labels)."
        )
    if isinstance(data, np.ndarray) or _is_tensor(data):
        inputs, targets = _split(_shuffled(data, shuffle, batch_size), batch_size), None
    elif isinstance(data, tuple) and len(data) in (2, 3) and not _is_batch_source(data[0]):
        if len(data[0]) != _rows(data[1]):
            raise ValueError(f"x and y hold different numbers of samples: {len(data[0])} and {_rows(data[1])}")
        inputs = _split(_shuffled(data[0], shuffle, batch_size), batch_size)
        targets = _per_output(data[1], lambda y: _split(_shuffled(y, shuffle, batch_size), batch_size))
    elif hasattr(data, "__iter__"):
        inputs, targets = _from_iterable(data)
    else:
        raise TypeError(
            "data must be an array of inputs, a tuple (x, y), or an iterable of batches such as "
            f"a tf.data.Dataset; received: {type(data).__name__}"
        )
    if not inputs or sum(map(len, inputs)) == 0:
        raise ValueError("data holds no samples; pass at least one image")
    if need_targets and targets is None:
        raise ValueError("data has no targets: pass (x, y), or a dataset of (x, y) batches")
    return Batches(inputs, targets)


def _rows(targets) -> int:
    """The samples targets hold: an array's length, or each output's (a dict or list of arrays per output)."""
    lengths = {len(t) for _, t in per_output(targets)}
    return lengths.pop() if len(lengths) == 1 else -1


def _per_output(targets, batched) -> list:
    """`batched(targets)`, a list of batches; for targets per output, batches that are each a dict or list."""
    outputs = per_output(targets)
    if outputs[0][0] is None:
        return batched(targets)
    keys, parts = zip(*((key, batched(t)) for key, t in outputs))
    by_name = isinstance(targets, dict)
    return [dict(zip(keys, batch)) if by_name else list(batch) for batch in zip(*parts)]


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (list, tuple))


def _is_batch_source(value) -> bool:
    return not _is_tensor(value) and not isinstance(value, (list, np.ndarray)) and hasattr(value, "__iter__")


def _shuffled(array, shuffle: bool, batch_size: int | None):
    """Which samples share a batch follows a fixed permutation; inside a batch, the data's order.

    A batch's statistics do not depend on the order of its samples, but their rounding
    does: keeping the given order makes one batch over all the data exactly that data.
    """
    array = np.asarray(array)
    if not shuffle or array.ndim == 0 or len(array) == 0:
        return array
    order = np.random.default_rng(0).permutation(len(array))
    size = batch_size or DEFAULT_BATCH_SIZE
    return array[np.concatenate([np.sort(order[start : start + size]) for start in range(0, len(order), size)])]


def _split(array, batch_size):
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError(f"expected an array of samples; received a scalar {array!r}")
    size = batch_size or DEFAULT_BATCH_SIZE
    return [array[start : start + size] for start in range(0, len(array), size)]


def _from_iterable(data):
    inputs, targets = [], []
    for batch in data:
        if isinstance(batch, (tuple, list)):
            inputs.append(np.asarray(batch[0]))
            targets.append(np.asarray(batch[1]) if len(batch) > 1 else None)
        else:
            inputs.append(np.asarray(batch))
            targets.append(None)
    has_targets = bool(targets) and all(t is not None for t in targets)
    return inputs, targets if has_targets else None
