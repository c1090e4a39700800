"""Read a folder of class folders into uint8 arrays, as `image_dataset_from_directory` sees it.

The layout is Keras': `root/<class_name>/<image>`, one sub-folder per class, class indices
in the sorted order of the folder names, images found in nested folders too and kept by
extension (IMAGE_EXTENSIONS, case-insensitive); anything else is skipped and listed.
Unlike Keras, hidden files and folders (".DS_Store", "._photo.png", ".ipynb_checkpoints")
are skipped too: they are never images of the class. Pillow decodes (the first frame of
a GIF), converts to "L" or "RGB" (dropping alpha, as Keras does) and resizes with its
bilinear filter, which can differ from `tf.image.resize` by a few levels when sizes differ.

An image larger than Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485 pixels by default, about
9,459 x 9,459) is refused before it is decoded, naming the file: decoding one such photo
takes gigabytes. `diagnose` and a pipeline's folder (`check_image_file`) share the limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline_checks._text import listed

# keras.utils.image_dataset_from_directory's allowlist (ALLOWLIST_FORMATS).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
PROGRESS_EVERY = 500  # images between progress lines within one class folder
_MODES = {1: "L", 3: "RGB"}


class ImageFolderError(ValueError):
    """The folder tree cannot be read as one folder of images per class; says which path."""


@dataclass(frozen=True)
class ImageFolderListing:
    """What a class-folder tree holds, before any image is decoded.

    Attributes:
        root: the folder of class folders.
        class_names: folder names in sorted order; a class's index is its position.
        files: for each class, its image files in sorted order.
        skipped: files that are not images by extension, or hidden, with why.
    """

    root: Path
    class_names: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]
    skipped: tuple[tuple[Path, str], ...] = ()

    @property
    def count(self) -> int:
        return sum(len(files) for files in self.files)


@dataclass(frozen=True)
class ImageFolders:
    """Images decoded from a class-folder tree.

    Attributes:
        images: uint8 array of shape (N, height, width, channels), ordered by class, then path.
        labels: int32 class indices of shape (N,).
        class_names: the class folder names, sorted; label i is `class_names[i]`.
        paths: the file each image came from.
        listing: the `ImageFolderListing` they were read from (skipped files included).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[Path, ...]
    listing: ImageFolderListing

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def one_hot_labels(self) -> np.ndarray:
        return np.eye(len(self.class_names), dtype=np.float32)[self.labels]


def list_image_folders(root: str | os.PathLike) -> ImageFolderListing:
    """List the classes and image files of a class-folder tree; decode nothing.

    Raises:
        FileNotFoundError: `root` does not exist. NotADirectoryError: it is a file.
        ImageFolderError: no class folders, or a class folder without images.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"No image folder at {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; expected a folder with one sub-folder of images per class")
    class_names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not class_names:
        raise ImageFolderError(
            f"{root} has no class folders; expected one sub-folder of images per class, "
            "e.g. images/cats/1.png, images/dogs/1.png"
        )
    files, skipped = [], []
    for name in class_names:
        images, passed = _class_files(root / name)
        skipped += passed
        if not images:
            holds = "; it holds " + listed((p.relative_to(root) for p, _ in passed), shown=5) if passed else ""
            raise ImageFolderError(
                f"class folder {root / name} has no images (extensions {', '.join(IMAGE_EXTENSIONS)})"
                f"{holds}; remove the folder or add its images"
            )
        files.append(tuple(images))
    return ImageFolderListing(root, class_names, tuple(files), tuple(skipped))


def read_image_folders(
    root: str | os.PathLike | ImageFolderListing,
    size: tuple[int, int],
    channels: int = 3,
    progress: Callable[[str], None] | None = None,
) -> ImageFolders:
    """Decode every image of a class-folder tree into one uint8 array.

    Args:
        root: the folder of class folders, or its `list_image_folders` listing.
        size: `(height, width)` every image is resized to (bilinear), as a model's input;
            height and width may differ.
        channels: 1 (converted to "L") or 3 (converted to "RGB").
        progress: called with a line of text after each class folder and every
            PROGRESS_EVERY images; None reads silently.

    Returns:
        `ImageFolders` with images, labels, class names and the path of each image.

    Raises:
        ImageFolderError: naming the file Pillow cannot decode, or the folder at fault.

    Example:
        >>> folders = read_image_folders("images", size=(32, 32), channels=3)
        >>> folders.images.shape, folders.class_names
        ((3, 32, 32, 3), ('astronaut', 'chelsea', 'coffee'))
    """
    from PIL import Image

    listing = root if isinstance(root, ImageFolderListing) else list_image_folders(root)
    if channels not in _MODES:
        raise ValueError(f"channels must be 1 or 3; received: channels={channels!r}")
    height, width = _checked_size(size)
    images = np.empty((listing.count, height, width, channels), dtype=np.uint8)
    labels = np.empty((listing.count,), dtype=np.int32)
    paths: list[Path] = []
    for label, (name, files) in enumerate(zip(listing.class_names, listing.files)):
        for index, path in enumerate(files, start=1):
            pixels = _decode(path, Image, _MODES[channels], (width, height))
            images[len(paths)] = pixels.reshape(height, width, channels)
            labels[len(paths)] = label
            paths.append(path)
            if progress is not None and index % PROGRESS_EVERY == 0 and index < len(files):
                progress(f"  {name}: {index}/{len(files)} images")
        if progress is not None:
            progress(f"Read {name}: {len(files)} images ({len(paths)}/{listing.count} in all)")
    return ImageFolders(images, labels, listing.class_names, tuple(paths), listing)


def _checked_size(size) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1:
        raise ValueError(f"size must be (height, width), two positive integers; received: size={size!r}")
    return height, width


def _class_files(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    images, skipped = [], []
    for current, folders, names in os.walk(folder):
        hidden = sorted(f for f in folders if f.startswith("."))
        skipped += [(Path(current) / f, "hidden folder") for f in hidden]
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(names):
            path = Path(current) / name
            if name.startswith("."):
                skipped.append((path, "hidden file"))
            elif name.lower().endswith(IMAGE_EXTENSIONS):
                images.append(path)
            else:
                skipped.append((path, "not an image extension"))
    return images, skipped


def _decode(path: Path, Image, mode: str, size: tuple[int, int]) -> np.ndarray:
    converted = decoded_image(path, mode)
    if converted.size != size:
        converted = converted.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8)


def check_image_file(path: str | os.PathLike) -> None:
    """Read the header of the image at `path`: ImageFolderError naming it where Pillow does not
    recognize it, or where it holds more than `Image.MAX_IMAGE_PIXELS` pixels. Decodes nothing."""
    with _opened(path):
        pass


def decoded_image(path: str | os.PathLike, mode: str):
    """The image at `path` decoded and converted to `mode` ("L", "RGB"); ImageFolderError naming the
    file where it cannot be decoded or is larger than `Image.MAX_IMAGE_PIXELS`."""
    with _opened(path) as image:
        try:
            image.load()
            return image.convert(mode)
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageFolderError(f"cannot decode image {path}: {error}") from None


@contextlib.contextmanager
def _opened(path):
    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow only warns between its limit and twice it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageFolderError(_too_large(path, error, Image.MAX_IMAGE_PIXELS)) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageFolderError(f"cannot decode image {path}: {error}") from None
    with image:
        yield image


def _too_large(path, error, limit: int) -> str:
    found = re.search(r"\((\d+) pixels\)", str(error))  # Pillow's "Image size (N pixels) exceeds ..."
    holds = f"holds {int(found.group(1)):,} pixels" if found else "is too large"
    return (
        f"image {path} {holds}, more than the {limit:,} the checks decode (PIL.Image.MAX_IMAGE_PIXELS); "
        "resize it, or leave it out of the folder"
    )
