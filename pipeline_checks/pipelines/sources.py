"""Where a pipeline's images come from, and what `fit` trains on.

A source gives the checks the raw images in a fixed order, with integer labels and the
class names, and gives `fit` the object the repository itself trains on: its arrays, the
dataset `image_dataset_from_directory` reads from its folder, its `tf.data` pipeline, its
`PyDataset` or `ImageDataGenerator` iterator, its batches. So the checks run the
repository's own input code, not a copy of it. Every read is bounded (`bounded_read`): by
`steps_per_epoch` where the data repeats or may never end, and by MAX_IMAGES images.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline_checks._text import listed
from pipeline_checks.pipelines.bounded_read import check_image_count, read_batches
from pipeline_checks.pipelines.input_kind import NUMERIC_KINDS

KINDS = ("arrays", "folder", "dataset", "split", "sequence", "generator", "batches")
DEFAULT_IMAGE_SIZE = (256, 256)  # image_dataset_from_directory's own default


@dataclass(frozen=True)
class RawData:
    """Raw inputs as the pipeline reads them, with their targets: integer labels and class names,
    or float values (regression; no class names).

    `images` are images (N, H, W, C) or any numeric array with one row per example (tabular
    rows, sequences): arrays hold what the repository declares (uint8 pixels for images); a
    loader's are what it decodes (float32 pixels for `image_dataset_from_directory`), or what
    a dataset yields. `labels` are int32 class indices, or float32 values of shape (N,) or
    (N, outputs) for a regression (see `task`).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    outputs: tuple[tuple[str | int, RawData], ...] = ()  # several outputs: each one's key and targets

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        """ "several outputs" where targets come per output (`outputs`), "regression" where they are float
        values, "segmentation" where they are class labels per pixel (int32 masks (N, height, width)),
        else "classification"."""
        if self.outputs:
            return SEVERAL_OUTPUTS
        if self.labels.dtype.kind == "f":
            return "regression"
        return "segmentation" if self.labels.ndim == 3 else "classification"

    def output(self, key: str | int) -> RawData:
        """One output's targets, with the inputs: a `RawData` of one output."""
        return dict(self.outputs)[key]

    def __len__(self) -> int:
        return len(self.images)

    def part(self, start: int, stop: int) -> RawData:
        """The images and labels from `start` to `stop`, with the same class names."""
        outputs = tuple((key, raw.part(start, stop)) for key, raw in self.outputs)
        labels = {key: raw.labels for key, raw in outputs} if outputs else self.labels[start:stop]
        return RawData(self.images[start:stop], labels, self.class_names, outputs)


SEVERAL_OUTPUTS = "several outputs"


def several_targets(value) -> bool:
    """Whether `value` holds targets per output, as fit takes them for a model with several outputs: a
    dict of arrays by output name, or a list or tuple of two or more arrays in the model's output order."""
    if isinstance(value, dict):
        return bool(value) and all(isinstance(v, np.ndarray) for v in value.values())
    return isinstance(value, (list, tuple)) and len(value) > 1 and all(isinstance(v, np.ndarray) for v in value)


@dataclass(frozen=True, eq=False)
class Source:
    """A pipeline's data, read: raw images for the checks, and what `fit` is given.

    `fit_input(seed)` returns a new object to train on (None for arrays: fit gets the
    preprocessed arrays). `label_encoding` is how the source gives labels ("sparse" or
    "one_hot"), None when the pipeline declares it. `batch_size` is the source's own,
    None when fit batches. `train_path(images, labels)` is the source's own training
    transform of raw images (None: the pipeline's `preprocess_train`). `steps` is
    `steps_per_epoch`, which bounds each read of an endless source.
    """

    kind: str
    raw: RawData
    fit_input: Callable[[int], Any] | None = None
    label_encoding: str | None = None
    batch_size: int | None = None
    train_path: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    rebuilt: bool = True  # fit_input gives a fresh object each call (a dataset object is reused)
    steps: int | None = None

    def same_on_every_pass(self, seed: int) -> bool:
        """Whether two passes over what fit trains on yield the same batches.

        A rebuilt source starts from the seed each time. A reused dataset object with a
        reshuffling `.shuffle` yields another order on each pass, so a second fit in this
        process sees other batches, whatever the seed.
        """
        if self.rebuilt or self.fit_input is None:
            return True
        data = self.fit_input(seed)
        first, second = (_passed_over(data, self.steps) for _ in range(2))
        return all(np.array_equal(a, b) for a, b in zip(first, second))


def _passed_over(data, steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of what fit trains on: `steps` batches of it where the pipeline sets steps_per_epoch."""
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not _is_tf_dataset(data):
        return read_batches((data[i] for i in range(len(data))), steps)
    return read_batches(data, steps)


def source_kind(value: Any) -> str:
    """The kind of `value` as data, one of KINDS; TypeError naming what is accepted."""
    if isinstance(value, (str, os.PathLike)):
        return "folder"
    if all(hasattr(value, a) for a in ("images", "labels", "class_names")):
        return "arrays"
    if isinstance(value, (tuple, list)) and len(value) == 3 and hasattr(value[0], "shape"):
        return "arrays"  # (images, labels, class_names): a batch is an (x, y) pair, never an array
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], np.ndarray):
        if isinstance(value[1], np.ndarray) or several_targets(value[1]):
            return "arrays"  # (inputs, targets), as fit takes x and y; targets per output for several outputs
    if _is_tf_dataset(value):
        return "dataset"
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_tf_dataset(v) for v in value):
        return "split"  # (training, validation), as image_dataset_from_directory(..., subset="both") returns
    if hasattr(value, "image_data_generator"):  # Keras 2's ImageDataGenerator iterators
        return "generator"
    if hasattr(value, "__getitem__") and hasattr(value, "__len__") and _is_keras_sequence(value):
        return "sequence"
    if isinstance(value, (list, tuple)) or hasattr(value, "__next__"):
        return "batches"
    raise TypeError(
        "must be (or return) a TinyImageDataset, (images, labels, class_names), (inputs, targets), a folder of class "
        "folders, a tf.data.Dataset, a (training, validation) pair of them, a keras.utils.PyDataset, "
        "an ImageDataGenerator iterator or a list of "
        f"(x, y) batches; received: {type(value).__name__}"
    )


def _is_tf_dataset(value: Any) -> bool:
    return hasattr(value, "element_spec") and type(value).__module__.startswith("tensorflow")


def _is_keras_sequence(value: Any) -> bool:
    from pipeline_checks.model import compat

    utils = compat.keras().utils
    bases = tuple(getattr(utils, name) for name in ("PyDataset", "Sequence") if hasattr(utils, name))
    return isinstance(value, bases)


def folder_dataset(path, image_size, batch_size: int | None, shuffle: bool, seed: int | None = None):
    """`keras.utils.image_dataset_from_directory` as a repository calls it, with integer labels."""
    import inspect

    from pipeline_checks.model import compat

    read = compat.keras().utils.image_dataset_from_directory
    quiet = {"verbose": False} if "verbose" in inspect.signature(read).parameters else {}
    return read(
        os.fspath(path),
        image_size=tuple(image_size),
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        label_mode="int",
        **quiet,
    )


def integer_labels(labels: np.ndarray, class_names=None) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Integer labels, class names and the encoding ("sparse", "one_hot" or "values") of targets as a
    source gives them.

    One-hot rows become their argmax; strings (or bytes) become their index among the
    sorted names, as `image_dataset_from_directory` orders class folders. Float targets that
    are not class indices or one-hot rows (any value not a whole number, or rows that are not
    one 1 among 0s) are values to regress: float32, no class names, encoding "values".
    """
    labels = np.asarray(labels)
    if are_values(labels) and class_names is None:
        return labels.astype(np.float32), (), "values"
    if labels.ndim >= 3:
        return masks(labels, class_names)
    if labels.ndim == 2 and labels.shape[1] > 1:
        indices, encoding, width = labels.argmax(axis=1), "one_hot", labels.shape[1]
    else:
        labels = labels.reshape(len(labels)) if labels.ndim == 2 else labels
        encoding, width = "sparse", None
        if labels.dtype.kind in "SUO":
            text = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in labels])
            names = tuple(class_names) if class_names else tuple(sorted(set(text)))
            unknown = sorted(set(text) - set(names))
            if unknown:
                raise ValueError(f"labels {listed(unknown)} are not among the class names {listed(names)}")
            return np.array([names.index(t) for t in text], dtype=np.int32), names, encoding
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ValueError(
                f"labels must be class indices, one-hot rows or names; received float labels such as {labels[:3]}"
            )
        indices = labels
    indices = indices.astype(np.int32)
    names = index_names(indices, width) if class_names is None else tuple(str(n) for n in class_names)
    return indices, names, encoding


def masks(labels: np.ndarray, class_names=None) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Per-pixel class labels (segmentation masks) as int32 (N, height, width), their class names and
    encoding: masks (N, H, W) or (N, H, W, 1) are "sparse", one-hot masks (N, H, W, classes) "one_hot"."""
    labels = np.asarray(labels)
    if labels.ndim == 4 and labels.shape[-1] > 1:
        indices, encoding, width = labels.argmax(axis=-1), "one_hot", labels.shape[-1]
    else:
        indices = labels.reshape(labels.shape[:3]) if labels.ndim == 4 else labels
        encoding, width = "sparse", None
        if indices.ndim != 3 or indices.dtype.kind not in "iuf" or not np.all(indices == np.round(indices)):
            raise ValueError(
                "per-pixel labels must be class indices (N, height, width) or (N, height, width, 1), or one-hot "
                f"(N, height, width, classes); received: dtype {labels.dtype}, shape {labels.shape}"
            )
    indices = indices.astype(np.int32)
    names = index_names(indices, width) if class_names is None else tuple(str(n) for n in class_names)
    return indices, names, encoding


def index_names(indices: np.ndarray, width: int | None = None) -> tuple[str, ...]:
    """Class names for labels that come without them: '0', '1', ... up to the one-hot `width`, else
    to the largest index (at least one name)."""
    count = width or (int(np.max(indices)) + 1 if np.size(indices) else 0)
    return tuple(str(i) for i in range(max(count, 1)))


def are_values(targets: np.ndarray) -> bool:
    """Whether float targets are values to regress rather than class labels: some value is not a
    whole number (or is not finite), or (N, k) rows are not one-hot (one 1 among 0s)."""
    targets = np.asarray(targets)
    if targets.dtype.kind != "f" or targets.ndim == 0:
        return False
    with np.errstate(invalid="ignore"):
        whole = bool(np.all(np.isfinite(targets)) and np.all(targets == np.round(targets)))
    if not whole:
        return True
    if targets.ndim == 2 and targets.shape[1] > 1:
        return not (np.isin(targets, (0.0, 1.0)).all() and np.all(targets.sum(axis=1) == 1))
    return False  # whole values: class indices, or per-pixel class indices (masks) of rank 3 and more


@dataclass(frozen=True)
class Reading:
    """How the pipeline reads its data: the fit arguments a loader needs, and the dataset function.

    `size_of` gives the (height, width) at which a folder, or a dataset's images of varying size,
    are read; it is called only where one is needed (it may build the model to read its input size).
    """

    size_of: Callable[[], tuple[int, int]]
    batch_size: int
    shuffle: bool
    steps: int | None  # steps_per_epoch: bounds a repeated dataset
    train_dataset: Callable[[Any], Any] | None

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.size_of())


def load(data: Any, reading: Reading, part: int | None = None) -> Source:
    """Read `data` (or what it returns, called with no arguments) as a `Source`.

    Only `arrays` are not read here: the pipeline validates those itself. `part` picks one
    dataset of a (training, validation) split: 0 or 1.
    """
    if part is not None:
        data = _part_of(data, part)
    value = data() if callable(data) else data
    kind = source_kind(value)
    rebuild = (lambda: data()) if callable(data) else (lambda: value)
    if kind == "folder":
        return _folder(value, reading)
    if kind == "dataset":
        return _dataset(value, rebuild, reading, rebuilt=callable(data))
    if kind == "generator":
        return _generator(value, rebuild, rebuilt=callable(data))
    if kind == "sequence":
        x, y = read_batches(value[i] for i in range(len(value)))
        return _given(kind, x, y, lambda seed: rebuild(), len(value[0][0]), callable(data), steps=reading.steps)
    if kind == "batches":
        batches = _kept_batches(value, reading.steps)
        x, y = read_batches(batches)
        return _given(kind, x, y, lambda seed: _batch_sequence(batches), batch_size=len(batches[0][0]), rebuilt=True)
    raise AssertionError(kind)  # arrays are the pipeline's own


def _part_of(data: Any, part: int) -> Any:
    """One dataset of a split, or a function that calls the loader again and returns that dataset."""
    if callable(data):
        return lambda: data()[part]
    return data[part]


def _kept_batches(value, steps: int | None) -> list:
    """A list's batches, or an iterator's first `steps` (read as `read_batches` reads, so bounded)."""
    if hasattr(value, "__len__"):
        return list(value)
    kept = []

    def keeping():
        for batch in value:
            kept.append(batch)
            yield batch

    read_batches(keeping(), steps)
    return kept


def _given(kind, x, y, fit_input, batch_size, rebuilt, train_path=None, steps=None, class_names=None) -> Source:
    """A source whose batches are read as given: its labels read as `integer_labels` reads them."""
    labels, names, encoding = integer_labels(y, class_names)
    raw = RawData(_images(x), labels, names)
    return Source(kind, raw, fit_input, encoding, batch_size, train_path or _unchanged(y), rebuilt, steps)


def _images(x) -> np.ndarray:
    """The inputs a loader gives, as an array: images, or any numeric array with one row per example."""
    x = np.asarray(x)
    if x.ndim < 1 or x.dtype.kind not in NUMERIC_KINDS:
        raise ValueError(
            f"data inputs must be a numeric array with one row per example; received: dtype {x.dtype}, shape {x.shape}"
        )
    return x


def _unchanged(given_labels):
    """The identity training path: the source's inputs are the model's, its labels fit's."""
    return lambda images, labels=None: (np.asarray(images), given_labels if labels is None else labels)


def _folder(path, reading: Reading) -> Source:
    if not os.path.isdir(path):
        raise NotADirectoryError(f"data names a folder that does not exist; received: {os.fspath(path)!r}")
    listing = folder_dataset(path, reading.image_size, batch_size=64, shuffle=False)
    x, y = _decoded_folder(listing)

    def fit_input(seed):
        dataset = folder_dataset(path, reading.image_size, reading.batch_size, reading.shuffle, seed)
        return dataset if reading.train_dataset is None else reading.train_dataset(dataset)

    raw = RawData(x, y.astype(np.int32), tuple(listing.class_names))
    path_of = _dataset_path(reading.train_dataset, batched=True, given=y)
    return Source("folder", raw, fit_input, "sparse", reading.batch_size, path_of, rebuilt=True)


def _decoded_folder(listing) -> tuple[np.ndarray, np.ndarray]:
    """The folder's images as TensorFlow decodes them, after the files pass the checks diagnose makes.

    Each file's header is read first (the size limit, before a huge image is decoded); where
    TensorFlow still cannot decode one, the files are decoded again to name it.
    """
    import tensorflow as tf

    from pipeline_checks.saved_model.image_folders import check_image_file, decoded_image

    paths = list(getattr(listing, "file_paths", ()))
    check_image_count(len(paths), "data (a folder)")
    for path in paths:
        check_image_file(path)
    try:
        return read_batches(listing)
    except tf.errors.OpError as error:
        for path in paths:
            decoded_image(path, "RGB")
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"TensorFlow cannot decode an image of the folder: {first_line}") from None


def _dataset(dataset, rebuild, reading: Reading, rebuilt: bool) -> Source:
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            f"a tf.data.Dataset as data must yield (x, y) or (x, y, sample_weight); received element_spec {spec}"
        )
    batched = _batched(dataset)
    _check_bounded(dataset, reading.steps, "data is")
    # A dataset that may not end (repeated, or of unknown length: from_generator, filter) is read
    # for one epoch, as fit reads it; one of known length is read whole.
    steps = reading.steps if int(dataset.cardinality()) < 0 else None
    if _varies_in_size(dataset):
        x, y = _read_resized(dataset, reading, steps)
    else:
        x, y = read_batches(dataset if batched else dataset.batch(reading.batch_size if steps else 64), steps)

    def fit_input(seed):
        again = rebuild() if reading.train_dataset is None else reading.train_dataset(rebuild())
        again = again if _batched(again) else again.batch(reading.batch_size)  # as fit batches arrays
        _check_bounded(again, reading.steps, "train_dataset returns")
        return again

    size = len(next(iter(dataset))[0]) if batched else reading.batch_size
    path = _dataset_path(reading.train_dataset, batched, given=y)
    # image_dataset_from_directory's dataset names its classes (lost after a .map).
    names = getattr(dataset, "class_names", None)
    return _given("dataset", x, y, fit_input, size, rebuilt, path, reading.steps, class_names=names)


def _varies_in_size(dataset) -> bool:
    """Whether an unbatched dataset's images may differ in height or width (a tfds loader's, before its resize)."""
    shape = dataset.element_spec[0].shape
    return not _batched(dataset) and shape.rank == 3 and (shape[0] is None or shape[1] is None)


def _read_resized(dataset, reading: Reading, steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Images of varying size, each read at `reading.image_size` as keras.layers.Resizing and
    image_dataset_from_directory resize (bilinear): the size the repository's own resize gives the model.

    fit trains on what `train_dataset` makes of the dataset; without one, fit cannot batch the images.
    """
    import tensorflow as tf

    if reading.train_dataset is None:
        sizes = [tuple(int(d) for d in np.shape(x)[:2]) for x, *_ in itertools.islice(dataset.as_numpy_iterator(), 2)]
        raise ValueError(
            f"data yields images of different sizes (such as {' and '.join(f'{h}x{w}' for h, w in sizes)}) and no "
            "train_dataset resizes them, so fit cannot batch them: declare the repository's resize, e.g. "
            "train_dataset=lambda ds: ds.map(lambda x, y: (keras.layers.Resizing(height, width)(x), y))"
        )
    height, width = reading.image_size
    resized = dataset.map(lambda x, y, *rest: (tf.image.resize(x, (height, width)), y, *rest))
    return read_batches(resized.batch(reading.batch_size if steps else 64), steps)


def _check_bounded(dataset, steps: int | None, what: str) -> None:
    """ValueError for a repeated dataset without steps_per_epoch: fit would never end its first epoch."""
    if steps is None and int(dataset.cardinality()) == -1:  # tf.data.INFINITE_CARDINALITY
        raise ValueError(
            f"{what} a repeated (infinite) tf.data.Dataset: fit_kwargs must set steps_per_epoch, which bounds "
            "each epoch, as fit requires; received no steps_per_epoch"
        )


def _batched(dataset) -> bool:
    """Whether a dataset yields batches: images of rank 4, or inputs and labels whose first dimension
    is the batch's, unknown (as `.batch` leaves it) in both."""
    x, y = (_first_spec(spec) for spec in dataset.element_spec[:2])
    if x.rank == 4:
        return True
    # An unbatched image, even of varying size, has labels of rank 0 or a one-hot row of known width.
    return bool(x.rank and y.rank and x[0] is None and y[0] is None)


def _first_spec(spec):
    """The shape of a spec, or of the first of several (a tuple or dict of inputs)."""
    while isinstance(spec, (tuple, list, dict)):
        spec = next(iter(spec.values() if isinstance(spec, dict) else spec))
    return spec.shape


def _dataset_path(train_dataset, batched: bool, given: np.ndarray):
    """The repository's dataset function on raw images, in their order: (x, y) as fit gets them.

    All images go in one batch (a batched source) or one element each: `.map`, `.batch`
    and augmentation keep the order, a `.shuffle` of one batch has nothing to move. Where
    the order still comes out changed (a shuffle of single elements), each image goes
    through on its own.
    """
    if train_dataset is None:
        return _unchanged(given)
    import tensorflow as tf

    def run(images, labels):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        dataset = dataset.batch(len(images)) if batched else dataset
        out = _one_pass(train_dataset(dataset), len(images))
        out = out if _batched(out) else out.batch(len(images))  # as fit batches what it returns
        return read_batches(out, what="train_dataset")

    def path(images, labels=None):
        labels = given[: len(images)] if labels is None else labels
        labels = labels if len(labels) == len(images) else np.repeat(given[:1], len(images), axis=0)
        x, y = run(images, labels)
        if len(x) != len(images):
            raise ValueError(
                f"train_dataset turned {len(images)} images into {len(x)} inputs; it must give one input per "
                "image (no drop_remainder, take or filter when checked)"
            )
        if not _same_grouping(y, labels):
            pairs = [run(images[i : i + 1], labels[i : i + 1]) for i in range(len(images))]
            x, y = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
        return x, y

    return path


def _one_pass(dataset, images: int):
    """The first `images` inputs of a repeated dataset (a `.repeat()` in train_dataset), else the dataset."""
    if int(dataset.cardinality()) != -1:
        return dataset
    if _batched(dataset):
        return dataset.unbatch().take(images).batch(images)
    return dataset.take(images)


def _same_grouping(out, given) -> bool:
    """Whether two label sequences group the images alike (equal where equal), whatever their encoding."""

    def groups(labels):
        labels = np.asarray(labels)
        keys = [row.tobytes() for row in labels.reshape(len(labels), -1)]
        first = {}
        return [first.setdefault(key, len(first)) for key in keys]

    return len(out) == len(given) and groups(out) == groups(given)


def _generator(iterator, rebuild, rebuilt: bool) -> Source:
    """An ImageDataGenerator iterator: raw images read as it reads them, its own transform as training path."""
    generator = iterator.image_data_generator
    if hasattr(iterator, "filepaths"):
        from pipeline_checks.model import compat
        from pipeline_checks.saved_model.image_folders import check_image_file

        check_image_count(len(iterator.filepaths), "data (an ImageDataGenerator iterator)")
        for path in iterator.filepaths:
            check_image_file(path)
        load_img = compat.keras().utils.load_img
        images = np.stack(
            [
                np.asarray(
                    load_img(
                        path,
                        color_mode=iterator.color_mode,
                        target_size=iterator.target_size,
                        interpolation=iterator.interpolation,
                    ),
                    dtype=np.float32,
                ).reshape(iterator.image_shape)
                for path in iterator.filepaths
            ]
        )
        indices = np.asarray(iterator.classes, dtype=np.int32)
        names = tuple(sorted(iterator.class_indices, key=iterator.class_indices.get))
    else:
        check_image_count(len(iterator.x), "data (an ImageDataGenerator iterator)")
        images, indices = np.asarray(iterator.x, dtype=np.float32), np.asarray(iterator.y)
        indices, names, _ = integer_labels(indices)
    first_y = np.asarray(iterator[0][1])
    one_hot = first_y.ndim == 2 and first_y.shape[1] > 1
    given = np.eye(len(names), dtype=np.float32)[indices] if one_hot else indices.astype(np.float32)

    def path(batch, labels=None):
        x = np.stack(
            [generator.standardize(generator.random_transform(np.array(image, dtype=np.float32))) for image in batch]
        )
        return x, (given[: len(batch)] if labels is None else labels)

    raw = RawData(images, indices, names)
    encoding = "one_hot" if one_hot else "sparse"
    return Source("generator", raw, lambda seed: rebuild(), encoding, iterator.batch_size, path, rebuilt)


def _batch_sequence(batches: list):
    """The batches as a Keras sequence, so that fit can go over them once per epoch."""
    from pipeline_checks.model import compat

    utils = compat.keras().utils
    base = getattr(utils, "PyDataset", None) or utils.Sequence

    class Batches(base):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return tuple(batches[index])

    return Batches()
