"""Tiny image datasets: determinism, the kinds, the loaders users use, and bad arguments."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pipeline_checks import TinyImageDataset, make_tiny_images
from pipeline_checks.testing.photos import load_photo, photo_dir, photo_names

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="tf.data and image_dataset_from_directory need TensorFlow",
)


@pytest.mark.parametrize("kind", ["patterns", "noise", "photos"])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_label_order(kind, channels):
    data = make_tiny_images(classes=4, per_class=3, size=20, channels=channels, kind=kind, seed=1)
    assert isinstance(data, TinyImageDataset)
    assert data.images.shape == (12, 20, 20, channels) and data.images.dtype == np.uint8
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert (len(data), data.classes, data.size, data.channels) == (12, 4, 20, channels)
    assert list(data.class_names) == sorted(data.class_names)


@pytest.mark.parametrize("kind", ["patterns", "noise", "photos"])
def test_same_seed_same_bytes_other_seed_other_bytes(kind):
    first, again = (make_tiny_images(per_class=2, kind=kind, seed=7) for _ in range(2))
    other = make_tiny_images(per_class=2, kind=kind, seed=8)
    assert first.images.tobytes() == again.images.tobytes()
    assert first.images.tobytes() != other.images.tobytes()


def test_images_of_one_class_differ_from_each_other():
    data = make_tiny_images(classes=2, per_class=3, kind="patterns")
    assert len({image.tobytes() for image in data.images}) == 6


def test_patterns_are_separable_by_a_nearest_class_mean():
    # The property the patterns exist for: a trivial classifier already separates them.
    train = make_tiny_images(classes=5, per_class=4, size=24, seed=0)
    test = make_tiny_images(classes=5, per_class=4, size=24, seed=1)

    def spectra(d):
        return np.abs(np.fft.fft2(d.images.astype(float).mean(-1))).reshape(len(d), -1)

    means = np.stack([spectra(train)[train.labels == c].mean(0) for c in range(5)])
    predicted = np.argmin(((spectra(test)[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == test.labels).mean() >= 0.9


def test_photos_are_one_photograph_per_class_the_whole_one_first():
    data = make_tiny_images(classes=6, per_class=2, size=128, kind="photos")
    assert (
        data.class_names
        == photo_names()
        == (
            "astronaut",
            "chelsea",
            "coffee",
            "hubble_deep_field",
            "immunohistochemistry",
            "rocket",
        )
    )
    np.testing.assert_array_equal(data.images[2], load_photo("chelsea"))
    assert not np.array_equal(data.images[3], load_photo("chelsea"))


def test_every_photograph_has_its_provenance():
    provenance = (Path(__file__).parents[1] / "fixtures" / "PROVENANCE.md").read_text()
    for name in photo_names():
        assert f"`{name}.png` | `skimage.data.{name}()`" in provenance
    assert photo_dir().is_dir()


def test_arrays_are_read_only_and_one_hot_matches():
    data = make_tiny_images(classes=3, per_class=2)
    with pytest.raises(ValueError):
        data.images[0, 0, 0, 0] = 1
    assert data.one_hot_labels.dtype == np.float32
    np.testing.assert_array_equal(data.one_hot_labels.argmax(1), data.labels)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": 0}, "classes must be an integer of at least 1; received: classes=0"),
        ({"classes": 2.0}, "classes must be an integer of at least 1; received: classes=2.0"),
        ({"per_class": 0}, "per_class must be an integer of at least 1; received: per_class=0"),
        ({"size": 0}, "size must be a positive integer or (height, width) of positive integers; received: size=0"),
        ({"channels": 2}, "channels must be 1 or 3; received: channels=2"),
        ({"seed": -1}, "seed must be an integer of at least 0; received: seed=-1"),
        ({"kind": "faces"}, "kind must be one of patterns, noise, photos; received: kind='faces'"),
        ({"kind": "photos", "classes": 7}, "kind='photos' has 6 photographs, one per class; received: classes=7"),
    ],
    ids=[
        "no-classes",
        "float-classes",
        "no-images",
        "size-zero",
        "two-channels",
        "negative-seed",
        "unknown-kind",
        "too-many-photos",
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        make_tiny_images(**kwargs)
    assert str(error.value) == message


SIZE_EXPECTED = "size must be a positive integer or (height, width) of positive integers; received: "


@pytest.mark.parametrize("kind", ["patterns", "noise", "photos"])
@pytest.mark.parametrize("channels", [1, 3])
def test_non_square_sizes_give_height_by_width_images(kind, channels):
    data = make_tiny_images(classes=3, per_class=3, size=(24, 40), channels=channels, kind=kind, seed=2)
    assert data.images.shape == (9, 24, 40, channels) and data.images.dtype == np.uint8
    assert (data.size, data.height, data.width) == ((24, 40), 24, 40)
    assert len({image.tobytes() for image in data.images}) == 9
    again = make_tiny_images(classes=3, per_class=3, size=(24, 40), channels=channels, kind=kind, seed=2)
    assert again.images.tobytes() == data.images.tobytes()
    tall = make_tiny_images(classes=3, per_class=3, size=(40, 24), channels=channels, kind=kind, seed=2)
    assert tall.images.shape == (9, 40, 24, channels) and tall.size == (40, 24)


@pytest.mark.parametrize("kind", ["patterns", "noise", "photos"])
@pytest.mark.parametrize("size", [1, 8, 20, 32, 128])
def test_square_tuple_sizes_give_the_same_bytes_as_an_int(kind, size):
    square = make_tiny_images(classes=3, per_class=3, size=size, kind=kind, seed=3)
    for same in [(size, size), [size, size], (np.int64(size), size)]:
        data = make_tiny_images(classes=3, per_class=3, size=same, kind=kind, seed=3)
        assert data.images.tobytes() == square.images.tobytes()
        assert data.size == size and isinstance(data.size, int)
    assert (square.size, square.height, square.width) == (size, size, size)


def test_non_square_photos_keep_the_aspect_ratio_of_the_photograph():
    # The first image of a class is the largest centred window of the size's aspect ratio.
    data = make_tiny_images(classes=2, per_class=1, size=(64, 128), kind="photos")
    np.testing.assert_array_equal(data.images[1], load_photo("chelsea")[32:96])


@pytest.mark.parametrize(
    "size",
    [(0, 3), (3, 0), (-1, 4), (3,), (3, 4, 5), (2.0, 3), (True, 3), "32", None, 2.5, -1],
    ids=repr,
)
def test_invalid_sizes_are_rejected_naming_the_value(size):
    with pytest.raises(ValueError) as error:
        make_tiny_images(size=size)
    assert str(error.value) == SIZE_EXPECTED + f"size={size!r}"


def test_png_tree_layout(tmp_path):
    data = make_tiny_images(classes=2, per_class=2, size=8)
    root = data.to_directory(tmp_path / "tree")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert files == [
        "patterns_00/img_0000.png",
        "patterns_00/img_0001.png",
        "patterns_01/img_0002.png",
        "patterns_01/img_0003.png",
    ]
    with pytest.raises(FileExistsError, match="empty folder"):
        data.to_directory(root)


def test_to_directory_without_a_root_says_what_to_pass():
    with pytest.raises(ValueError, match="needs a root folder: pass root="):
        make_tiny_images().to_directory()


@needs_tensorflow
@pytest.mark.parametrize(
    "kwargs",
    [{"channels": 3}, {"channels": 1}, {"kind": "photos"}, {"classes": 12, "per_class": 1}],
    ids=["rgb", "grayscale", "photos", "twelve-classes-sort"],
)
def test_keras_directory_loader_reads_back_the_same_bytes_and_labels(tiny_images, kwargs):
    data = tiny_images(**{"per_class": 2, "size": 16, **kwargs})
    images, labels = next(iter(data.image_dataset_from_directory(label_mode="int")))
    np.testing.assert_array_equal(np.asarray(images).astype(np.uint8), data.images)
    np.testing.assert_array_equal(np.asarray(labels), data.labels)


@needs_tensorflow
@pytest.mark.parametrize("kind", ["patterns", "noise", "photos"])
def test_non_square_images_round_trip_through_pngs_and_the_keras_loader(tiny_images, kind):
    from PIL import Image

    data = tiny_images(classes=2, per_class=2, size=(24, 40), kind=kind)
    images, labels = next(iter(data.image_dataset_from_directory(label_mode="int")))
    root = data.scratch_dir
    for path in sorted(root.rglob("*.png")):
        with Image.open(path) as png:
            assert png.size == (40, 24)  # PIL: (width, height)
    assert tuple(images.shape) == (4, 24, 40, 3)
    np.testing.assert_array_equal(np.asarray(images).astype(np.uint8), data.images)
    np.testing.assert_array_equal(np.asarray(labels), data.labels)
    batches = list(data.to_tf_dataset(batch_size=3))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), data.images)


@needs_tensorflow
def test_keras_directory_loader_categorical_labels(tiny_images):
    data = tiny_images(classes=3, per_class=1, size=8)
    _, labels = next(iter(data.image_dataset_from_directory(label_mode="categorical", verbose=False)))
    np.testing.assert_array_equal(np.asarray(labels), data.one_hot_labels)


@needs_tensorflow
def test_tf_dataset_batches(tiny_images):
    data = tiny_images(classes=2, per_class=3, size=8)
    batches = list(data.to_tf_dataset(label_mode="categorical", batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), data.images)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), data.one_hot_labels)


def test_loaders_reject_an_unknown_label_mode():
    with pytest.raises(ValueError, match="label_mode must be one of int, categorical; received: label_mode='binary'"):
        make_tiny_images().to_tf_dataset(label_mode="binary")


def test_fixture_defaults_follow_settings(tiny_images, pc_seed):
    data = tiny_images()
    assert (data.classes, len(data), data.size, data.seed) == (3, 6, 32, pc_seed)


@pytest.mark.pipeline_checks(image_size=12, seed=4)
def test_fixture_defaults_follow_the_marker(tiny_images):
    data = tiny_images()
    assert (data.size, data.seed) == (12, 4)


def test_fixture_takes_height_and_width(tiny_images, pc_seed):
    data = tiny_images(size=(24, 40), channels=1)
    assert (data.images.shape, data.size, data.seed) == ((6, 24, 40, 1), (24, 40), pc_seed)
