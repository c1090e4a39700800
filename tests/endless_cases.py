"""Pipelines on endless data, each run in a child process by test_endless_data.py.

`python -c "import endless_cases; endless_cases.main('NAME')"` runs one case and prints
`RESULT: ...` lines the test matches. A watchdog ends the process (exit status 99) once its
memory passes RSS_LIMIT, so a read without bound fails fast instead of filling the machine;
the test's timeout ends one that hangs without growing.
"""

from __future__ import annotations

import os
import threading
import time

RSS_LIMIT = 2_000_000_000  # bytes: a small CNN's checks stay near 1 GB
FIT = {"epochs": 1, "batch_size": 4, "steps_per_epoch": 3}


def _watch_memory() -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    while True:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * page
        if resident > RSS_LIMIT:
            print(f"RESULT: killed by the watchdog at {resident / 1e9:.1f} GB", flush=True)
            os._exit(99)
        time.sleep(0.1)


def _images():
    import numpy as np
    from broken_pipelines.common import DATA

    return np.asarray(DATA.images, np.float32) / 255.0, DATA.labels


def _pipeline(data, train_dataset=None, **fit):
    from broken_pipelines.common import compiled_cnn

    from pipeline_checks.pipelines.pipeline import Pipeline

    return Pipeline("endless", compiled_cnn, data, fit_kwargs={**FIT, **fit}, train_dataset=train_dataset)


def _report(label: str, call) -> None:
    """Print what the call returns, or the one line of the error it raises."""
    try:
        result = call()
    except Exception as error:  # the case's expected outcome may be an error: print it
        print(f"RESULT: {label}: {type(error).__name__}: {error}", flush=True)
    else:
        print(f"RESULT: {label}: {result}", flush=True)


def repeated_datasets() -> None:
    """Item 1: a repeated dataset (batched, or filtered) with steps_per_epoch, replayed by determinism."""
    import tensorflow as tf

    from pipeline_checks.checks import check_determinism

    x, y = _images()
    batched = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    filtered = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda image, label: label >= 0).batch(4).repeat()
    for label, dataset in (("batch-repeat", batched), ("filter-repeat", filtered)):
        _report(label, lambda dataset=dataset: check_determinism(_pipeline(dataset)).summary)
    # a .repeat() in the repository's own train_dataset: its path on the raw images takes one pass
    raw = tf.data.Dataset.from_tensor_slices((x * 255.0, y)).batch(4)
    pipeline = _pipeline(raw, train_dataset=lambda dataset: dataset.map(lambda a, b: (a / 255.0, b)).repeat())
    _report("train-dataset-repeat", lambda: len(pipeline.training_pairs(pipeline.raw_data())[0]))


def endless_generator_dataset() -> None:
    """Item 2: `from_generator` of an endless generator (cardinality unknown), with and without steps_per_epoch."""
    import tensorflow as tf

    x, y = _images()

    def endless():
        while True:
            for i in range(len(x)):
                yield x[i], y[i]

    spec = (tf.TensorSpec(x.shape[1:], tf.float32), tf.TensorSpec((), y.dtype))
    dataset = tf.data.Dataset.from_generator(endless, output_signature=spec).batch(4)
    _report("with-steps", lambda: len(_pipeline(dataset).raw_data()))
    _report("without-steps", lambda: len(_pipeline(dataset, steps_per_epoch=None).raw_data()))


def endless_python_generator() -> None:
    """Item 3: an endless Python generator of (x, y) batches as data, with and without steps_per_epoch."""
    x, y = _images()

    def batches():
        while True:
            for i in range(0, len(x), 4):
                yield x[i : i + 4], y[i : i + 4]

    _report("with-steps", lambda: len(_pipeline(batches()).raw_data()))
    _report("without-steps", lambda: len(_pipeline(batches(), steps_per_epoch=None).raw_data()))


CASES = {
    "repeated-datasets": repeated_datasets,
    "endless-generator-dataset": endless_generator_dataset,
    "endless-python-generator": endless_python_generator,
}


def main(name: str) -> None:
    threading.Thread(target=_watch_memory, daemon=True).start()
    CASES[name]()
