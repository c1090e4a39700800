"""What a repository declares about its training pipeline, validated when it is declared."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline_checks._validation import is_integer
from pipeline_checks.pipelines.input_kind import NUMERIC_KINDS, examples_word
from pipeline_checks.pipelines.sources import (
    DEFAULT_IMAGE_SIZE,
    RawData,
    Reading,
    Source,
    index_names,
    load,
    masks,
    several_targets,
    source_kind,
)

__all__ = ["Pipeline", "RawData", "to_float"]

LABEL_ENCODINGS = ("sparse", "one_hot")
FIT_KWARGS_WE_SET = ("x", "y", "verbose")  # data comes from `data`; verbosity from the checks


def to_float(images) -> np.ndarray:
    """The default preprocessing: pixel values 0..255 as float32, unchanged otherwise."""
    return np.asarray(images, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Pipeline:
    """A training pipeline, small and explicit, as the checks take it.

    Args:
        name: a short name for reports and test ids, e.g. "resnet50-photos".
        build_model: returns a fresh compiled Keras model each call.
        data: the training data as the repository reads it, or a function returning it
            (called once per training run, so a dataset it builds is built anew):
            arrays (a `TinyImageDataset`; `(inputs, labels, class_names)` with integer
            labels, one per row of `inputs`; or `(inputs, targets)`, as `fit(x, y)` takes them,
            with integer labels or float values to regress, (N,) or (N, outputs); the inputs
            uint8 images (N, H, W, C), or any numeric array (N, ...) such as tabular rows
            (N, features) or sequences (N, steps, features)); a
            folder of class folders (str or Path, read by `keras.utils.image_dataset_from_directory`
            at `folder_image_size()`); a
            `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`, batched or not, with
            integer, one-hot or string labels, or float values (those that are not class
            indices or one-hot rows: a regression); a `(training, validation)` pair of datasets, as
            `image_dataset_from_directory(..., validation_split=..., subset="both")` returns
            (fit gets the second as `validation_data`); a `keras.utils.PyDataset`; an
            `ImageDataGenerator` iterator (`flow`, `flow_from_directory`); or a list of
            `(x, y)` batches. `fit` trains on that object itself.
        preprocess_train: raw inputs (uint8 images, tabular rows) -> model inputs for `fit`, for
            arrays. Default: float32 values. Other data preprocess for training in `train_dataset`, or yield
            model inputs.
        preprocess_infer: raw images -> model inputs for `evaluate`/`predict`: the serving
            code, on a batch of decoded images. Default: the training path.
        label_encoding: "sparse" (integer labels) or "one_hot", as `fit` receives arrays'
            labels; other data give labels as `fit` receives them.
        fit_kwargs: arguments of `fit` (epochs, batch_size, shuffle, callbacks,
            validation_data, steps_per_epoch, class_weight, ...); not x, y or verbose. The
            checks' own recorder runs beside the callbacks. Default: `{"epochs": 5}`.
        train_dataset: the repository's dataset function, `dataset -> dataset`, for a folder or
            a `tf.data.Dataset`: its `.map(preprocess)`, augmentation, `.shuffle`, `.batch`,
            `.prefetch`. `fit` trains on its result; the checks also run it on the raw images
            to compare the training path with `preprocess_infer`. It gets batches for a
            folder and a batched dataset, single examples otherwise. Default: none.
        image_size: (height, width) at which a folder is read, and at which the checks read a
            dataset's images of varying size (`train_dataset` resizes them for fit). Default: the
            model's input size where `build_model` fixes it, else (256, 256), as
            `image_dataset_from_directory`.
        application: a `keras.applications` name whose `preprocess_input` conventions the
            inputs must follow (e.g. when loading that application's pretrained weights).
        validation_data: raw validation data as for `data` (e.g. another directory split),
            whose class order must match the training data's.
        after_fit: called as `after_fit(model, x_train)` after `fit`, for steps the
            pipeline runs before deployment, e.g. `pipeline_checks.recalibrate_batchnorm`.
        train: the repository's own training function, `train(model, data)`, for training that
            one `fit` does not express: a head trained on a frozen base, then fine-tuned with
            the base unfrozen and recompiled; a subclassed model with its own `train_step`; a
            `GradientTape` loop. `data` is what `fit` would get: `(x_train, y_train)` for
            arrays, else the dataset object of the source. Each `model.fit` it calls is a
            stage, recorded with the checks' recorder after its callbacks (verbose 0). A
            function with a `validation_data` parameter or a required third one,
            `train(model, data, validation_data)`, gets the validation data as fit would
            (fit_kwargs' `validation_data`, the images `validation_split` holds out, or a
            split's second dataset; None where there is none). A function that calls no
            `fit` is one "custom loop" stage. What it returns is ignored. `fit_kwargs` still
            tell the checks the batch size and epochs. Default:
            none (the checks call `fit` once with `fit_kwargs`).
        check_options: check name -> keyword arguments of that check, which it takes when
            its caller passes none, e.g. `{"overfit": {"target_accuracy": 0.9}}` for a head
            on a frozen base that cannot memorize. The names are checked here, the
            arguments by the check when it runs. Default: none.

    Example:
        >>> pipeline = Pipeline(
        ...     name="mobilenet",
        ...     build_model=lambda: compiled_mobilenet(classes=3),
        ...     data=make_tiny_images(classes=3, per_class=2, size=32, kind="photos"),
        ...     preprocess_train=lambda images: images / 127.5 - 1,
        ...     fit_kwargs={"epochs": 5, "batch_size": 6},
        ...     application="MobileNetV2",
        ... )
    """

    name: str
    build_model: Callable[[], Any]
    data: Any
    preprocess_train: Callable[[np.ndarray], Any] = to_float
    preprocess_infer: Callable[[np.ndarray], Any] | None = None
    label_encoding: str = "sparse"
    fit_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"epochs": 5})
    application: str | None = None
    validation_data: Any = None
    after_fit: Callable[[Any, Any], Any] | None = None
    check_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    train_dataset: Callable[[Any], Any] | None = None
    image_size: tuple[int, int] | None = None
    train: Callable[[Any, Any], Any] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Pipeline name must be a non-empty string; received: name={self.name!r}")
        for attribute in ("build_model", "preprocess_train"):
            _check_callable(self.name, attribute, getattr(self, attribute))
        for attribute in ("preprocess_infer", "after_fit", "train_dataset", "train"):
            if getattr(self, attribute) is not None:
                _check_callable(self.name, attribute, getattr(self, attribute))
        if self.preprocess_infer is None and self.train_dataset is None:
            object.__setattr__(self, "preprocess_infer", self.preprocess_train)
        if self.image_size is not None:
            object.__setattr__(self, "image_size", _checked_image_size(self.name, self.image_size))
        object.__setattr__(self, "_sources", {})
        if self.label_encoding not in LABEL_ENCODINGS:
            raise ValueError(
                f"Pipeline {self.name!r}: label_encoding must be one of {', '.join(map(repr, LABEL_ENCODINGS))}; "
                f"received: label_encoding={self.label_encoding!r}"
            )
        object.__setattr__(self, "fit_kwargs", _checked_fit_kwargs(self.name, self.fit_kwargs))
        object.__setattr__(self, "check_options", _checked_check_options(self.name, self.check_options))
        if self.application is not None:
            from pipeline_checks.model.applications import resolve_application_name

            object.__setattr__(self, "application", resolve_application_name(self.application))

    @property
    def batch_size(self) -> int:
        return int(self.fit_kwargs.get("batch_size", 32))

    @property
    def epochs(self) -> int:
        return int(self.fit_kwargs.get("epochs", 1))

    def raw_data(self) -> RawData:
        """The training data, read and checked: for arrays with fit's `validation_split`, the images
        fit trains on (Keras holds out the last ones, before shuffling)."""
        raw = self._read("data", self.data)
        split_at = self._split_at(raw)
        return raw if split_at is None else raw.part(0, split_at)

    def raw_validation_data(self) -> RawData | None:
        """The validation data, read and checked: `validation_data`, or the images fit's
        `validation_split` holds out of arrays; None where there is none."""
        if self.validation_data is not None:
            return self._read("validation_data", self.validation_data)
        if self._kind("data", self.data) == "split":
            return self._split_validation().raw
        if not self._splits_arrays():
            return None
        raw = self._read("data", self.data)
        return raw.part(self._split_at(raw), len(raw))

    def _splits_arrays(self) -> bool:
        """Whether fit splits the arrays it gets: `validation_split` without `validation_data`."""
        given = self.fit_kwargs
        return bool(given.get("validation_split")) and given.get("validation_data") is None and self.source() is None

    def _split_at(self, raw: RawData) -> int | None:
        """Where Keras' `validation_split` cuts the arrays (the first image it holds out), as fit computes it."""
        if not self._splits_arrays():
            return None
        split_at = math.floor(len(raw) * (1.0 - float(self.fit_kwargs["validation_split"])))
        if not 0 < split_at < len(raw):
            raise ValueError(
                f"Pipeline {self.name!r}: fit_kwargs['validation_split']={self.fit_kwargs['validation_split']!r} "
                f"leaves {split_at} of the {len(raw)} images for training and {len(raw) - split_at} for validation; "
                "expected a share that leaves images for both"
            )
        return split_at

    def _split_validation(self) -> Source:
        """The second dataset of a (training, validation) split, read as given (no train_dataset)."""
        if "split validation" not in self._sources:
            self._sources["split validation"] = self._load("data", self.data, part=1)
        return self._sources["split validation"]

    def source(self) -> Source | None:
        """The training data read by its loader; None for arrays, which the pipeline reads itself.

        Read once, unless `data` is a function: each `raw_data()` (each run) then reads anew,
        as the repository does, and the rest of that run uses what it read.
        """
        if self._kind("data", self.data) == "arrays":
            return None
        if "data" not in self._sources:
            split = self._kind("data", self.data) == "split"
            self._sources["data"] = self._load("data", self.data, part=0 if split else None)
        return self._sources["data"]

    def _kind(self, attribute: str, data: Any) -> str:
        key = f"kind of {attribute}"
        if key not in self._sources:
            with self._step(attribute):
                value = data() if callable(data) else data
            try:
                self._sources[key] = source_kind(value)
            except TypeError as error:
                raise TypeError(f"Pipeline {self.name!r}: {attribute} {error}") from None
        return self._sources[key]

    def training_pairs(self, raw: RawData) -> tuple[Any, np.ndarray]:
        """Model inputs and targets of the raw images, in their order, as fit gets them."""
        source = self.source()
        if source is None:
            return self.train_inputs(raw.images), self.targets(raw)
        with self._step("train_dataset" if self.train_dataset else "data"):
            return source.train_path(raw.images, None if raw is source.raw else _given_like(source, raw))

    def train_inputs(self, images: np.ndarray) -> np.ndarray:
        source = self.source()
        if source is None:
            return self._preprocessed("preprocess_train", images)
        with self._step("train_dataset" if self.train_dataset else "data"):
            return np.asarray(source.train_path(images)[0])

    def infer_inputs(self, images: np.ndarray) -> np.ndarray:
        if self.preprocess_infer is None:
            return self.train_inputs(images)
        return self._preprocessed("preprocess_infer", images)

    def targets(self, raw: RawData) -> np.ndarray:
        """Labels as `fit` receives them; out-of-range labels are left for the labels check."""
        if self.source() is not None:
            return np.asarray(self.training_pairs(raw)[1])
        if raw.outputs:  # as fit takes them: a dict by output name, or a list in the outputs' order
            targets = {key: self.targets(part) for key, part in raw.outputs}
            return targets if isinstance(raw.outputs[0][0], str) else list(targets.values())
        if raw.task == "regression":
            return raw.labels
        if self.label_encoding == "sparse":
            return raw.labels.astype(np.int32)
        width = max(raw.classes, int(raw.labels.max()) + 1)
        return np.eye(width, dtype=np.float32)[raw.labels]

    def encoding_of(self, targets: np.ndarray) -> str:
        """How `targets` encode labels: the declared encoding for arrays, else read from their shape."""
        source = self.source()
        task = (source.raw if source else self.raw_data()).task
        if task == "regression":
            return "values"
        if source is None:
            return self.label_encoding
        targets = np.asarray(targets)
        rank = 4 if task == "segmentation" else 2  # one-hot masks (N, H, W, classes), one-hot rows (N, classes)
        return "one_hot" if targets.ndim == rank and targets.shape[-1] > 1 else "sparse"

    def path_names(self) -> tuple[str, str]:
        """What the training and the inference path are called in reports."""
        source = self.source()
        if source is None:
            train = "preprocess_train"
        elif self.train_dataset is not None:
            train = "train_dataset"
        else:
            train = "the ImageDataGenerator" if source.kind == "generator" else "the data as given"
        return train, ("preprocess_infer" if self.preprocess_infer is not None else train)

    def fit_arguments(self, x_train, y_train, seed: int) -> dict[str, Any]:
        """The arguments of `fit`, data included: the arrays, or the object the source trains on."""
        source = self.source()
        if source is None:
            arguments = {"x": x_train, "y": y_train, **self.fit_kwargs}
            held_out = self.raw_validation_data() if self._splits_arrays() else None
            if held_out is not None:  # the split Keras would make, given as the data it holds out
                del arguments["validation_split"]
                arguments["validation_data"] = (self.train_inputs(held_out.images), self.targets(held_out))
            return arguments
        arguments = {k: v for k, v in self.fit_kwargs.items() if k != "batch_size"}
        if source.kind in ("folder", "dataset"):
            arguments["shuffle"] = False  # a dataset shuffles itself; fit warns on shuffle=True
        if self._kind("data", self.data) == "split" and "validation_data" not in arguments:
            with self._step("data"):
                arguments["validation_data"] = self._split_validation().fit_input(seed)
        with self._step("train_dataset" if self.train_dataset else "data"):
            return {"x": source.fit_input(seed), **arguments}

    def _load(self, attribute: str, data: Any, part: int | None = None) -> Source:
        if self.preprocess_train is not to_float:
            raise ValueError(
                f"Pipeline {self.name!r}: preprocess_train applies to arrays; for a {self._kind(attribute, data)} "
                "declare the training preprocessing as train_dataset=lambda ds: ds.map(...) (a folder or a "
                "tf.data.Dataset), or let the data yield model inputs"
            )
        reading = Reading(
            self.folder_image_size,
            self.batch_size,
            bool(self.fit_kwargs.get("shuffle", True)),
            self.fit_kwargs.get("steps_per_epoch"),
            None if part == 1 else self.train_dataset,  # a split's validation is read as given
        )
        with self._step(attribute):
            return load(data, reading, part)

    def folder_image_size(self) -> tuple[int, int]:
        """(height, width) at which a folder, or a dataset's images of varying size, are read:
        `image_size`, else the model's input size where `build_model` fixes it, else
        image_dataset_from_directory's default (256, 256)."""
        if self.image_size is not None:
            return self.image_size
        if "model image size" not in self._sources:
            from pipeline_checks.model.random_state import random_state_kept

            with random_state_kept():  # this build draws nothing the training run's build would draw
                self._sources["model image size"] = _input_size(self.fresh_model()) or DEFAULT_IMAGE_SIZE
        return self._sources["model image size"]

    def _read(self, attribute: str, data: Any) -> RawData:
        if self._kind(attribute, data) == "arrays":
            return _raw(self.name, attribute, data)
        if attribute == "data":
            if callable(data):
                self._sources.pop("data", None)
                self._sources.pop("split validation", None)
            return self.source().raw
        return self._load(attribute, data).raw

    def _step(self, step: str):
        from pipeline_checks.errors import pipeline_step

        return pipeline_step(self, step)

    def fresh_model(self):
        """A new model from `build_model`, checked to be a compiled Keras model."""
        try:
            model = self.build_model()
        except Exception as error:  # the user's code: name the pipeline and the step
            from pipeline_checks.errors import PipelineRunError

            raise PipelineRunError(
                f"Pipeline {self.name!r}: build_model raised {type(error).__name__}: {error}"
            ) from error
        if not hasattr(model, "fit") or not hasattr(model, "evaluate"):
            raise TypeError(
                f"Pipeline {self.name!r}: build_model must return a Keras model; received: {type(model).__name__}"
            )
        if getattr(model, "optimizer", None) is None:
            raise ValueError(
                f"Pipeline {self.name!r}: build_model returned an uncompiled model; "
                "call model.compile(optimizer=..., loss=..., metrics=['accuracy']) before returning it"
            )
        tensors = _tensors_of(model, "inputs")
        if len(tensors) > 1:
            names = ", ".join(repr(_layer_name(t)) for t in tensors[:4])
            raise ValueError(
                f"Pipeline {self.name!r}: build_model returned a model with {len(tensors)} inputs ({names}); "
                "the checks judge models with one input for now (see the docs' 'What each check needs'): check a "
                "one-input model built from the same layers"
            )
        outputs = _tensors_of(model, "outputs")
        if len(outputs) > 1 and self._kind("data", self.data) == "arrays" and not self.raw_data().outputs:
            names = ", ".join(repr(_layer_name(t)) for t in outputs[:4])
            raise ValueError(
                f"Pipeline {self.name!r}: build_model returned a model with {len(outputs)} outputs ({names}), and "
                "data gives one target array; expected targets per output, as fit takes them: (inputs, {output name: "
                "targets}) or (inputs, [targets, ...]) in the outputs' order"
            )
        return model

    def _preprocessed(self, attribute: str, images: np.ndarray) -> np.ndarray:
        # Raw images are read-only: a preprocessing step that writes in place fails loudly.
        frozen = np.array(images, copy=True)
        frozen.setflags(write=False)
        inputs = np.asarray(getattr(self, attribute)(frozen))
        if inputs.shape[:1] != images.shape[:1]:
            raise ValueError(
                f"Pipeline {self.name!r}: {attribute} must return one input per image; "
                f"received {len(images)} images and returned shape {inputs.shape}"
            )
        return inputs

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r})"


def _given_like(source: Source, raw: RawData) -> np.ndarray:
    """Labels of `raw` as the source gives them (integer or one-hot), or its values."""
    if source.label_encoding == "one_hot":
        return np.eye(source.raw.classes, dtype=np.float32)[raw.labels]
    return raw.labels


def _tensors_of(model, side: str) -> list:
    """A functional or Sequential model's `inputs` or `outputs`; [] where the model has none yet."""
    try:
        tensors = getattr(model, side, None)
    except (AttributeError, ValueError):  # a subclassed model before its first call
        return []
    if isinstance(tensors, dict):
        return list(tensors.values())
    return list(tensors) if isinstance(tensors, (list, tuple)) else []


def _layer_name(tensor) -> str:
    """The name of the layer that made (or, for an input, is) a symbolic tensor; else the tensor's own."""
    history = getattr(tensor, "_keras_history", None)
    layer = history[0] if history else None
    return getattr(layer, "name", None) or getattr(tensor, "name", "?")


def _input_size(model) -> tuple[int, int] | None:
    """The (height, width) of a model's one image input, where both are fixed; None otherwise."""
    try:
        inputs = model.inputs
        shape = tuple(inputs[0].shape) if inputs and len(inputs) == 1 else ()
    except (AttributeError, ValueError, TypeError):  # a subclassed model before its first call
        return None
    if len(shape) != 4 or not all(is_integer(v) for v in shape[1:3]):
        return None
    return int(shape[1]), int(shape[2])


def _checked_image_size(name: str, size: Any) -> tuple[int, int]:
    try:
        height, width = size
        if all(is_integer(v) and v > 0 for v in (height, width)):
            return int(height), int(width)
    except (TypeError, ValueError):
        pass
    raise ValueError(
        f"Pipeline {name!r}: image_size must be (height, width), two positive integers; received: image_size={size!r}"
    )


def _check_callable(name: str, attribute: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"Pipeline {name!r}: {attribute} must be callable; received: {attribute}={value!r}")


def _checked_fit_kwargs(name: str, fit_kwargs: Any) -> dict[str, Any]:
    if not isinstance(fit_kwargs, Mapping):
        raise TypeError(f"Pipeline {name!r}: fit_kwargs must be a mapping; received: fit_kwargs={fit_kwargs!r}")
    ours = sorted(set(fit_kwargs) & set(FIT_KWARGS_WE_SET))
    if ours:
        raise ValueError(
            f"Pipeline {name!r}: fit_kwargs must not set {', '.join(ours)}: the data comes from `data` and the "
            f"checks set verbosity and callbacks; received: fit_kwargs={dict(fit_kwargs)!r}"
        )
    split = fit_kwargs.get("validation_split", 0.0)
    if not isinstance(split, (int, float)) or isinstance(split, bool) or not 0 <= split < 1:
        raise ValueError(
            f"Pipeline {name!r}: fit_kwargs['validation_split'] must be a number in [0, 1), the share of the last "
            f"images fit holds out; received: {split!r}"
        )
    for key in ("epochs", "batch_size", "steps_per_epoch"):  # steps_per_epoch bounds each read of endless data
        value = fit_kwargs.get(key, 1)
        if key == "steps_per_epoch" and value is None:
            continue
        if not is_integer(value) or value < 1:
            raise ValueError(f"Pipeline {name!r}: fit_kwargs[{key!r}] must be a positive integer; received: {value!r}")
    return dict(fit_kwargs)


def _checked_check_options(name: str, options: Any) -> dict[str, dict[str, Any]]:
    """A copy of `options`: check family names mapped to mappings of keyword arguments."""
    from pipeline_checks.checks import (
        FAMILIES,  # names only: importing it imports no check
    )

    example = "e.g. {'overfit': {'target_accuracy': 0.9}}"
    if not isinstance(options, Mapping):
        raise TypeError(
            f"Pipeline {name!r}: check_options must be a mapping of check name -> keyword arguments, {example}; "
            f"received: check_options={options!r}"
        )
    for check, arguments in options.items():
        if check not in FAMILIES:
            raise ValueError(
                f"Pipeline {name!r}: check_options names {check!r}, which is no check; the checks are "
                f"{', '.join(FAMILIES)}; received: check_options={dict(options)!r}"
            )
        if not isinstance(arguments, Mapping) or not all(isinstance(key, str) for key in arguments):
            raise TypeError(
                f"Pipeline {name!r}: check_options[{check!r}] must be a mapping of keyword argument names to "
                f"values, {example}; received: check_options[{check!r}]={arguments!r}"
            )
        ours = sorted(set(arguments) & {"pipeline", "seed"})
        if ours:
            raise ValueError(
                f"Pipeline {name!r}: check_options[{check!r}] must not set {', '.join(ours)}: the check is run on "
                f"this pipeline, from the suite's seed; received: check_options[{check!r}]={dict(arguments)!r}"
            )
    return {check: dict(arguments) for check, arguments in options.items()}


def _raw(name: str, attribute: str, source: Any) -> RawData:
    value = source() if callable(source) else source
    if all(hasattr(value, a) for a in ("images", "labels", "class_names")):
        images, labels, class_names = value.images, value.labels, value.class_names
    elif isinstance(value, (tuple, list)) and len(value) == 2 and several_targets(value[1]):
        return _several_outputs(name, attribute, value[0], value[1])
    elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
        images, labels, class_names = value if len(value) == 3 else (*value, ())
    else:
        raise TypeError(
            f"Pipeline {name!r}: {attribute} must be (or return) a TinyImageDataset, (images, labels, class_names), "
            f"(inputs, targets), a folder of class folders, a tf.data.Dataset; received: {type(value).__name__}"
        )
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 4 and images.dtype != np.uint8 and images.dtype.kind not in NUMERIC_KINDS:
        raise ValueError(
            f"Pipeline {name!r}: {attribute} images must be a numeric array of shape (N, height, width, channels); "
            f"received: dtype {images.dtype}, shape {images.shape}"
        )
    if images.ndim < 1 or images.dtype.kind not in NUMERIC_KINDS:
        raise ValueError(
            f"Pipeline {name!r}: {attribute} inputs must be a numeric array with one row per example; "
            f"received: dtype {images.dtype}, shape {images.shape}"
        )
    row = examples_word(images)
    if len(images) == 0:
        raise ValueError(f"Pipeline {name!r}: {attribute} holds no {row}s")
    targets = len(value) == 2 if isinstance(value, (tuple, list)) else False  # (inputs, targets): no class names
    if targets and labels.dtype.kind == "f" and labels.ndim in (1, 2) and len(labels) == len(images):
        return RawData(images, labels.astype(np.float32), ())  # values to regress
    if _are_masks(labels, images):
        indices, names, _ = masks(labels, None if targets else _checked_class_names(name, attribute, class_names))
        return RawData(images, indices, names)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(images):
        expected = (
            f"{len(images)} targets, one per {row}: integer class labels (N,), or float values (N,) or (N, outputs) "
            "to regress"
            if targets
            else f"{len(images)} integers, one per {row}"
        )
        if labels.ndim >= 3 and images.ndim == 4:  # meant as masks
            expected += f", or masks {(len(images), *images.shape[1:3])} of class indices, one per pixel"
        raise ValueError(
            f"Pipeline {name!r}: {attribute} labels must be {expected}; "
            f"received: dtype {labels.dtype}, shape {labels.shape}"
        )
    if targets:
        class_names = index_names(labels)
    return RawData(images, labels, _checked_class_names(name, attribute, class_names))


def _several_outputs(name: str, attribute: str, inputs, targets) -> RawData:
    """Targets per output (a dict by output name, or a list in the model's output order), each read as
    one output's `(inputs, targets)`: class labels, values to regress or masks."""
    keyed = targets.items() if isinstance(targets, dict) else enumerate(targets)
    outputs = []
    for key, given in keyed:
        where = f"{attribute} targets[{key!r}]"
        if len(given) != len(inputs):
            raise ValueError(
                f"Pipeline {name!r}: {where} must hold one target per row of the inputs ({len(inputs)}); "
                f"received: shape {np.shape(given)}"
            )
        outputs.append((key, _raw(name, where, (inputs, given))))
    images = outputs[0][1].images
    return RawData(images, {key: raw.labels for key, raw in outputs}, (), tuple(outputs))


def _are_masks(labels: np.ndarray, images: np.ndarray) -> bool:
    """Whether integer labels are one class per pixel of each image: (N, H, W) or (N, H, W, 1)."""
    shape = labels.shape[:3] if labels.ndim == 4 and labels.shape[-1] == 1 else labels.shape
    return np.issubdtype(labels.dtype, np.integer) and len(shape) == 3 and shape == images.shape[:3]


def _checked_class_names(name: str, attribute: str, class_names: Any) -> tuple[str, ...]:
    """The class names as strings; a string is refused, as its letters would pass for names."""
    names = None
    if not isinstance(class_names, (str, bytes)) and isinstance(class_names, Iterable):
        names = tuple(str(n) for n in class_names)
    if not names:
        raise TypeError(
            f"Pipeline {name!r}: {attribute} class_names must be a list of names, one per class, e.g. "
            f"['cat', 'dog']; received: class_names={class_names!r}"
        )
    return names
