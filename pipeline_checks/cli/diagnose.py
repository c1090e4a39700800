"""`pipeline-checks diagnose MODEL.keras IMAGES_DIR`: `diagnose_saved_model` on the command line.

`add_arguments` and `run` plug into any argparse parser; `main` parses on its own. Nothing
heavy is imported until `run` is called.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from pipeline_checks.errors import DiagnoseError
from pipeline_checks.saved_model.diagnose import (
    diagnose_saved_model,
    resolve_preprocessing,
)

PROG = "pipeline-checks diagnose"
HELP = "measure a saved model's modes on its class-folder images, recalibrate BatchNorm, optionally write the fix"
DESCRIPTION = (
    "Load MODEL (.keras) and the images it was trained on (one sub-folder per class), measure train-mode, "
    "evaluate, predict and evaluate after BatchNorm recalibration, print the table and the diagnosis, and with "
    "--write-recalibrated save the recalibrated model (MODEL is never written). fit is not measured: a saved "
    "model keeps no history. Exit status: 0 when the modes agree after recalibration, 1 when a disagreement "
    "remains, 2 for bad arguments or inputs."
)
IMAGE_SIZE_PATTERN = re.compile(r"\s*(\d+)\s*[,xX]\s*(\d+)\s*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `diagnose` subcommand's arguments to `parser`."""
    from pipeline_checks.model.applications import known_applications

    parser.add_argument(
        "model", type=Path, metavar="MODEL", help="the saved model: a .keras file (loaded with safe_mode=True)"
    )
    parser.add_argument(
        "images",
        type=Path,
        metavar="IMAGES_DIR",
        help="one sub-folder of images per class (.bmp .gif .jpeg .jpg .png); sorted folder "
        "names give the label indices, as image_dataset_from_directory does",
    )
    parser.add_argument(
        "--preprocess",
        type=_preprocessing_argument,
        default="none",
        metavar="NAME",
        help="what the model was trained on: none (float32 pixels 0..255), rescale (/255), an "
        f"application whose preprocess_input to apply ({', '.join(known_applications())}), or your own "
        "function as package.module:function, imported from the current directory and called with a "
        "float32 batch (N, height, width, channels) of pixels 0..255 (default: none)",
    )
    parser.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        metavar="HEIGHT,WIDTH",
        help="read the images at this size (also HEIGHTxWIDTH); required when the model's input has no "
        "fixed size, e.g. keras.Input((None, None, 3)) (default: the model's input size)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="fit's batch size, for train-mode and recalibration statistics (default: all images as one batch)",
    )
    parser.add_argument(
        "--write-recalibrated",
        type=Path,
        default=None,
        metavar="OUT.keras",
        help="save the recalibrated model here (never over MODEL)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --write-recalibrated file")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand: 0 when the modes agree after recalibration, 1 when not, 2 on bad input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipeline_checks.saved_model.image_folders import ImageFolderError

    try:
        result = diagnose_saved_model(
            args.model,
            args.images,
            preprocess=args.preprocess,
            batch_size=args.batch_size,
            write_recalibrated=args.write_recalibrated,
            force=args.force,
            image_size=args.image_size,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (DiagnoseError, ImageFolderError, FileNotFoundError, NotADirectoryError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(result, flush=True)
    return 0 if result.agrees else 1


def main(argv: list[str] | None = None) -> int:
    """`pipeline-checks diagnose` on its own: parse `argv` (default: `sys.argv[1:]`) and `run`."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received: {value}")
    return value


def _image_size(text: str) -> tuple[int, int]:
    match = IMAGE_SIZE_PATTERN.fullmatch(text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(
            f"must be HEIGHT,WIDTH or HEIGHTxWIDTH, two positive integers, e.g. 224,224; received: {text!r}"
        )
    return int(match[1]), int(match[2])


def _preprocessing_argument(text: str) -> str:
    try:
        return resolve_preprocessing(text)
    except DiagnoseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
