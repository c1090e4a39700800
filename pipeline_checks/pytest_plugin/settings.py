"""The plugin's settings: one description per knob, one resolver, one frozen result.

Each knob has a CLI flag `--pc-<knob>`, an ini key `pc_<knob>` and a keyword of the
`pipeline_checks` marker. Precedence is marker > CLI > ini > pyproject > default, and an
invalid value names the place it came from. pyproject.toml's `[tool.pipeline_checks.pipeline.NAME]`
tables configure one pipeline each (`PipelineConfig`). Nothing here imports pytest or Keras.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_checks.model.applications import resolve_application_name

DEFAULT_MODELS = ("ResNet50", "InceptionV3", "MobileNetV2")


class InvalidSetting(ValueError):
    """A setting's value cannot be used; the message names its source."""


def _received(value: Any) -> str:
    return f"received: {value!r} of type {type(value).__name__}"


def _checked_type(value: Any, types: tuple[type, ...], expected: str) -> Any:
    """`value` when it is one of `types` (never a bool, which TOML and Python count as 0 or 1)."""
    if isinstance(value, bool) or not isinstance(value, types):
        raise ValueError(f"expected {expected}; {_received(value)}")
    return value


def _checked_names(value: Any, expected: str) -> list[str]:
    """A comma-separated string, or a list of strings: the names, stripped, empties left out."""
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value):
        names = list(value)
    else:
        raise ValueError(f"expected {expected}; {_received(value)}")
    return [name.strip() for name in names if name.strip()]


def _parse_seed(value: Any) -> int:
    expected = "a non-negative integer"
    text = str(_checked_type(value, (int, str), expected)).strip()
    if not text.isdigit():
        raise ValueError(f"expected {expected}")
    return int(text)


def _parse_models(value: Any) -> tuple[str, ...]:
    expected = "a comma-separated list of keras.applications names"
    names = _checked_names(value, f"{expected}, or a list of them")
    if not names:
        raise ValueError(f"expected {expected}")
    return tuple(resolve_application_name(n) for n in names)


def _parse_image_size(value: Any) -> int | None:
    expected = "a positive integer or 'min'"
    text = str(_checked_type(value, (int, str), expected)).strip()
    if text.lower() == "min":
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected {expected}")
    return int(text)


_PIPELINE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _parse_pipelines(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    specs = _checked_names(
        value, "'package.module:factory' names, in a list or one string separated by commas or spaces"
    )
    wrong = [spec for spec in specs if not _PIPELINE_SPEC.match(spec)]
    if wrong or not specs:
        raise ValueError(f"expected 'package.module:factory' names; {', '.join(map(repr, wrong)) or 'none'} given")
    return tuple(specs)


def _parse_directory(value: Any) -> Path:
    text = str(_checked_type(value, (str, os.PathLike), "a directory path, a string")).strip()
    if not text:
        raise ValueError("expected a directory path")
    return Path(text)


def _parse_shard(value: Any) -> tuple[int, int]:
    expected = "INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 1/3"
    text = str(_checked_type(value, (str,), f"a string, {expected}")).strip()
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"expected {expected}")
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
        "pipeline-checks fixtures, and of the checks' training runs (default: 0; with pytest-randomly "
        "active, a test using only pc_seed follows its seed, the checks never do).",
        _parse_seed,
        None,
        "INT",
    ),
    Knob(
        "models",
        "Comma-separated keras.applications names the built-in classifiers use (default: "
        f"{','.join(DEFAULT_MODELS)}, with one built-in pipeline of each other kind, a regression CNN).",
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
                f"Unknown setting(s) {', '.join(unknown)} from {source}; known: {', '.join(KNOBS_BY_NAME)}"
            )
        parsed = {name: _parse(KNOBS_BY_NAME[name], value, source) for name, value in overrides.items()}
        return dataclasses.replace(self, **parsed)


def _parse(knob: Knob, value: Any, source: str) -> Any:
    """The knob's parsed value; InvalidSetting naming the source, the key as written there and the value."""
    try:
        return knob.parse(value)
    except ValueError as error:
        if source == TOOL_TABLE:
            raise InvalidSetting(f"Invalid {TOOL_TABLE} {knob.name} = {value!r}: {error}") from None
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

    example = f"e.g. [tool.pipeline_checks.{PER_PIPELINE_KEY}.my-pipeline] with overfit = {{target_accuracy = 0.9}}"
    if not isinstance(table, dict):
        raise InvalidSetting(
            f"Invalid {TOOL_TABLE} {PER_PIPELINE_KEY} = {table!r}: expected tables named by pipeline, {example}"
        )
    configs = {}
    for name, entry in table.items():
        where = per_pipeline_table(name)
        if not isinstance(entry, dict):
            raise InvalidSetting(
                f"Invalid {TOOL_TABLE} {PER_PIPELINE_KEY}.{name} = {entry!r}: expected a table, {example}"
            )
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
    expected = (
        'expected a table of check family -> reason, e.g. skip = {determinism = "cuDNN kernels are not deterministic"}'
    )
    if not isinstance(value, dict):
        raise InvalidSetting(f"Invalid {where} {SKIP_KEY} = {value!r}: {expected}")
    for family, reason in value.items():
        if family not in families:
            raise InvalidSetting(
                f"Invalid {where} {SKIP_KEY}.{family} = {reason!r}: {family!r} is no check family; "
                f"the families are {', '.join(families)}"
            )
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidSetting(
                f"Invalid {where} {SKIP_KEY}.{family} = {reason!r}: expected the reason, a non-empty string"
            )
    return {family: reason.strip() for family, reason in value.items()}


def resolve(
    cli_value: Callable[[Knob], Any],
    ini_value: Callable[[Knob], Any],
    tool_table: dict[str, Any] | None = None,
    unknown_key: Callable[[str], None] | None = None,
) -> Settings:
    """Resolve every knob once: CLI > ini > pyproject.toml's [tool.pipeline_checks] > default.

    Args:
        cli_value: returns the knob's command-line value, or None when not given.
        ini_value: returns the knob's ini value, or None/"" when not set.
        tool_table: the `[tool.pipeline_checks]` table of pyproject.toml, keyed by knob name.
        unknown_key: called with the message for each key of `tool_table` that is unlike any known
            key (pytest's rule for unknown ini keys: a warning, an error under --strict-config);
            by default InvalidSetting. A key close to a known one is always InvalidSetting.
    """
    tool_table = dict(tool_table or {})
    per_pipeline = parse_per_pipeline(tool_table.pop(PER_PIPELINE_KEY)) if PER_PIPELINE_KEY in tool_table else {}
    tolerances = (
        _parse_tolerances(tool_table.pop(TOLERANCES_KEY), f"{TOOL_TABLE} {TOLERANCES_KEY}")
        if TOLERANCES_KEY in tool_table
        else ()
    )
    _unknown_keys(tool_table, unknown_key)
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


KNOWN_KEYS = (*KNOBS_BY_NAME, PER_PIPELINE_KEY, TOLERANCES_KEY)


def _unknown_keys(tool_table: dict[str, Any], unknown_key: Callable[[str], None] | None) -> None:
    """A misspelt key leaves its setting to the default, silently: close to a known key, it is an error."""
    for key in sorted(set(tool_table) - set(KNOWN_KEYS)):
        close = difflib.get_close_matches(_normalized(key), [_normalized(k) for k in KNOWN_KEYS], n=2, cutoff=0.75)
        known = f"known: {', '.join(KNOWN_KEYS)}"
        if close or unknown_key is None:
            hint = f"did you mean {' or '.join(k for k in KNOWN_KEYS if _normalized(k) in close)}? " if close else ""
            raise InvalidSetting(f"Unknown setting {key} in {TOOL_TABLE}; {hint}{known}")
        unknown_key(f"Unknown setting {key} in {TOOL_TABLE} (ignored); {known}")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.\s]", "", str(name)).lower()


TOOL_NAME = "pipeline_checks"


def read_tool_table(pyproject: Path) -> dict[str, Any]:
    """The [tool.pipeline_checks] table of `pyproject`, or {} where it has none.

    A `tool` table or key named close to pipeline_checks ([tool.pipeline-checks],
    [tool.pipeline_check]) is InvalidSetting naming it: read as no configuration, it would leave
    the project's pipelines unchecked and the built-in ones passing in their place.
    """
    if not pyproject.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InvalidSetting(f"Cannot read {pyproject}: {error}") from None
    if not isinstance(tool, dict):
        return {}
    for name in tool:
        if name != TOOL_NAME and (
            _normalized(name) == _normalized(TOOL_NAME)
            or difflib.get_close_matches(_normalized(name), [_normalized(TOOL_NAME)], cutoff=0.8)
        ):
            raise InvalidSetting(
                f"Invalid {pyproject.name} [tool.{name}]: pipeline-checks reads [tool.{TOOL_NAME}] "
                "(with an underscore); rename the table, or the built-in pipelines are checked in place of yours"
            )
    table = tool.get(TOOL_NAME, {})
    if not isinstance(table, dict):
        raise InvalidSetting(
            f"Invalid {pyproject.name} [tool] {TOOL_NAME} = {table!r}: expected a table, "
            f'[tool.{TOOL_NAME}] with e.g. pipelines = ["my_project.pipelines:make_pipeline"]'
        )
    return table
