"""`diagnose_saved_model`: the agreement oracle on a saved model and its class-folder images.

The tool the first report's author needed: load a saved model and the images it was
trained on (one folder per class), measure train-mode, evaluate, predict and recalibrated,
recalibrate BatchNorm, measure again, say what the gaps mean, and optionally write the
recalibrated model. fit cannot be measured (a saved model keeps no training history);
train-mode, the same weights with batch statistics, is what fit's last step saw.

The command line, `pipeline-checks diagnose MODEL.keras IMAGES_DIR`, is in
`pipeline_checks/cli/diagnose.py`; safe loading is in `loading.py`. Nothing heavy is
imported until `diagnose_saved_model` is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline_checks import _imports
from pipeline_checks._text import listed, shortened
from pipeline_checks._validation import is_integer
from pipeline_checks.errors import DiagnoseError
from pipeline_checks.model.losses import loss_facts
from pipeline_checks.saved_model.loading import load_saved_model

BASIC_PREPROCESSING = {"none": "none (float32 pixels 0..255)", "rescale": "rescale (pixels / 255, in 0..1)"}
SHOWN = 5  # class names and skipped files listed before "and N more"
FUNCTION_FORM = "package.module:function"
CALLED_WITH = "one float32 batch of decoded images (N, height, width, channels) of pixels 0..255"
CALLED_ON = "called on float32 pixels 0..255"
FIT_NOT_MEASURED = (
    "fit is not measured: a saved model keeps no training history; train-mode (the same "
    "weights, normalized with batch statistics) is what fit's last step saw."
)


@dataclass(frozen=True)
class SavedModelDiagnosis:
    """What `diagnose_saved_model` measured, changed and wrote; `print()` it for the report.

    Attributes:
        before: the `Agreement` of the model as loaded (its recalibrated row restored after).
        recalibration: what recalibration changed in the model (kept, not restored).
        after: the `Agreement` of the recalibrated model.
        written: where the recalibrated model was saved, or None.
        notes: what the reader must know about how it was measured.
    """

    model_path: Path
    model_summary: str
    images: Any
    preprocessing: str
    labels: str
    batch_size: int
    notes: tuple[str, ...]
    before: Any
    recalibration: Any
    after: Any
    written: Path | None

    @property
    def agrees(self) -> bool:
        """True when the modes agree after recalibration (or agreed already)."""
        return self.after.agrees

    def summary(self) -> str:
        metrics = ", ".join(
            f"{m} {self.before.values['evaluate'][m]:.4f} before recalibration, "
            f"{self.after.values['evaluate'][m]:.4f} after"
            for m in self.after.gated
        )
        if self.agrees:
            verdict = "the modes agree" if self.before.agrees else "recalibration resolves the disagreement"
        else:
            verdict = "a disagreement remains after recalibration: see the diagnosis above"
        return f"Result: evaluate {metrics}: {verdict}."

    def __str__(self) -> str:
        folders = self.images
        names = listed([f"{n} ({len(files)})" for n, files in zip(folders.class_names, folders.listing.files)], SHOWN)
        channels = {1: "grayscale", 3: "RGB"}[folders.images.shape[3]]
        one_batch = " (all images in one batch)" if self.batch_size >= len(folders) else ""
        lines = [
            f"Model:          {self.model_summary}",
            (
                f"Images:         {len(folders)} images in {len(folders.class_names)} class folders of "
                f"{folders.listing.root}: {names}; read as {folders.images.shape[1]}x{folders.images.shape[2]} "
                f"{channels}"
            ),
        ]
        skipped = folders.listing.skipped
        if skipped:
            shown = listed([f"{p.relative_to(folders.listing.root)} ({why})" for p, why in skipped], SHOWN)
            lines.append(f"Skipped:        {shown}")
        lines += [
            f"Preprocessing:  {self.preprocessing}",
            f"Labels:         {self.labels}",
            f"Batch size:     {self.batch_size}{one_batch}, for train-mode and recalibration",
            *(f"Note:           {note}" for note in self.notes),
            "",
            "Before recalibration:",
            str(self.before),
            "",
            f"After pipeline_checks.recalibrate_batchnorm(model, x, batch_size={self.batch_size}):",
            str(self.recalibration),
            "",
            str(self.after),
            "",
            self.summary(),
        ]
        if self.written is not None:
            lines.append(
                f"Wrote the recalibrated model to {self.written}; only BatchNormalization moving "
                f"statistics differ from {self.model_path}, which is unchanged."
            )
        elif self.agrees and not self.before.agrees:
            lines.append("Save the recalibrated model with --write-recalibrated OUT.keras.")
        return "\n".join(lines)


def diagnose_saved_model(
    model_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    preprocess: str | Callable[[Any], Any] = "none",
    batch_size: int | None = None,
    write_recalibrated: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    image_size: tuple[int, int] | None = None,
) -> SavedModelDiagnosis:
    """Measure a saved model's modes on its images, recalibrate BatchNorm, measure again.

    The file at `model_path` is only read. Its compiled loss and metrics are measured; an
    uncompiled model is compiled with sparse categorical cross-entropy and accuracy.

    Args:
        model_path: a `.keras` (or legacy `.h5`) file, loaded with `safe_mode=True`.
        images_dir: one sub-folder of images per class; sorted folder names give the label
            indices, as `keras.utils.image_dataset_from_directory` assigns them.
        preprocess: "none" (float32 pixels 0..255), "rescale" (/255), an application
            name such as "ResNet50" (its `preprocess_input`), or the project's own function
            as "package.module:function" (imported with the current directory on `sys.path`)
            or a callable: what the model was trained on. A function is called once with
            a float32 batch (N, height, width, channels) of pixels 0..255 and returns the
            model's inputs (a NumPy array or a tensor).
        batch_size: fit's batch size (batch statistics depend on it); default: all images.
        write_recalibrated: save the recalibrated model to this `.keras` path.
        force: overwrite an existing `write_recalibrated` file.
        progress: called with a line of text at each stage; None is silent.
        image_size: `(height, width)` to read the images at; required when the model's
            input has no fixed size (`keras.Input((None, None, 3))`). Default: the model's.

    Returns:
        A `SavedModelDiagnosis`; `.agrees` tells whether the modes agree after recalibration.

    Raises:
        FileNotFoundError, DiagnoseError, ImageFolderError: with the path at fault.

    Example:
        >>> result = diagnose_saved_model("model.keras", "images", preprocess="ResNet50")
        >>> print(result)
    """
    from pipeline_checks.saved_model.image_folders import (
        list_image_folders,
        read_image_folders,
    )

    say = progress or (lambda line: None)
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"No model file at {model_path}")
    out = _checked_output(model_path, write_recalibrated, force)
    preprocess = resolve_preprocessing(preprocess)
    # Imported before the model loads, so a misspelt module or function fails at once.
    custom_preprocessing = user_preprocessing(preprocess)
    image_size = _checked_image_size(image_size)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise DiagnoseError(f"batch_size must be a positive integer; received: {batch_size!r}")
    listing = list_image_folders(images_dir)
    say(f"Loading {model_path}...")
    model = load_saved_model(model_path)
    height, width, channels = image_input(model)
    size = read_size(model, (height, width), image_size)
    check_output_width(model, listing)
    say(f"Reading {listing.count} images from {listing.root} at {size[0]}x{size[1]}...")
    folders = read_image_folders(listing, size, channels, progress=progress)

    notes = [FIT_NOT_MEASURED]
    compiled_here = not getattr(model, "compiled", True) or getattr(model, "optimizer", None) is None
    if compiled_here:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        notes.append(
            "the model was saved uncompiled; compiled here with sparse_categorical_crossentropy "
            "and accuracy to measure it (the written model stays uncompiled)."
        )
    from pipeline_checks.model import compat

    steps_unknown = compiled_here or not compat.training_steps(model)
    if steps_unknown and not compiled_here:
        notes.append(
            "the saved optimizer has taken no steps (saved before fit, or without optimizer "
            "state), so how many BatchNormalization updates the model saw is unknown."
        )
    compiled = loss_facts(model.loss)
    loss, one_hot = compiled.name, compiled.kind == "one_hot"
    targets = folders.one_hot_labels if one_hot else folders.labels
    labels = f"{'one-hot' if one_hot else 'integer'}, for the compiled loss {loss}"
    preprocess_input, preprocessing = custom_preprocessing or preprocessing_function(preprocess, channels)
    inputs = preprocess_input(folders.images)
    check_model_inputs(model, inputs, len(folders), preprocessing)
    batch_size = batch_size or len(folders)
    if progress is not None and batch_size > 256:
        say(f"Measuring with one batch of {batch_size} images; pass --batch-size (fit's) if memory runs short.")

    from pipeline_checks.batchnorm.recalibration import recalibrate_batchnorm
    from pipeline_checks.oracle.agreement import measure_agreement

    say("Measuring train-mode, evaluate, predict and recalibrated (tracing takes a while)...")
    before = measure_agreement(model, (inputs, targets), batch_size=batch_size, recalibrate=True)
    say("Recalibrating BatchNormalization and measuring again...")
    recalibration = recalibrate_batchnorm(model, inputs, batch_size=batch_size)
    after = measure_agreement(model, (inputs, targets), batch_size=batch_size, recalibrate=False)
    if steps_unknown:
        before, after = _without_step_count(before), _without_step_count(after)
    if out is not None:
        say(f"Writing {out}...")
        _save(model if not compiled_here else _uncompiled_copy(model_path, model), out)
    return SavedModelDiagnosis(
        model_path,
        _model_summary(model_path, model, channels),
        folders,
        preprocessing,
        labels,
        batch_size,
        tuple(notes),
        before,
        recalibration,
        after,
        out,
    )


def image_input(model) -> tuple[int | None, int | None, int]:
    """`(height, width, channels)` of the model's one image input, or a DiagnoseError saying why not.

    Height and width are None where the model takes any size (`keras.Input((None, None, 3))`).
    """
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        raise DiagnoseError(f"model {model.name!r} has {len(inputs)} inputs; diagnose feeds it one batch of images")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise DiagnoseError(
            f"model {model.name!r} takes inputs of shape {shape}, not images: expected rank 4 "
            f"(batch, height, width, channels), received rank {len(shape)}"
        )
    height, width, channels = shape[1:]
    if channels not in (1, 3):
        raise DiagnoseError(
            f"model {model.name!r} takes inputs of shape {shape}; expected channels last, 1 (grayscale) or 3 (RGB)"
        )
    return _dimension(height), _dimension(width), int(channels)


def read_size(model, model_size: tuple[int | None, int | None], image_size: tuple[int, int] | None) -> tuple[int, int]:
    """`(height, width)` to read the images at: `image_size` where given, else the model's fixed size."""
    shape = tuple(model.inputs[0].shape)
    if image_size is None:
        if None in model_size:
            free = " and ".join(n for n, v in zip(("height", "width"), model_size) if v is None)
            raise DiagnoseError(
                f"model {model.name!r} takes images of shape {shape}, with no fixed {free}; pass the size it "
                "was trained at: --image-size HEIGHT,WIDTH (image_size=(height, width) from Python)"
            )
        return model_size
    if any(fixed is not None and fixed != given for fixed, given in zip(model_size, image_size)):
        model_text = "x".join("any" if v is None else str(v) for v in model_size)
        raise DiagnoseError(
            f"image size {image_size[0]}x{image_size[1]} does not match the input size {model_text} of model "
            f"{model.name!r} (shape {shape}); omit --image-size to read the images at the model's size; "
            f"received: image_size={image_size}"
        )
    return image_size


def check_output_width(model, listing) -> None:
    """The model must output one score per class folder."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise DiagnoseError(
            f"model {model.name!r} has outputs {shapes}; diagnose needs one output of shape (batch, classes)"
        )
    width, classes = outputs[0].shape[-1], len(listing.class_names)
    if width != classes:
        raise DiagnoseError(
            f"model {model.name!r} outputs {width} classes but {listing.root} has {classes} class folders "
            f"({listed(listing.class_names, SHOWN)}); there must be one folder per output, in sorted order"
        )


def resolve_preprocessing(name: str | Callable[[Any], Any]) -> str | Callable[[Any], Any]:
    """ "none", "rescale", the canonical application name, a well-formed "package.module:function"
    (not imported yet), or the callable itself; DiagnoseError otherwise. Imports nothing heavy."""
    from pipeline_checks.model.applications import (
        known_applications,
        resolve_application_name,
    )

    if callable(name):
        return name
    if isinstance(name, str) and name.lower() in BASIC_PREPROCESSING:
        return name.lower()
    if isinstance(name, str) and ":" in name:
        return _checked_function_spec(name)
    try:
        return resolve_application_name(name)
    except ValueError:
        pass
    dotted = isinstance(name, str) and "." in name and all(part.isidentifier() for part in name.split("."))
    hint = (
        f"; to name a function, put a colon before it: {name.rpartition('.')[0]}:{name.rpartition('.')[2]}"
        if dotted
        else ""
    )
    raise DiagnoseError(
        f"Unknown preprocessing {name!r}; expected none, rescale, or an application name "
        f"({', '.join(known_applications())}), or a function as {FUNCTION_FORM}{hint}"
    )


def user_preprocessing(preprocess: str | Callable[[Any], Any]) -> tuple[Callable[[Any], Any], str] | None:
    """For a "package.module:function" or a callable: the checked function and its description.

    None for the built-in preprocessings. The function is imported here, with the current
    directory on `sys.path` as `python -m` puts it.
    """
    if callable(preprocess):
        name = _callable_name(preprocess)
        return _checked_preprocessing(preprocess, name), f"{name} (a callable), {CALLED_ON}"
    if isinstance(preprocess, str) and ":" in preprocess:
        function, source = import_preprocessing(preprocess)
        return _checked_preprocessing(function, preprocess), f"{preprocess} from {source}, {CALLED_ON}"
    return None


def import_preprocessing(spec: str) -> tuple[Callable[[Any], Any], str]:
    """The function "package.module:function" names, and the file it comes from.

    Imported by the package's one importer (`pipeline_checks._imports`): the current directory is
    on `sys.path` while importing. Raises DiagnoseError, never the import's traceback.
    """
    _checked_function_spec(spec)
    try:
        function, module = _imports.import_named(spec, "preprocessing", _imports.current_directory())
    except _imports.NotImportable as error:
        raise DiagnoseError(str(error)) from None
    if not callable(function):
        raise DiagnoseError(
            f"preprocessing {spec!r} is not callable; expected a function that takes {CALLED_WITH} and "
            f"returns the model's inputs; received: {spec.partition(':')[2]}={_short_repr(function)} of type "
            f"{type(function).__name__}"
        )
    return function, _source_file(module)


def preprocessing_function(name: str | Callable[[Any], Any], channels: int = 3) -> tuple[Callable[[Any], Any], str]:
    """The function that turns uint8 images into model inputs, and its description."""
    import numpy as np

    from pipeline_checks.model.applications import APPLICATIONS, preprocess_input_for

    name = resolve_preprocessing(name)
    custom = user_preprocessing(name)
    if custom is not None:
        return custom
    if name == "none":
        return (lambda images: np.asarray(images, dtype="float32")), BASIC_PREPROCESSING[name]
    if name == "rescale":
        return (lambda images: np.asarray(images, dtype="float32") / 255.0), BASIC_PREPROCESSING[name]
    application = preprocess_input_for(name, channels)
    return (
        lambda images: np.asarray(application(np.array(images, dtype="float32")), dtype="float32"),
        f"{name}'s preprocess_input (mode {APPLICATIONS[name].preprocessing!r})",
    )


def check_model_inputs(model, inputs, count: int, preprocessing: str) -> None:
    """The preprocessed batch must fit the model's one input: one row per image, its fixed sizes."""
    expected = tuple(model.inputs[0].shape)
    shape = tuple(getattr(inputs, "shape", ()))
    fits = (
        len(shape) == len(expected)
        and shape[0] == count
        and all(e is None or e == s for e, s in zip(expected[1:], shape[1:]))
    )
    if not fits:
        raise DiagnoseError(
            f"the preprocessed inputs have shape {shape} for {count} images, but model {model.name!r} takes "
            f"{expected}: the preprocessing must return one row per image, at the model's input size; "
            f"received: preprocessing={preprocessing}"
        )


def _checked_function_spec(spec: str) -> str:
    try:
        return _imports.checked_name(spec, "preprocessing", FUNCTION_FORM, "mypackage.preprocessing:preprocess")
    except _imports.NotImportable as error:
        raise DiagnoseError(str(error)) from None


def _callable_name(function) -> str:
    module = getattr(function, "__module__", None) or "?"
    return f"{module}:{getattr(function, '__qualname__', None) or type(function).__name__}"


def _checked_preprocessing(function: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    """`function`, called on a float32 batch, its result converted with np.asarray; DiagnoseError naming it
    if it fails."""
    import numpy as np

    def preprocess(images):
        batch = np.asarray(images, dtype="float32")
        try:
            with _imports.on_path(_imports.current_directory().values()):
                result = function(batch)
        except Exception as error:  # noqa: BLE001 - the user's function: name it and what it raised
            raise DiagnoseError(
                f"preprocessing function {name} raised {_error_text(error)}; it was called with {CALLED_WITH}, "
                f"of shape {batch.shape}"
            ) from None
        return _one_input(result, name, batch.shape)

    return preprocess


def _one_input(result, name: str, batch_shape: tuple[int, ...]):
    """The one numeric array a preprocessing function returned (a one-item list unwrapped)."""
    import numpy as np

    if isinstance(result, (list, tuple)):
        if len(result) != 1:
            raise DiagnoseError(
                f"preprocessing function {name} returned a {type(result).__name__} of {len(result)} values for a "
                f"batch of shape {batch_shape}; the model takes one input: return one array of model inputs"
            )
        result = result[0]
    if isinstance(result, dict) or result is None:
        raise DiagnoseError(
            f"preprocessing function {name} returned {_short_repr(result)}; the model takes one input: "
            "return one array of model inputs"
        )
    try:
        inputs = np.asarray(result)
    except Exception as error:  # noqa: BLE001 - whatever the user's function returned
        raise DiagnoseError(
            f"preprocessing function {name} returned a {type(result).__name__} that np.asarray cannot "
            f"convert: {_error_text(error)}"
        ) from None
    if inputs.dtype.kind not in "biuf":
        raise DiagnoseError(
            f"preprocessing function {name} returned {inputs.dtype} values of shape {inputs.shape}; "
            "expected one numeric array of model inputs"
        )
    return inputs


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _short_repr(value) -> str:
    return shortened(repr(value), 60)


def _source_file(module) -> str:
    """The module's file, relative to the current directory when inside it: which copy was imported."""
    path = getattr(module, "__file__", None)
    if not path:
        return f"module {module.__name__!r}"
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd().resolve())) if path.is_relative_to(Path.cwd().resolve()) else str(path)


def _dimension(value) -> int | None:
    return None if value is None else int(value)


def _checked_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    valid = (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(is_integer(v) and v >= 1 for v in image_size)
    )
    if not valid:
        raise DiagnoseError(
            f"image_size must be (height, width), two positive integers; received: image_size={image_size!r}"
        )
    return int(image_size[0]), int(image_size[1])


def _checked_output(model_path: Path, out, force: bool) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    if out.suffix != ".keras":
        raise DiagnoseError(f"--write-recalibrated must name a .keras file; received: {out}")
    if out.resolve() == model_path.resolve() or (out.exists() and os.path.samefile(out, model_path)):
        raise DiagnoseError(
            f"--write-recalibrated {out} is the input model; diagnose never overwrites it: name another file"
        )
    if out.is_dir():
        raise DiagnoseError(f"--write-recalibrated {out} is a folder; name a .keras file")
    if out.exists() and not force:
        raise DiagnoseError(f"--write-recalibrated {out} exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise DiagnoseError(f"--write-recalibrated {out}: folder {out.parent} does not exist")
    return out


def _save(model, out: Path) -> None:
    # Write beside the target, then rename: an interrupted save never leaves half a model at OUT.
    partial = out.with_name(f".{out.stem}.partial-{os.getpid()}.keras")
    try:
        model.save(partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _uncompiled_copy(model_path: Path, recalibrated):
    """The model as saved (uncompiled), carrying the recalibrated statistics."""
    copy = load_saved_model(model_path)
    copy.set_weights(recalibrated.get_weights())
    return copy


def _without_step_count(agreement):
    """The agreement re-diagnosed without the optimizer's step count, which says nothing here."""
    from pipeline_checks.oracle.agreement import PREDICT_TOLERANCE
    from pipeline_checks.oracle.findings import findings_of

    facts = replace(agreement.batchnorm, updates_seen=None)
    findings = findings_of(
        agreement.values,
        agreement.gated,
        agreement.tolerance,
        PREDICT_TOLERANCE,
        agreement.samples,
        facts,
        agreement.training_only_layers,
        agreement.recalibration,
    )
    return replace(agreement, batchnorm=facts, findings=tuple(findings))


def _model_summary(path: Path, model, channels: int) -> str:
    from pipeline_checks.model.layers import find_batchnorm

    shape = tuple(model.inputs[0].shape)
    _, height, width, _ = shape
    size = f"{height}x{width}x{channels}" if None not in (height, width) else f"of any size {shape}"
    count = len(find_batchnorm(model))
    return (
        f"{path}: {model.name!r}, input {size}, {model.outputs[0].shape[-1]} outputs, {count} BatchNormalization layers"
    )
