"""The plugin's settings: one description per knob, one resolver, one frozen result.

Each knob has a CLI flag `--pc-<knob>`, an ini key `pc_<knob>` and a keyword of the
`pipeline_checks` marker. Precedence is marker > CLI > ini > pyproject > default, and an
invalid value names the place it came from. pyproject.toml's `[tool.pipeline_checks.pipeline.NAME]`
tables configure one pipeline each (`PipelineConfig`). Nothing here imports pytest or Keras.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_checks.model.applications import resolve_application_name

DEFAULT_MODELS = ("ResNet50", "InceptionV3", "MobileNetV2")


class InvalidSetting(ValueError):
    """A setting's value cannot be used; the message names its source."""


def _parse_seed(value: Any) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError("expected a non-negative integer")
    return int(text)


def _parse_models(value: Any) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise ValueError("expected a comma-separated list of keras.applications names")
    return tuple(resolve_application_name(n) for n in names)


def _parse_image_size(value: Any) -> int | None:
    text = str(value).strip()
    if text.lower() == "min":
        return None
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError("expected a positive integer or 'min'")
    return int(text)


_PIPELINE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _parse_pipelines(value: Any) -> tuple[str, ...]:
    specs = re.split(r"[,\s]+", value) if isinstance(value, str) else [str(v) for v in value]
    specs = [spec.strip() for spec in specs if spec.strip()]
    wrong = [spec for spec in specs if not _PIPELINE_SPEC.match(spec)]
    if wrong or not specs:
        raise ValueError(f"expected 'package.module:factory' names; {', '.join(map(repr, wrong)) or 'none'} given")
    return tuple(specs)


def _parse_directory(value: Any) -> Path:
    text = str(value).strip()
    if isinstance(value, bool) or not text:
        raise ValueError("expected a directory path")
    return Path(text)


def _parse_shard(value: Any) -> tuple[int, int]:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if isinstance(value, bool) or not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError("expected INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 1/3")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Knob:
    name: str
    help: str
    parse: Callable[[Any], Any]
    default: Any
    metavar: str

    @property
    def flag(self) -> str:
        return "--pc-" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "pc_" + self.name


KNOBS = (
    Knob(
        "seed",
        "Seed for Python, NumPy and the Keras backend at the start of each test that uses "
        "pipeline-checks fixtures (default: pytest-randomly's seed when it is active, else 0).",
        _parse_seed,
        None,
        "INT",
    ),
    Knob(
        "models",
        "Comma-separated keras.applications names the built-in pipelines use "
        f"(default: {','.join(DEFAULT_MODELS)}).",
        _parse_models,
        DEFAULT_MODELS,
        "NAMES",
    ),
    Knob(
        "image_size",
        "Side of the tiny images and default model input, in pixels, or 'min' for each "
        "model's smallest accepted input (default: min).",
        _parse_image_size,
        None,
        "PIXELS",
    ),
    Knob(
        "pipelines",
        "Pipelines the built-in suite checks, as 'package.module:factory' names separated by "
        "commas or spaces; each names a Pipeline, a list of them, or a function returning "
        "either (default: built-in pipelines for --pc-models).",
        _parse_pipelines,
        (),
        "NAMES",
    ),
    Knob(
        "report",
        "Directory where the built-in suite writes a JSON report and, with matplotlib "
        "installed, a plot of each pipeline's BatchNorm statistics (default: none).",
        _parse_directory,
        None,
        "DIR",
    ),
    Knob(
        "shard",
        "Run one shard of the declared pipelines, INDEX/COUNT (e.g. 2/3 on the second of three CI "
        "machines): the pipelines are dealt round-robin in declared order, so each one is checked, "
        "and trained, on exactly one shard; tests that use no declared pipeline run on shard 1 "
        "(default: all).",
        _parse_shard,
        None,
        "INDEX/COUNT",
    ),
    Knob(
        "baseline_dir",
        "Directory of the baseline files the suite's test_baseline compares each pipeline's run with, "
        "relative to the rootdir (default: .pipeline-checks/baselines).",
        _parse_directory,
        None,
        "DIR",
    ),
)
KNOBS_BY_NAME = {knob.name: knob for knob in KNOBS}


@dataclass(frozen=True)
class PipelineConfig:
    """One `[tool.pipeline_checks.pipeline.NAME]` table: families to skip, and check options.

    Attributes:
        skip: check family -> the reason it is skipped for this pipeline.
        options: check family -> keyword arguments of that check (argument > these > the
            pipeline's `check_options` > the check's default).
    """

    skip: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline_tolerances: tuple = ()  # (figure pattern, Tolerance) pairs, before the suite's


@dataclass(frozen=True)
class Settings:
    """Resolved settings; `seed` and `image_size` are None when left to their defaults."""

    seed: int | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    image_size: int | None = None
    pipelines: tuple[str, ...] = ()
    report: Path | None = None
    shard: tuple[int, int] | None = None
    baseline_dir: Path | None = None
    baseline_tolerances: tuple = ()  # [tool.pipeline_checks.baseline_tolerances]: (pattern, Tolerance) pairs
    per_pipeline: dict[str, PipelineConfig] = field(default_factory=dict, compare=True, hash=False)

    def with_overrides(self, overrides: dict[str, Any], source: str) -> Settings:
        """Return a copy with `overrides` parsed and applied; errors name `source`."""
        unknown = sorted(set(overrides) - set(KNOBS_BY_NAME))
        if unknown:
            raise InvalidSetting(
                f"Unknown setting(s) {', '.join(unknown)} from {source}; "
                f"known: {', '.join(KNOBS_BY_NAME)}"
            )
        parsed = {
            name: _parse(KNOBS_BY_NAME[name], value, source) for name, value in overrides.items()
        }
        return dataclasses.replace(self, **parsed)


def _parse(knob: Knob, value: Any, source: str) -> Any:
    try:
        return knob.parse(value)
    except ValueError as error:
        raise InvalidSetting(f"Invalid {knob.ini_key} {value!r} from {source}: {error}") from None


TOOL_TABLE = "pyproject.toml [tool.pipeline_checks]"
# `pipelines = [...]` is the list of factories; the per-pipeline tables live under this key.
PER_PIPELINE_KEY = "pipeline"
SKIP_KEY = "skip"
# Figure -> tolerance tables for the baseline test: for every pipeline at the top level, or
# under `baseline` in a pipeline's own table.
TOLERANCES_KEY = "baseline_tolerances"
BASELINE_FAMILY = "baseline"


def per_pipeline_table(name: str) -> str:
    return f"pyproject.toml [tool.pipeline_checks.{PER_PIPELINE_KEY}.{name}]"


def parse_per_pipeline(table: Any) -> dict[str, PipelineConfig]:
    """Parse `[tool.pipeline_checks.pipeline.NAME]` tables; errors name the table, the key and the value.

    Checks the shape and the family names (no Keras); the keyword names are checked against
    each check's signature by the plugin, and the values by the check when it runs.
    """
    from pipeline_checks.checks import FAMILIES  # names only: imports no check

    example = f'e.g. [tool.pipeline_checks.{PER_PIPELINE_KEY}.my-pipeline] with overfit = {{target_accuracy = 0.9}}'
    if not isinstance(table, dict):
        raise InvalidSetting(f"Invalid {TOOL_TABLE} {PER_PIPELINE_KEY} = {table!r}: expected tables named by pipeline, {example}")
    configs = {}
    for name, entry in table.items():
        where = per_pipeline_table(name)
        if not isinstance(entry, dict):
            raise InvalidSetting(f"Invalid {TOOL_TABLE} {PER_PIPELINE_KEY}.{name} = {entry!r}: expected a table, {example}")
        skip, options, tolerances = {}, {}, ()
        for key, value in entry.items():
            if key == SKIP_KEY:
                skip = _parse_skip(where, value, (*FAMILIES, BASELINE_FAMILY))
            elif key == BASELINE_FAMILY:
                tolerances = _parse_tolerances(value, f"{where} {BASELINE_FAMILY}")
            elif key in FAMILIES:
                if not isinstance(value, dict):
                    raise InvalidSetting(
                        f"Invalid {where} {key} = {value!r}: expected a table of {key}'s keyword arguments, "
                        f"e.g. {key} = {{tolerance = 0.1}}"
                    )
                options[key] = dict(value)
            else:
                raise InvalidSetting(
                    f"Invalid {where} {key} = {value!r}: unknown key {key!r}; expected {SKIP_KEY!r}, "
                    f"{BASELINE_FAMILY!r} (its tolerances) or a check family: {', '.join(FAMILIES)}"
                )
        configs[str(name)] = PipelineConfig(skip=skip, options=options, baseline_tolerances=tolerances)
    return configs


def _parse_tolerances(table: Any, where: str) -> tuple:
    from pipeline_checks.baselines.tolerances import parse_tolerances  # NumPy-free

    try:
        return parse_tolerances(table, where)
    except ValueError as error:
        raise InvalidSetting(str(error)) from None


def _parse_skip(where: str, value: Any, families) -> dict[str, str]:
    expected = 'expected a table of check family -> reason, e.g. skip = {determinism = "cuDNN kernels are not deterministic"}'
    if not isinstance(value, dict):
        raise InvalidSetting(f"Invalid {where} {SKIP_KEY} = {value!r}: {expected}")
    for family, reason in value.items():
        if family not in families:
            raise InvalidSetting(
                f"Invalid {where} {SKIP_KEY}.{family} = {reason!r}: {family!r} is no check family; "
                f"the families are {', '.join(families)}"
            )
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidSetting(f"Invalid {where} {SKIP_KEY}.{family} = {reason!r}: expected the reason, a non-empty string")
    return {family: reason.strip() for family, reason in value.items()}


def resolve(
    cli_value: Callable[[Knob], Any],
    ini_value: Callable[[Knob], Any],
    tool_table: dict[str, Any] | None = None,
) -> Settings:
    """Resolve every knob once: CLI > ini > pyproject.toml's [tool.pipeline_checks] > default.

    Args:
        cli_value: returns the knob's command-line value, or None when not given.
        ini_value: returns the knob's ini value, or None/"" when not set.
        tool_table: the `[tool.pipeline_checks]` table of pyproject.toml, keyed by knob name.
    """
    tool_table = dict(tool_table or {})
    per_pipeline = parse_per_pipeline(tool_table.pop(PER_PIPELINE_KEY)) if PER_PIPELINE_KEY in tool_table else {}
    tolerances = _parse_tolerances(tool_table.pop(TOLERANCES_KEY), f"{TOOL_TABLE} {TOLERANCES_KEY}") if TOLERANCES_KEY in tool_table else ()
    unknown = sorted(set(tool_table) - set(KNOBS_BY_NAME))
    if unknown:
        raise InvalidSetting(
            f"Unknown setting(s) {', '.join(unknown)} in {TOOL_TABLE}; known: {', '.join(KNOBS_BY_NAME)}, {PER_PIPELINE_KEY}, {TOLERANCES_KEY}"
        )
    values: dict[str, Any] = {"per_pipeline": per_pipeline, "baseline_tolerances": tolerances}
    for knob in KNOBS:
        cli, ini = cli_value(knob), ini_value(knob)
        if cli is not None:
            values[knob.name] = _parse(knob, cli, f"command line {knob.flag}")
        elif ini not in (None, "", []):
            values[knob.name] = _parse(knob, ini, "ini file")
        elif knob.name in tool_table:
            values[knob.name] = _parse(knob, tool_table[knob.name], TOOL_TABLE)
    return Settings(**values)
