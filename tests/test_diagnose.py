"""`pipeline-checks diagnose MODEL.keras IMAGES_DIR`: the first report's model fixed end to end,
and every bad input refused with exit status 2 and a message that names the path at fault."""

import argparse
import os
import shutil
import sys
import textwrap

import numpy as np
import pytest

from pipeline_checks.cli.diagnose import add_arguments, main, run
from pipeline_checks.errors import DiagnoseError
from pipeline_checks.model import compat
from pipeline_checks.saved_model.diagnose import (
    diagnose_saved_model,
    preprocessing_function,
)
from pipeline_checks.saved_model.image_folders import read_image_folders
from pipeline_checks.testing.datasets import make_tiny_images
from pipeline_checks.testing.small_models import small_bn_cnn


def exit_status(argv):
    try:
        return main([os.fspath(arg) for arg in argv])
    except SystemExit as exit_:  # argparse's own errors
        return exit_.code


@pytest.fixture(scope="module")
def first_report_files(first_report_run, tmp_path_factory):
    """The first report's trained ResNet50 saved as .keras, and its three photographs as class folders."""
    root = tmp_path_factory.mktemp("first_report")
    report = first_report_run
    assert report.evaluate_accuracy < 0.34, "the scenario no longer reproduces the report"
    report.model.save(root / "model.keras")
    report.data.to_directory(root / "images")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Six 8x8 pattern images in three class folders, a compiled small BN CNN, the same taking
    images of any size, and a non-image model."""
    keras = compat.keras()
    root = tmp_path_factory.mktemp("tiny")
    make_tiny_images(classes=3, per_class=2, size=8, seed=0).to_directory(root / "images")
    compat.set_random_seed(0)
    model = small_bn_cnn((8, 8, 3), classes=3, blocks=1, name="tiny_cnn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(root / "model.keras")
    any_size = keras.Input((None, None, 3))
    features = keras.layers.ReLU()(
        keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, padding="same")(any_size))
    )
    scores = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    keras.Model(any_size, scores, name="any_size_cnn").save(root / "any_size.keras")
    inputs = keras.Input(shape=(4,))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="tabular").save(
        root / "tabular.keras"
    )
    (root / "notes.txt").write_text("not a model\n")
    return root


@pytest.mark.slow
def test_fixes_the_first_reports_model(first_report_files, first_report_run, tmp_path, capsys):
    model, images, out = first_report_files / "model.keras", first_report_files / "images", tmp_path / "fixed.keras"
    original = model.read_bytes()

    assert exit_status([model, images, "--preprocess", "resnet50", "--write-recalibrated", out]) == 0

    printed = capsys.readouterr().out
    print(printed)  # shown by pytest -rA and on failure: the report a user sees
    assert "Images:         3 images in 3 class folders" in printed
    assert "Labels:         one-hot, for the compiled loss categorical_crossentropy" in printed
    assert "fit is not measured" in printed
    before, after = printed.split("After pipeline_checks.recalibrate_batchnorm(model, x, batch_size=3):")
    assert "Modes disagree on the same 3 samples" in before
    updates = len(first_report_run.history.history["loss"])  # one batch per epoch, until fit said 100%
    assert (
        f"Cause: stale BatchNormalization moving statistics: 53 BatchNormalization layers, momentum 0.99; {updates} "
        "updates seen" in before
    )
    assert _row(before, "evaluate") == pytest.approx(0.3333, abs=1e-4)
    assert _row(before, "recalibrated") == 1.0
    assert "Recalibrated 53 BatchNormalization layers on 3 samples in 1 batches." in after
    assert _row(after, "evaluate") == 1.0
    assert "All modes agree." in after
    assert (
        "Result: evaluate accuracy 0.3333 before recalibration, 1.0000 after: recalibration resolves the disagreement."
        in after
    )

    assert model.read_bytes() == original
    keras = compat.keras()
    fixed, loaded = keras.saving.load_model(out), keras.saving.load_model(model)
    folders = read_image_folders(images, (32, 32), 3)
    preprocess, _ = preprocessing_function("ResNet50")
    results = fixed.evaluate(
        preprocess(folders.images), folders.one_hot_labels, batch_size=3, verbose=0, return_dict=True
    )
    assert results["accuracy"] == 1.0
    changed = {
        compat.variable_path(a).rsplit("/", 1)[-1].split(":")[0]  # Keras 2 names end in ":0"
        for a, b in zip(loaded.variables, fixed.variables)
        if not np.array_equal(compat.to_numpy(a), compat.to_numpy(b))
    }
    assert changed == {"moving_mean", "moving_variance"}


def flips_in_training_class():
    """A layer that negates its inputs in training mode: a gap no BatchNorm statistics explain."""
    keras = compat.keras()

    @keras.saving.register_keras_serializable(package="test_diagnose")
    class FlipsInTraining(keras.layers.Layer):
        def call(self, inputs, training=None):
            return -inputs if training else inputs

    return FlipsInTraining


def test_a_disagreement_that_recalibration_cannot_close_exits_1(tiny, tmp_path, capsys):
    keras = compat.keras()
    compat.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(8, 3, padding="same"),
            keras.layers.BatchNormalization(),
            flips_in_training_class()(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="flips_cnn",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = make_tiny_images(classes=3, per_class=2, size=8, seed=0)
    model.fit(data.images / 255.0, data.labels, epochs=30, batch_size=6, verbose=0)
    model.save(tmp_path / "flips.keras")

    assert exit_status([tmp_path / "flips.keras", tiny / "images", "--preprocess", "rescale"]) == 1

    printed = capsys.readouterr().out
    assert "Cause unknown" in printed.split("After pipeline_checks.recalibrate_batchnorm")[1]
    assert "a disagreement remains after recalibration" in printed


def test_an_uncompiled_model_is_compiled_here_and_written_uncompiled(tiny, tmp_path, capsys):
    compat.set_random_seed(0)
    small_bn_cnn((8, 8, 3), classes=3, blocks=1, name="uncompiled_cnn").save(tmp_path / "model.keras")
    images = tmp_path / "images"
    shutil.copytree(tiny / "images", images)
    (images / "patterns_00" / "notes.txt").write_text("taken on Tuesday")
    (images / "patterns_01" / ".DS_Store").write_bytes(b"\0")

    status = exit_status(
        [tmp_path / "model.keras", images, "--preprocess", "rescale", "--write-recalibrated", tmp_path / "out.keras"]
    )

    printed = capsys.readouterr().out
    assert status == 0
    assert "compiled here with sparse_categorical_crossentropy and accuracy" in printed
    assert "Labels:         integer, for the compiled loss sparse_categorical_crossentropy" in printed
    assert (
        "Skipped:        patterns_00/notes.txt (not an image extension), patterns_01/.DS_Store (hidden file)" in printed
    )
    assert "6 images in 3 class folders" in printed
    assert "updates seen" not in printed, "an uncompiled model's optimizer step count means nothing"
    assert getattr(compat.keras().saving.load_model(tmp_path / "out.keras"), "optimizer", None) is None


def test_plugs_into_a_subcommand_parser(tiny):
    parser = argparse.ArgumentParser(prog="pipeline-checks")
    add_arguments(parser.add_subparsers(dest="command").add_parser("diagnose"))
    args = parser.parse_args(
        ["diagnose", str(tiny / "model.keras"), str(tiny / "images"), "--preprocess", "mobilenetv2"]
    )
    assert (args.command, args.preprocess, args.batch_size, args.write_recalibrated, args.force) == (
        "diagnose",
        "MobileNetV2",
        None,
        None,
        False,
    )
    args.images = tiny / "missing"
    assert run(args) == 2


def _copy_images(tiny, tmp):
    shutil.copytree(tiny / "images", tmp / "images")
    return tmp / "images"


def _without_class(tiny, tmp):
    shutil.rmtree(_copy_images(tiny, tmp) / "patterns_02")
    return tmp / "images"


def _corrupt_image(tiny, tmp):
    (_copy_images(tiny, tmp) / "patterns_01" / "broken.png").write_bytes(b"this is not a PNG")
    return tmp / "images"


def _only_notes(tiny, tmp):
    folder = _copy_images(tiny, tmp) / "patterns_02"
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "notes.txt").write_text("the photos are on my laptop")
    return tmp / "images"


def _empty_class(tiny, tmp):
    folder = _copy_images(tiny, tmp) / "patterns_02"
    shutil.rmtree(folder)
    folder.mkdir()
    return tmp / "images"


def _no_class_folders(tiny, tmp):
    (tmp / "flat").mkdir()
    shutil.copy(tiny / "images" / "patterns_00" / "img_0000.png", tmp / "flat")
    return tmp / "flat"


def _lambda_model(tiny, tmp):
    # Keras 2.12 writes this .keras as HDF5, whose loader ignores safe_mode unless diagnose enforces it.
    keras = compat.keras()
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(tmp / "lambda.keras")


def _existing_out(tiny, tmp):
    (tmp / "out.keras").write_bytes(b"an earlier result")
    return tmp / "out.keras"


MODEL, IMAGES = "{tiny}/model.keras", "{tiny}/images"
BAD_INPUTS = {
    "missing-model": (["{tmp}/nope.keras", IMAGES], "No model file at {tmp}/nope.keras"),
    "missing-images-dir": ([MODEL, "{tmp}/nope"], "No image folder at {tmp}/nope"),
    "model-is-text-named-keras": (
        ["{tmp}/model.keras", IMAGES],
        "{tmp}/model.keras is not a Keras model: a .keras file is a zip archive",
    ),
    "model-is-a-text-file": (
        ["{tiny}/notes.txt", IMAGES],
        "{tiny}/notes.txt could not be loaded as a Keras model: File format not supported",
    ),
    "model-with-a-python-lambda": (
        ["{tmp}/lambda.keras", IMAGES],
        "{tmp}/lambda.keras could not be loaded as a Keras model: Requested the deserialization of a",
    ),
    "model-input-not-images": (
        ["{tiny}/tabular.keras", IMAGES],
        "'tabular' takes inputs of shape (None, 4), not images: expected rank 4",
    ),
    "fewer-class-folders-than-outputs": (
        [MODEL, "{tmp}/images"],
        "outputs 3 classes but {tmp}/images has 2 class folders (patterns_00, patterns_01)",
    ),
    "corrupt-image": ([MODEL, "{tmp}/images"], "cannot decode image {tmp}/images/patterns_01/broken.png"),
    "class-folder-with-only-a-text-file": (
        [MODEL, "{tmp}/images"],
        (
            "class folder {tmp}/images/patterns_02 has no images (extensions .bmp, .gif, .jpeg, .jpg, .png); "
            "it holds patterns_02/notes.txt"
        ),
    ),
    "empty-class-folder": ([MODEL, "{tmp}/images"], "class folder {tmp}/images/patterns_02 has no images"),
    "no-class-folders": ([MODEL, "{tmp}/flat"], "{tmp}/flat has no class folders"),
    "out-is-model": (
        [MODEL, IMAGES, "--write-recalibrated", MODEL],
        "--write-recalibrated {tiny}/model.keras is the input model",
    ),
    "out-is-model-spelled-otherwise": (
        [MODEL, IMAGES, "--write-recalibrated", "{tiny}/images/../model.keras"],
        "is the input model; diagnose never overwrites it",
    ),
    "out-exists-without-force": (
        [MODEL, IMAGES, "--write-recalibrated", "{tmp}/out.keras"],
        "{tmp}/out.keras exists; pass --force",
    ),
    "out-not-keras": (
        [MODEL, IMAGES, "--write-recalibrated", "{tmp}/out.h5"],
        "must name a .keras file; received: {tmp}/out.h5",
    ),
    "unknown-preprocessing": (
        [MODEL, IMAGES, "--preprocess", "vgg17"],
        "Unknown preprocessing 'vgg17'; expected none, rescale, or",
    ),
    "zero-batch-size": ([MODEL, IMAGES, "--batch-size", "0"], "--batch-size: must be a positive integer; received: 0"),
    "any-size-model-without-image-size": (
        ["{tiny}/any_size.keras", IMAGES],
        (
            "model 'any_size_cnn' takes images of shape (None, None, None, 3), with no fixed height and width; "
            "pass the size it was trained at: --image-size HEIGHT,WIDTH"
        ),
    ),
    "image-size-differs-from-the-models": (
        [MODEL, IMAGES, "--image-size", "40x56"],
        "image size 40x56 does not match the input size 8x8 of model 'tiny_cnn' (shape (None, 8, 8, 3))",
    ),
    "image-size-one-number": (
        [MODEL, IMAGES, "--image-size", "40"],
        "--image-size: must be HEIGHT,WIDTH or HEIGHTxWIDTH",
    ),
    "function-without-colon": (
        [MODEL, IMAGES, "--preprocess", "mypackage.preprocessing.preprocess"],
        "to name a function, put a colon before it: mypackage.preprocessing:preprocess",
    ),
    "function-name-malformed": (
        [MODEL, IMAGES, "--preprocess", "mypackage:"],
        "'mypackage:' is not a function name; expected package.module:function",
    ),
}
SETUP = {
    "model-is-text-named-keras": lambda tiny, tmp: (tmp / "model.keras").write_text("not a zip"),
    "model-with-a-python-lambda": _lambda_model,
    "fewer-class-folders-than-outputs": _without_class,
    "corrupt-image": _corrupt_image,
    "class-folder-with-only-a-text-file": _only_notes,
    "empty-class-folder": _empty_class,
    "no-class-folders": _no_class_folders,
    "out-exists-without-force": _existing_out,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_the_path(case, tiny, tmp_path, capsys):
    argv, message = BAD_INPUTS[case]
    SETUP.get(case, lambda tiny, tmp: None)(tiny, tmp_path)
    before = (tiny / "model.keras").read_bytes()

    assert exit_status([arg.format(tiny=tiny, tmp=tmp_path) for arg in argv]) == 2

    captured = capsys.readouterr()
    assert message.format(tiny=tiny, tmp=tmp_path) in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert (tiny / "model.keras").read_bytes() == before


def _row(text, mode):
    """The accuracy column of `mode`'s row in the first table of `text`."""
    line = next(line for line in text.splitlines() if line.startswith(f"{mode} "))
    return float(line.split()[-1])


def test_a_model_of_any_input_size_reads_the_images_at_image_size(tiny, capsys):
    assert (
        exit_status([tiny / "any_size.keras", tiny / "images", "--image-size", "40,56", "--preprocess", "rescale"]) == 0
    )

    printed = capsys.readouterr().out
    assert "input of any size (None, None, None, 3)" in printed
    assert "6 images in 3 class folders" in printed and "read as 40x56 RGB" in printed


REPOSITORY_PREPROCESSING = """
    import numpy as np

    SIZE = 8


    def preprocess(images):
        return images / 255.0


    class Steps:
        rescale = staticmethod(preprocess)


    def fails(images):
        raise ValueError("expected uint8 images")


    def images_and_labels(images):
        return images / 255.0, np.zeros(len(images))


    def crops(images):
        return images[:, :4, :4] / 255.0
"""


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """tmp_path as a repository root, the current directory: `repo_pkg/preprocessing.py` and a
    module that fails to import. Its modules and sys.path are as they were afterwards."""
    package = tmp_path / "repo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "preprocessing.py").write_text(textwrap.dedent(REPOSITORY_PREPROCESSING))
    (package / "broken.py").write_text("raise RuntimeError('needs the GPU build')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.curdir, str(tmp_path))])
    yield tmp_path
    for name in [name for name in sys.modules if name == "repo_pkg" or name.startswith("repo_pkg.")]:
        del sys.modules[name]


def test_a_repositorys_function_preprocesses_as_the_built_in_does(tiny, repository, capsys):
    path_before = list(sys.path)
    model, images = tiny / "model.keras", tiny / "images"

    assert exit_status([model, images, "--preprocess", "repo_pkg.preprocessing:Steps.rescale"]) == 0
    by_function = capsys.readouterr().out
    assert exit_status([model, images, "--preprocess", "rescale"]) == 0
    by_name = capsys.readouterr().out

    assert (
        "Preprocessing:  repo_pkg.preprocessing:Steps.rescale from repo_pkg/preprocessing.py, called on float32 "
        "pixels 0..255" in by_function
    )
    assert _without_preprocessing_line(by_function) == _without_preprocessing_line(by_name)
    assert sys.path == path_before, (
        "the current directory is on sys.path only while the function is imported and called"
    )


def test_a_tensorflow_callable_from_python_preprocesses_as_the_built_in_does(tiny):
    tf = pytest.importorskip("tensorflow")

    def tf_rescale(images):
        return tf.cast(images, tf.float32) / 255.0

    by_callable = diagnose_saved_model(tiny / "model.keras", tiny / "images", preprocess=tf_rescale, image_size=(8, 8))
    by_name = diagnose_saved_model(tiny / "model.keras", tiny / "images", preprocess="rescale")

    assert by_callable.preprocessing.startswith(f"{__name__}:test_a_tensorflow_callable")
    assert (by_callable.before.values, by_callable.after.values) == (by_name.before.values, by_name.after.values)


PREPROCESSING_ERRORS = {
    "module-not-found": (
        "other_pkg.preprocessing:preprocess",
        (
            "preprocessing 'other_pkg.preprocessing:preprocess': no module named 'other_pkg' (looked in the current "
            "directory {root}, which is on the path as python -m puts it, and in the installed packages)"
        ),
    ),
    "submodule-not-found": ("repo_pkg.augment:preprocess", "no module named 'repo_pkg.augment'"),
    "module-raises-on-import": (
        "repo_pkg.broken:preprocess",
        "importing module 'repo_pkg.broken' raised RuntimeError: needs the GPU build",
    ),
    "function-misspelt": (
        "repo_pkg.preprocessing:preprocesss",
        "module 'repo_pkg.preprocessing' has no attribute 'preprocesss'; did you mean preprocess?",
    ),
    "function-unlike-any": (
        "repo_pkg.preprocessing:normalize",
        (
            "module 'repo_pkg.preprocessing' has no attribute 'normalize'; its public callables: Steps, crops, fails, "
            "images_and_labels, preprocess"
        ),
    ),
    "dotted-attribute-missing": (
        "repo_pkg.preprocessing:Steps.rescal",
        "'repo_pkg.preprocessing:Steps' has no attribute 'rescal'; did you mean rescale?",
    ),
    "not-callable": (
        "repo_pkg.preprocessing:SIZE",
        (
            "preprocessing 'repo_pkg.preprocessing:SIZE' is not callable; expected a function that takes one float32 "
            "batch of decoded images (N, height, width, channels) of pixels 0..255 and returns the model's inputs; "
            "received: SIZE=8 of type int"
        ),
    ),
    "function-raises": (
        "repo_pkg.preprocessing:fails",
        (
            "preprocessing function repo_pkg.preprocessing:fails raised ValueError: expected uint8 images; it was "
            "called "
            "with one float32 batch of decoded images (N, height, width, channels) of pixels 0..255, of shape (6, 8, "
            "8, 3)"
        ),
    ),
    "function-returns-two-values": (
        "repo_pkg.preprocessing:images_and_labels",
        (
            "preprocessing function repo_pkg.preprocessing:images_and_labels returned a tuple of 2 values for a batch "
            "of shape (6, 8, 8, 3); the model takes one input"
        ),
    ),
    "function-returns-another-size": (
        "repo_pkg.preprocessing:crops",
        "the preprocessed inputs have shape (6, 4, 4, 3) for 6 images, but model 'tiny_cnn' takes (None, 8, 8, 3)",
    ),
}


@pytest.mark.parametrize("case", list(PREPROCESSING_ERRORS))
def test_a_preprocessing_function_that_cannot_be_used_exits_2_naming_it(case, tiny, repository, capsys):
    spec, message = PREPROCESSING_ERRORS[case]

    assert exit_status([tiny / "model.keras", tiny / "images", "--preprocess", spec]) == 2

    captured = capsys.readouterr()
    error = captured.err.splitlines()[-1]  # after the progress lines, where loading came first
    assert error.startswith("pipeline-checks diagnose: error: ") and spec in error
    assert message.format(root=repository) in error
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"preprocess": "repo_pkg.preprocessing:SIZE"}, "'repo_pkg.preprocessing:SIZE' is not callable"),
        ({"preprocess": 255}, "Unknown preprocessing 255"),
        (
            {"image_size": (40, 0)},
            "image_size must be (height, width), two positive integers; received: image_size=(40, 0)",
        ),
        ({"image_size": 40}, "received: image_size=40"),
    ],
)
def test_the_python_api_raises_diagnose_errors(arguments, message, tiny, repository):
    with pytest.raises(DiagnoseError) as raised:
        diagnose_saved_model(tiny / "model.keras", tiny / "images", **arguments)
    assert message in str(raised.value)


def _without_preprocessing_line(printed):
    return [line for line in printed.splitlines() if not line.startswith("Preprocessing:")]
