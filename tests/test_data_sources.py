"""Data as the repository reads it: folders, tf.data, PyDataset, batches, fit's own arguments."""

import re
import shutil
import struct
import zlib

import numpy as np
import pytest
from broken_pipelines.common import DATA, compiled_cnn
from broken_pipelines.dataset_code import folder, folder_pipeline, scaled, unit_scale

from pipeline_checks.checks import check_determinism, check_labels, check_preprocessing
from pipeline_checks.errors import PipelineRunError
from pipeline_checks.model import compat
from pipeline_checks.pipelines.pipeline import Pipeline
from pipeline_checks.run.training import train
from pipeline_checks.saved_model.image_folders import ImageFolderError, read_image_folders

tf = pytest.importorskip("tensorflow")
FIT = {"epochs": 2, "batch_size": 4}


def pipeline_of(data, **changes):
    return Pipeline("p", compiled_cnn, data, **{"fit_kwargs": FIT, **changes})


def float_images():
    return np.asarray(DATA.images, np.float32)


@pytest.mark.parametrize("as_path", [str, lambda path: path], ids=["str", "Path"])
def test_a_folder_is_read_as_image_dataset_from_directory_reads_it(as_path):
    raw = pipeline_of(as_path(folder()), image_size=(16, 16)).raw_data()
    assert raw.class_names == DATA.class_names
    np.testing.assert_array_equal(raw.labels, DATA.labels)
    np.testing.assert_array_equal(raw.images, float_images())


def test_a_folder_is_read_at_a_non_square_image_size():
    raw = pipeline_of(folder(), image_size=(12, 20)).raw_data()
    assert raw.images.shape == (len(DATA), 12, 20, 3)


def test_a_folder_without_image_size_is_read_at_the_models_input_size():
    pipeline = folder_pipeline(
        "model-sized", build_model=lambda: compiled_cnn(input_shape=(24, 20, 3)), image_size=None, fit_kwargs=FIT
    )
    assert pipeline.raw_data().images.shape == (len(DATA), 24, 20, 3)
    run = train(pipeline)  # fit and the checks' passes agree on the size
    assert len(run.batch_losses) == 2 * 3

    def any_size():
        keras = compat.keras()
        model = keras.Sequential(
            [keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    variable_size = folder_pipeline("any-size", build_model=any_size, image_size=None)
    assert variable_size.folder_image_size() == (256, 256)  # image_dataset_from_directory's default


def test_fit_trains_on_the_dataset_the_repository_builds():
    seen = []

    def train_dataset(dataset):
        seen.append(dataset)
        return scaled(dataset)

    run = train(folder_pipeline("folder", train_dataset=train_dataset, fit_kwargs=FIT))
    fitted = [d for d in seen if d.element_spec[0].shape[0] is None]  # fit's: batched by the loader
    assert fitted and all(isinstance(d, tf.data.Dataset) for d in fitted)
    assert len(run.batch_losses) == 2 * 3  # 12 images in batches of 4, two epochs
    np.testing.assert_allclose(run.x_train, float_images() / 255.0, rtol=1e-6)


def test_a_dataset_map_that_differs_from_serving_fails_preprocessing():
    pipeline = folder_pipeline("folder", preprocess_infer=lambda x: np.asarray(x, np.float32) / 127.5 - 1)
    result = check_preprocessing(pipeline)
    assert not result.passed
    assert "train_dataset and preprocess_infer give different inputs" in result.summary


def test_training_only_augmentation_in_the_dataset_passes_preprocessing():
    def flipped(dataset):
        flip = compat.keras().layers.RandomFlip("horizontal", seed=3)
        return dataset.map(lambda x, y: (flip(x, training=True) / 255.0, y))

    result = check_preprocessing(folder_pipeline("folder", train_dataset=flipped))
    assert result.passed, result
    assert result.numbers["images_differing"] > 0  # flipped in training, not at serving


def one_hot(labels):
    return np.eye(DATA.classes, dtype=np.float32)[labels]


@pytest.mark.parametrize(
    "build, encoding",
    [
        pytest.param(
            lambda: tf.data.Dataset.from_tensor_slices((float_images(), DATA.labels)).batch(5), "sparse", id="batched"
        ),
        pytest.param(
            lambda: tf.data.Dataset.from_tensor_slices((float_images(), DATA.labels)), "sparse", id="unbatched"
        ),
        pytest.param(
            lambda: tf.data.Dataset.from_tensor_slices((float_images(), DATA.labels, np.ones(len(DATA)))).batch(4),
            "sparse",
            id="sample-weights",
        ),
        pytest.param(
            lambda: tf.data.Dataset.from_tensor_slices((float_images(), one_hot(DATA.labels))).batch(4),
            "one_hot",
            id="one-hot",
        ),
    ],
)
def test_a_tf_data_dataset_gives_its_images_labels_and_encoding(build, encoding):
    pipeline = pipeline_of(build)
    raw = pipeline.raw_data()
    np.testing.assert_array_equal(raw.images, float_images())
    np.testing.assert_array_equal(raw.labels, DATA.labels)
    x, y = pipeline.training_pairs(raw)
    assert pipeline.encoding_of(y) == encoding
    assert len(x) == len(y) == len(DATA)


def test_string_labels_become_indices_of_the_sorted_names():
    names = np.array(DATA.class_names)[DATA.labels]
    raw = pipeline_of(tf.data.Dataset.from_tensor_slices((float_images(), names)).batch(4)).raw_data()
    assert raw.class_names == DATA.class_names
    np.testing.assert_array_equal(raw.labels, DATA.labels)


def test_a_repeated_dataset_needs_steps_per_epoch():
    repeated = tf.data.Dataset.from_tensor_slices((float_images(), DATA.labels)).batch(4).repeat()
    with pytest.raises(
        PipelineRunError, match="repeated .infinite. tf.data.Dataset: fit_kwargs must set steps_per_epoch"
    ):
        pipeline_of(repeated).raw_data()
    run = train(pipeline_of(repeated, fit_kwargs={"epochs": 2, "steps_per_epoch": 3}))
    assert len(run.batch_losses) == 6
    assert len(run.raw) == 12


def test_a_py_dataset_and_a_list_of_batches_train_as_given():
    keras = compat.keras()
    batches = [(float_images()[i : i + 4] / 255.0, DATA.labels[i : i + 4]) for i in range(0, 12, 4)]
    base = getattr(keras.utils, "PyDataset", None) or keras.utils.Sequence

    class Batches(base):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

    for data in (Batches(), batches):
        run = train(pipeline_of(data))
        assert len(run.batch_losses) == 6
        np.testing.assert_allclose(run.x_train, float_images() / 255.0, rtol=1e-6)


def test_preprocess_train_with_a_dataset_points_to_train_dataset():
    with pytest.raises(
        ValueError,
        match=r"preprocess_train applies to arrays; for a folder declare the training preprocessing as train_dataset=",
    ):
        pipeline_of(folder(), image_size=(16, 16), preprocess_train=unit_scale).raw_data()


def test_a_missing_folder_is_named():
    with pytest.raises(PipelineRunError, match="data names a folder that does not exist; received: '/no/such/folder'"):
        pipeline_of("/no/such/folder").raw_data()


def folder_with(tmp_path, write):
    """The small pipeline's folder, copied, with `write(path)` replacing its sixth image; (folder, that path)."""
    root = tmp_path / "train"
    shutil.copytree(folder(), root)
    victim = sorted(root.rglob("*.png"))[5]
    write(victim)
    return root, victim


def png_of_size(path, width, height):
    """A PNG whose header says width x height, with no pixel data: read as that size, never decoded."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


@pytest.mark.parametrize(
    "write, why",
    [
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:80]), "image file is truncated", id="truncated"),
        pytest.param(lambda path: path.write_bytes(b"not a png"), "cannot identify image file", id="not-an-image"),
    ],
)
def test_a_corrupt_image_in_a_folder_is_named(tmp_path, write, why):
    root, victim = folder_with(tmp_path, write)
    message = f"Pipeline 'p': data raised ImageFolderError: cannot decode image {victim}: {why}"
    with pytest.raises(PipelineRunError, match=re.escape(message)):
        pipeline_of(root, image_size=(16, 16)).raw_data()


@pytest.mark.parametrize(
    "read, error",
    [
        pytest.param(lambda root: pipeline_of(root, image_size=(16, 16)).raw_data(), PipelineRunError, id="pipeline"),
        pytest.param(lambda root: read_image_folders(root, size=(16, 16)), ImageFolderError, id="diagnose"),
    ],
)
def test_an_image_above_the_pixel_limit_is_refused_before_decoding_on_both_paths(tmp_path, read, error):
    root, victim = folder_with(tmp_path, lambda path: png_of_size(path, 20000, 20000))
    limit = (
        f"image {victim} holds 400,000,000 pixels, more than the 89,478,485 the checks decode "
        "(PIL.Image.MAX_IMAGE_PIXELS); resize it, or leave it out of the folder"
    )
    with pytest.raises(error, match=re.escape(limit)):
        read(root)


def test_fit_runs_the_repositorys_callbacks_validation_and_class_weights(tmp_path):
    keras = compat.keras()
    checkpoint = tmp_path / "best.keras" if compat.is_keras3() else tmp_path / "best.h5"
    steps = []
    fit_kwargs = {
        **FIT,
        "epochs": 3,
        "callbacks": [
            keras.callbacks.EarlyStopping(monitor="loss", patience=5),
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
            keras.callbacks.ModelCheckpoint(str(checkpoint)),
            keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch)),
        ],
        "validation_data": (float_images() / 255.0, DATA.labels),
        "class_weight": {0: 1.0, 1: 2.0, 2: 1.0},
    }
    run = train(folder_pipeline("folder", fit_kwargs=fit_kwargs))
    assert checkpoint.exists()
    assert "val_loss" in run.history.history
    assert len(steps) == len(run.batch_losses) == 9  # the repository's callback and the recorder saw every step
    assert float(compat.to_numpy(run.model.optimizer.learning_rate)) == pytest.approx(0.01 * 0.5**3)


def test_the_labels_check_reads_one_hot_targets_from_the_dataset():
    def one_hot_dataset(dataset):
        return scaled(dataset).map(lambda x, y: (x, tf.one_hot(y, DATA.classes)))

    def build():
        return compiled_cnn(loss="categorical_crossentropy")

    result = check_labels(folder_pipeline("folder", train_dataset=one_hot_dataset, build_model=build))
    assert result.passed, result
    assert result.summary.startswith("one-hot labels")


@pytest.mark.skipif(compat.is_keras3(), reason="ImageDataGenerator is Keras 2's (removed in Keras 3)")
@pytest.mark.parametrize(
    "serving, passes",
    [(unit_scale, True), (lambda x: np.asarray(x, np.float32) / 127.5 - 1, False)],
    ids=["rescale-alike", "preprocess-input"],
)
def test_an_image_data_generator_rescale_is_compared_with_serving(serving, passes):
    keras = compat.keras()
    generator = keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
    flow = generator.flow_from_directory(str(folder()), target_size=(16, 16), batch_size=4, class_mode="sparse", seed=0)
    pipeline = pipeline_of(flow, preprocess_infer=serving)
    np.testing.assert_array_equal(pipeline.raw_data().labels, DATA.labels)
    result = check_preprocessing(pipeline)
    assert result.passed is passes, result
    if not passes:
        assert "the ImageDataGenerator and preprocess_infer give different inputs" in result.summary


def reshuffling_dataset():
    return tf.data.Dataset.from_tensor_slices((float_images() / 255.0, DATA.labels)).shuffle(12).batch(4)


def test_determinism_says_it_cannot_replay_a_reshuffling_dataset_object():
    result = check_determinism(pipeline_of(reshuffling_dataset()))
    assert result.passed and result.numbers["measured"] is False
    assert result.summary.startswith("not measured: data is a dataset object that yields its batches in another order")


def test_determinism_replays_a_dataset_built_by_a_function_and_says_what_it_overrides():
    keras = compat.keras()
    fit_kwargs = {"epochs": 3, "callbacks": [keras.callbacks.EarlyStopping(monitor="loss", patience=5)]}
    result = check_determinism(pipeline_of(reshuffling_dataset, fit_kwargs=fit_kwargs))
    assert result.passed, result
    assert "measured" not in result.numbers
    assert (
        result.numbers["overrides"] == "overrides fit_kwargs epochs=3 with 1, and runs the pipeline's 1 callback again"
    )
