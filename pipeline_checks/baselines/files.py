"""Baseline files: one reviewable YAML file per pipeline and environment key.

The key names what decides a run's numbers beyond the pipeline and its seed: the Keras
backend with its minor version, and Keras' major version ("tensorflow2.21-keras3",
"jax0.10-keras3", "tensorflow2.12-keras2"). Measured: one TensorFlow release to another, a
run's loss curve can move beyond any tolerance that still catches a changed learning rate
(docs/baselines.md, "Noise"). The machine is written into the file, not into the key: a run
recorded on another machine is compared on what it fixed before training (report.py).
The built-in pipelines' baselines ship with the package, for
the keys the project measures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_checks.baselines.tolerances import check_families
from pipeline_checks.baselines.writing import write_atomically

DEFAULT_DIRECTORY = Path(".pipeline-checks") / "baselines"
BUILTIN_DIRECTORY = Path(__file__).parent.parent / "scenarios" / "baselines"
EXTENSION = ".yml"
UPDATE_COMMAND = "pytest --pipeline-checks --pc-update-baselines"


def environment_key() -> str:
    """The backend with its version and Keras' major version, e.g. "tensorflow2.21-keras3"."""
    versions_now = versions()
    backend = versions_now["backend"]
    return f"{backend}{_minor(versions_now.get(backend, ''))}-keras{versions_now['keras'].split('.')[0]}"


def versions() -> dict[str, str]:
    """The backend's and Keras' versions, written into each file for its reader."""
    import importlib

    from pipeline_checks.model import compat

    found = {"backend": compat.backend(), "keras": compat.keras_version()}
    try:
        found[found["backend"]] = str(importlib.import_module(found["backend"]).__version__)  # torch: a str subclass
    except (ImportError, AttributeError):  # a backend without a module of its name (e.g. openvino's)
        pass
    return found


def _minor(version: str) -> str:
    """ "2.21" of "2.21.0", "2.13" of "2.13.0+cpu": the releases whose numbers may differ."""
    return ".".join(re.split(r"[.+]", version)[:2]) if version else ""


def baseline_file(directory: Path, pipeline: str, key: str) -> Path:
    """`directory/<pipeline>.<key>.yml`, the pipeline's name made safe for a file name."""
    return Path(directory) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', pipeline)}.{key}{EXTENSION}"


@dataclass(frozen=True)
class Baseline:
    """What a baseline file holds: whose figures, from which seed, on which versions, after which checks."""

    pipeline: str
    key: str
    seed: int
    figures: dict[str, Any]
    versions: dict[str, str]
    machine: str = ""  # devices.machine() where it was recorded; "" in files from before it was written
    # The check families that ran before it was recorded, whose numbers it may hold. None in files from
    # before it was written: then the families its figures name (a file cut short may have lost some).
    checks: tuple[str, ...] | None = None

    @property
    def recorded_checks(self) -> frozenset[str]:
        return frozenset(self.checks) if self.checks is not None else check_families(self.figures)

    def to_yaml(self) -> str:
        import yaml

        header = (
            f"# pipeline-checks baseline of pipeline {self.pipeline!r} on {self.key}, trained from seed {self.seed}.\n"
            f"# Review changes to it like code; refresh it with: {UPDATE_COMMAND}\n"
        )
        body = {
            "pipeline": self.pipeline,
            "key": self.key,
            "seed": self.seed,
            "versions": self.versions,
            "machine": self.machine,
            "checks": sorted(self.recorded_checks),
            "figures": self.figures,
        }
        # Leaf lists inline (one image's outputs per line), keys in the fingerprint's order.
        return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120)

    def write(self, path: Path) -> None:
        """Replace the file at `path` whole (writing.write_atomically): a run killed meanwhile leaves the old one."""
        write_atomically(path, self.to_yaml())

    @classmethod
    def read(cls, path: Path) -> Baseline:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(
                    "the file is empty" if data is None else f"it holds a {type(data).__name__}, not a mapping"
                )
            checks = data.get("checks")
            if checks is not None and not (isinstance(checks, list) and all(isinstance(c, str) for c in checks)):
                raise ValueError(f"checks: {checks!r} is not a list of check names")
            return cls(
                str(data["pipeline"]),
                str(data["key"]),
                int(data["seed"]),
                dict(data["figures"]),
                dict(data.get("versions") or {}),
                str(data.get("machine") or ""),
                None if checks is None else tuple(checks),
            )
        except OSError as error:
            raise ValueError(
                f"Cannot read the baseline {path}: {error.strerror or type(error).__name__}; expected a "
                f"file this run can read"
            ) from None
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
            found = (
                f"it has no {error.args[0]!r} (cut short?)"
                if isinstance(error, KeyError)
                else " ".join(str(error).split())
            )
            raise ValueError(
                f"Cannot read the baseline {path}: {found}; expected the YAML that {UPDATE_COMMAND} writes "
                "(pipeline, key, seed, versions, machine, checks, figures): refresh it with that command"
            ) from None
