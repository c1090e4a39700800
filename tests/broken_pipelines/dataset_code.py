"""Pipelines whose bug lives in dataset code: folders, `tf.data` maps, loaders, serving.

Each reads the small pipeline's images as a repository does, from a folder of PNG files
through `image_dataset_from_directory` or from a `tf.data.Dataset`, and `fit` trains on
that dataset. The folders are written once per process, under the system's temporary
folder.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from broken_pipelines import families
from broken_pipelines.common import (
    DATA,
    broken,
    compiled_cnn,
    correct,
    recalibrate_after_fit,
)
from pipeline_checks import make_tiny_images
from pipeline_checks.pipelines.pipeline import Pipeline

FIT = {"epochs": 15, "batch_size": 4}
SIZE = (16, 16)


@functools.cache
def folder(name: str = "train") -> Path:
    """The small pipeline's 12 images as PNG files, one folder per class."""
    root = Path(tempfile.mkdtemp(prefix="pipeline-checks-")) / name
    DATA.to_directory(root)
    return root


@functools.cache
def validation_folder(drop_class: int | None = None) -> Path:
    """Another split of the same classes; `drop_class` leaves one class folder out."""
    split = make_tiny_images(classes=DATA.classes, per_class=2, size=16, seed=1)
    root = Path(tempfile.mkdtemp(prefix="pipeline-checks-")) / "validation"
    split.to_directory(root)
    if drop_class is not None:
        gone = root / split.class_names[drop_class]
        for image in gone.iterdir():
            image.unlink()
        gone.rmdir()
    return root


def scaled(dataset):
    """The repository's training dataset: pixels / 255."""
    return dataset.map(lambda x, y: (x / 255.0, y))


def half_turned_then_scaled(dataset):
    """Training-only augmentation in the dataset: about half the images turned by 180 degrees.

    A half turn keeps a grating's orientation, hence its class. The seeded stateless draw
    makes two runs from one seed see the same turns.
    """
    import tensorflow as tf

    def turn(x, y):
        turned = tf.random.stateless_uniform(tf.shape(x)[:1], seed=(1, 2)) < 0.5
        x = tf.where(turned[:, None, None, None], tf.reverse(x, axis=[1, 2]), x)
        return x / 255.0, y

    return dataset.map(turn)


def unit_scale(images):
    return np.asarray(images, dtype=np.float32) / 255.0


def folder_pipeline(name: str, **changes) -> Pipeline:
    """The correct pipeline, read from its folder: `.map(x / 255)` in training, x / 255 at serving."""
    declared = {
        "build_model": compiled_cnn,
        "data": folder(),
        "image_size": SIZE,
        "train_dataset": scaled,
        "preprocess_infer": unit_scale,
        "fit_kwargs": FIT,
        "after_fit": recalibrate_after_fit,
    }
    return Pipeline(name, **{**declared, **changes})


def folder_scaled_alike():
    return folder_pipeline("folder-map-as-serving")


def folder_augmented_in_dataset():
    return folder_pipeline("folder-augmentation-in-dataset", train_dataset=half_turned_then_scaled)


def folder_with_matching_validation_folder():
    return folder_pipeline("folder-validation-classes-match", validation_data=validation_folder())


def dataset_shuffled_and_batched():
    """A `tf.data` pipeline of single examples, shuffled and batched by the repository's code."""
    import tensorflow as tf

    def read():
        return tf.data.Dataset.from_tensor_slices((np.asarray(DATA.images, np.float32), DATA.labels))

    def train_dataset(dataset):
        return dataset.shuffle(len(DATA), seed=0).map(lambda x, y: (x / 255.0, y)).batch(4)

    return Pipeline(
        "dataset-shuffled-batched",
        compiled_cnn,
        read,
        train_dataset=train_dataset,
        preprocess_infer=unit_scale,
        fit_kwargs=FIT,
        after_fit=recalibrate_after_fit,
    )


# -- correct twins of other model families, in dataset form ------------------------------------


def residual_dropout_from_folder():
    """A residual net with Dropout 0.5, trained on the folder's dataset."""
    return folder_pipeline("residual-dropout-folder", build_model=functools.partial(families.residual_net, dropout=0.5))


def xception_binary_from_dataset():
    """One logit on an Xception-style net (Rescaling inside), float 0/1 labels in a batched tf.data dataset."""
    import tensorflow as tf

    binary = make_tiny_images(classes=2, per_class=6, size=32, seed=2)

    def read():
        labels = np.asarray(binary.labels, np.float32)
        return (
            tf.data.Dataset.from_tensor_slices((np.asarray(binary.images, np.float32), labels))
            .shuffle(12, seed=0)
            .batch(4)
        )

    return Pipeline(
        "xception-binary-dataset",
        families.xception_style_binary,
        read,
        fit_kwargs={"epochs": 15},
        after_fit=recalibrate_after_fit,
    )


def frozen_conv_base_from_py_dataset():
    """A head on a frozen conv base, trained from the repository's PyDataset of scaled batches."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    base = getattr(keras.utils, "PyDataset", None) or keras.utils.Sequence

    class Batches(base):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            rows = slice(4 * index, 4 * index + 4)
            return unit_scale(DATA.images[rows]), DATA.labels[rows]

    return Pipeline("frozen-conv-base-py-dataset", families.frozen_conv_base, Batches(), fit_kwargs={"epochs": 10})


# A second split of the same classes, 3 images each: what validation's labels are read against.
VALIDATION_SPLIT = make_tiny_images(classes=DATA.classes, per_class=3, size=16, seed=1)


def integer_labelled(split, class_list):
    """A repository's loader: each image's class name looked up in `class_list` gives its integer label,
    and the dataset yields only the integers (no class names reach the checks)."""
    import tensorflow as tf

    labels = np.array([list(class_list).index(split.class_names[label]) for label in split.labels], np.int32)
    return tf.data.Dataset.from_tensor_slices((np.asarray(split.images, np.float32), labels))


def shuffled_scaled_batched(dataset):
    return dataset.shuffle(len(DATA), seed=0).map(lambda x, y: (x / 255.0, y)).batch(4)


def integer_dataset_pipeline(name: str, validation_classes) -> Pipeline:
    return Pipeline(
        name,
        compiled_cnn,
        lambda: integer_labelled(DATA, DATA.class_names),
        train_dataset=shuffled_scaled_batched,
        preprocess_infer=unit_scale,
        validation_data=lambda: integer_labelled(VALIDATION_SPLIT, validation_classes),
        fit_kwargs=FIT,
        after_fit=recalibrate_after_fit,
    )


def integer_dataset_validation_alike():
    """The fix: both splits labelled from the one class list, in its order."""
    return integer_dataset_pipeline("integer-dataset-validation-alike", DATA.class_names)


def integer_dataset_validation_reversed():
    """Validation labelled from the class list reversed: label = classes - 1 - label.

    Each split's loader lists its classes itself, and the lists differ in order (as
    `os.listdir` gives class folders in no fixed order): uzh-rpg/rpg_event_representation_learning#2,
    "Validation accuracy lower than expected", found "the train/test label mapping are
    inconsistent" and fixed it with `sorted(listdir(root))`. The datasets carry only integers,
    so both splits' class names are '0', '1', '2' and agree.
    """
    return integer_dataset_pipeline("integer-dataset-validation-reversed", tuple(reversed(DATA.class_names)))


def folder_map_differs_from_serving():
    """Training maps x / 255; serving uses MobileNet's x / 127.5 - 1."""
    return folder_pipeline(
        "folder-map-differs-from-serving", preprocess_infer=lambda x: np.asarray(x, np.float32) / 127.5 - 1
    )


def folder_validation_missing_a_class():
    """Two image_dataset_from_directory calls whose class lists differ: indices shift."""
    return folder_pipeline("folder-validation-missing-a-class", validation_data=validation_folder(drop_class=1))


def loader_mixes_labels():
    """A loader that lists the files twice: images in one shuffled order, labels in the sorted one."""
    import tensorflow as tf

    def read():
        order = np.random.default_rng(1).permutation(len(DATA))
        images = np.asarray(DATA.images, np.float32)[order]
        return tf.data.Dataset.from_tensor_slices((images, DATA.labels)).batch(4)

    return Pipeline(
        "loader-mixes-labels",
        compiled_cnn,
        read,
        train_dataset=scaled,
        preprocess_infer=unit_scale,
        fit_kwargs=FIT,
        after_fit=recalibrate_after_fit,
    )


def augmentation_at_serving():
    """Serving reuses the training dataset's augmentation: a random half turn at every call."""

    def serve(images):
        x = unit_scale(images)
        turned = np.random.default_rng().random(len(x)) < 0.5
        x[turned] = x[turned, ::-1, ::-1]
        return x

    return folder_pipeline("augmentation-at-serving", train_dataset=half_turned_then_scaled, preprocess_infer=serve)


PIXELS_UNIT_VS_TF = (
    r"train_dataset and preprocess_infer give different inputs(.|\n)*training feeds pixels / 255(.|\n)*"
    r"inference feeds pixels / 127\.5 - 1"
)

# keras.io's image_classification_from_scratch builds its augmentation once, at module level:
#     data_augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
#     def data_augmentation(images): for layer in data_augmentation_layers: images = layer(images) ...
#     train_ds = train_ds.map(lambda img, label: (data_augmentation(img), label), ...)
# A flip of both axes keeps these gratings learnable; the layers are made on first use.
_MODULE_LEVEL_AUGMENTATION: list = []


def _augmentation_layers():
    from pipeline_checks.model import compat

    return [compat.keras().layers.RandomFlip("horizontal_and_vertical")]


def augmented_by_module_level_layers(dataset):
    if not _MODULE_LEVEL_AUGMENTATION:
        _MODULE_LEVEL_AUGMENTATION.extend(_augmentation_layers())

    def augment(images, labels):
        for layer in _MODULE_LEVEL_AUGMENTATION:
            images = layer(images)
        return images / 255.0, labels

    return dataset.map(augment)


def augmented_by_layers_built_here(dataset):
    """The fix: the layers made inside the dataset function, so each run makes them from the seed."""
    layers = _augmentation_layers()

    def augment(images, labels):
        for layer in layers:
            images = layer(images)
        return images / 255.0, labels

    return dataset.map(augment)


def module_level_augmentation():
    """keras.io image_classification_from_scratch's augmentation as written: layers made once, at module
    level, mapped (sequentially) over the dataset. Their seed state would carry over from one run to the
    next in one process; the checks restart it before each run, so the runs agree as two processes do."""
    return folder_pipeline("module-level-augmentation", train_dataset=augmented_by_module_level_layers)


def augmentation_built_in_dataset_function():
    return folder_pipeline("augmentation-built-in-dataset", train_dataset=augmented_by_layers_built_here)


CASES = [
    correct(folder_scaled_alike),
    correct(folder_augmented_in_dataset),
    correct(folder_with_matching_validation_folder),
    correct(dataset_shuffled_and_batched),
    correct(residual_dropout_from_folder),
    correct(xception_binary_from_dataset),
    correct(frozen_conv_base_from_py_dataset, "none: a head on a frozen random conv base learns slowly"),
    correct(integer_dataset_validation_alike, "none: both integer-labelled splits from one class list"),
    broken(
        folder_map_differs_from_serving,
        "dataset .map(x / 255) but serving x / 127.5 - 1",
        preprocessing=PIXELS_UNIT_VS_TF,
        agreement=r"Gap: evaluate vs",
    ).on(
        "keras2",
        "Keras 2's model classifies the 12 [-1, 1] inputs as it does the [0, 1] ones, so the modes "
        "agree on them; the paths still differ",
        preprocessing=PIXELS_UNIT_VS_TF,
    ),
    broken(
        folder_validation_missing_a_class,
        "two image_dataset_from_directory calls whose class lists differ",
        labels=r"class 'patterns_01' is missing from validation_data",
    ),
    broken(
        integer_dataset_validation_reversed,
        "an integer-labelled tf.data validation split labelled from the class list reversed",
        labels=r"validation_data's labels look permuted: 0->2, 2->0",
    ),
    broken(
        loader_mixes_labels,
        "a loader pairs shuffled images with sorted labels",
        overfit=r"below the target 1|evaluate after BatchNorm recalibration",
        # As labels-shuffled-apart: fit memorizes the wrong pairs with batch statistics,
        # which inference does not reproduce.
        agreement=r"Gap: evaluate vs fit",
    ),
    broken(
        augmentation_at_serving,
        "the training augmentation applied at serving",
        preprocessing=r"preprocess_infer is random: two calls on the same images give different inputs",
    ),
    correct(augmentation_built_in_dataset_function, "none: RandomFlip made inside train_dataset"),
    correct(
        module_level_augmentation,
        "none: keras.io's module-level RandomFlip mapped over the dataset, restarted before each run as a "
        "fresh process starts it",
    ).on(
        "keras2",
        "Keras 2's random layers keep their generator state outside Keras variables, which the checks cannot "
        "restart: the second run draws other flips, and determinism names the layers",
        determinism=r"calls Keras random layers built once, outside it \(RandomFlip",
    ),
]
