"""What a repository declares about its training pipeline, validated when it is declared."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

LABEL_ENCODINGS = ("sparse", "one_hot")
FIT_KWARGS_WE_SET = ("x", "y", "verbose", "callbacks")  # data comes from `data`; the rest from the checks


@dataclass(frozen=True)
class RawData:
    """Raw images as the pipeline reads them: uint8 (N, H, W, C), integer labels, class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)


def to_float(images) -> np.ndarray:
    """The default preprocessing: pixel values 0..255 as float32, unchanged otherwise."""
    return np.asarray(images, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Pipeline:
    """A training pipeline, small and explicit, as the checks take it.

    Args:
        name: a short name for reports and test ids, e.g. "resnet50-photos".
        build_model: returns a fresh compiled Keras model each call.
        data: the raw training data, or a function returning it: a `TinyImageDataset`, or
            `(images, labels, class_names)` with uint8 images (N, H, W, C) and integer labels.
        preprocess_train: raw uint8 images -> model inputs for `fit`. Default: float32 pixels.
        preprocess_infer: raw uint8 images -> model inputs for `evaluate`/`predict`.
            Default: `preprocess_train`.
        label_encoding: "sparse" (integer labels) or "one_hot", as `fit` receives them.
        fit_kwargs: extra arguments of `fit` (epochs, batch_size, shuffle, ...); not x, y,
            verbose or callbacks. Default: `{"epochs": 5}`.
        application: a `keras.applications` name whose `preprocess_input` conventions the
            inputs must follow (e.g. when loading that application's pretrained weights).
        validation_data: raw validation data as for `data` (e.g. another directory split),
            whose class order must match the training data's.
        after_fit: called as `after_fit(model, x_train)` after `fit`, for steps the
            pipeline runs before deployment, e.g. `pipeline_checks.recalibrate_batchnorm`.
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

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Pipeline name must be a non-empty string; received: name={self.name!r}")
        for attribute in ("build_model", "preprocess_train"):
            _check_callable(self.name, attribute, getattr(self, attribute))
        for attribute in ("preprocess_infer", "after_fit"):
            if getattr(self, attribute) is not None:
                _check_callable(self.name, attribute, getattr(self, attribute))
        if self.preprocess_infer is None:
            object.__setattr__(self, "preprocess_infer", self.preprocess_train)
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
        """The training data, read and checked."""
        return _raw(self.name, "data", self.data)

    def raw_validation_data(self) -> RawData | None:
        return None if self.validation_data is None else _raw(self.name, "validation_data", self.validation_data)

    def train_inputs(self, images: np.ndarray) -> np.ndarray:
        return self._preprocessed("preprocess_train", images)

    def infer_inputs(self, images: np.ndarray) -> np.ndarray:
        return self._preprocessed("preprocess_infer", images)

    def targets(self, raw: RawData) -> np.ndarray:
        """Labels as `fit` receives them; out-of-range labels are left for the labels check."""
        if self.label_encoding == "sparse":
            return raw.labels.astype(np.int32)
        width = max(raw.classes, int(raw.labels.max()) + 1)
        return np.eye(width, dtype=np.float32)[raw.labels]

    def fresh_model(self):
        """A new model from `build_model`, checked to be a compiled Keras model."""
        try:
            model = self.build_model()
        except Exception as error:  # the user's code: name the pipeline and the step
            from pipeline_checks.errors import PipelineRunError

            raise PipelineRunError(f"Pipeline {self.name!r}: build_model raised {type(error).__name__}: {error}") from error
        if not hasattr(model, "fit") or not hasattr(model, "evaluate"):
            raise TypeError(f"Pipeline {self.name!r}: build_model must return a Keras model; received: {type(model).__name__}")
        if getattr(model, "optimizer", None) is None:
            raise ValueError(
                f"Pipeline {self.name!r}: build_model returned an uncompiled model; "
                "call model.compile(optimizer=..., loss=..., metrics=['accuracy']) before returning it"
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
    for key in ("epochs", "batch_size"):
        value = fit_kwargs.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Pipeline {name!r}: fit_kwargs[{key!r}] must be a positive integer; received: {value!r}")
    return dict(fit_kwargs)


def _checked_check_options(name: str, options: Any) -> dict[str, dict[str, Any]]:
    """A copy of `options`: check family names mapped to mappings of keyword arguments."""
    from pipeline_checks.checks import FAMILIES  # names only: importing it imports no check

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
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        images, labels, class_names = value
    else:
        raise TypeError(
            f"Pipeline {name!r}: {attribute} must be (or return) a TinyImageDataset or "
            f"(images, labels, class_names); received: {type(value).__name__}"
        )
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"Pipeline {name!r}: {attribute} images must be uint8 of shape (N, height, width, channels); "
            f"received: dtype {images.dtype}, shape {images.shape}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(images):
        raise ValueError(
            f"Pipeline {name!r}: {attribute} labels must be {len(images)} integers, one per image; "
            f"received: dtype {labels.dtype}, shape {labels.shape}"
        )
    if len(images) == 0:
        raise ValueError(f"Pipeline {name!r}: {attribute} holds no images")
    names = tuple(str(n) for n in class_names)
    return RawData(images, labels, names)
