"""The settings resolver: precedence and errors that name their source."""

import pytest

from pipeline_checks.pytest_plugin.settings import (
    DEFAULT_MODELS,
    InvalidSetting,
    PipelineConfig,
    Settings,
    resolve,
)


def resolved(cli=None, ini=None):
    cli, ini = cli or {}, ini or {}
    return resolve(lambda knob: cli.get(knob.name), lambda knob: ini.get(knob.name, ""))


def test_defaults():
    assert resolved() == Settings(seed=None, models=DEFAULT_MODELS, image_size=None)


def test_command_line_beats_ini():
    settings = resolved(cli={"seed": "7"}, ini={"seed": "3", "image_size": "48"})
    assert (settings.seed, settings.image_size) == (7, 48)


def test_models_are_canonicalised_case_insensitively():
    assert resolved(ini={"models": "resnet50, mobilenetv2"}).models == ("ResNet50", "MobileNetV2")


def test_image_size_min_means_each_models_minimum():
    assert resolved(cli={"image_size": "min"}).image_size is None


def test_marker_overrides_take_python_values():
    settings = resolved(cli={"seed": "1"}).with_overrides({"seed": 5, "models": ["VGG16"]}, "marker")
    assert (settings.seed, settings.models) == (5, ("VGG16",))


@pytest.mark.parametrize(
    "cli, ini, message",
    [
        ({"seed": "x"}, {}, "Invalid pc_seed 'x' from command line --pc-seed: expected a non-negative integer"),
        ({}, {"seed": "-1"}, "Invalid pc_seed '-1' from ini file: expected a non-negative integer"),
        ({}, {"seed": "1.5"}, "Invalid pc_seed '1.5' from ini file"),
        ({"image_size": "0"}, {}, "Invalid pc_image_size '0' from command line --pc-image-size: expected a positive integer or 'min'"),
        ({}, {"image_size": "big"}, "Invalid pc_image_size 'big' from ini file"),
        ({"models": "ResNet51"}, {}, "Invalid pc_models 'ResNet51' from command line --pc-models: Unknown application 'ResNet51'; expected one of: DenseNet121,"),
        ({}, {"models": " , "}, "Invalid pc_models ' , ' from ini file: expected a comma-separated list"),
    ],
    ids=["seed-word-cli", "seed-negative-ini", "seed-float-ini", "size-zero-cli", "size-word-ini", "unknown-model-cli", "empty-models-ini"],
)
def test_invalid_values_name_their_source(cli, ini, message):
    with pytest.raises(InvalidSetting) as error:
        resolved(cli=cli, ini=ini)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"seed": True}, "Invalid pc_seed True from marker"),
        ({"image_size": -3}, "Invalid pc_image_size -3 from marker"),
        ({"colour": 1}, "Unknown setting(s) colour from marker; known: seed, models, image_size"),
    ],
    ids=["seed-bool", "size-negative", "unknown-keyword"],
)
def test_invalid_marker_overrides(overrides, message):
    with pytest.raises(InvalidSetting) as error:
        Settings().with_overrides(overrides, "marker")
    assert str(error.value).startswith(message)


def test_per_pipeline_tables_parse_beside_the_knobs():
    table = {
        "pipelines": ["pkg.mod:make"],
        "seed": 4,
        "pipeline": {"resnet-photos": {"skip": {"determinism": " cuDNN "}, "overfit": {"target_accuracy": 0.9}}},
    }
    settings = resolve(lambda knob: None, lambda knob: "", table)
    assert settings.seed == 4 and settings.pipelines == ("pkg.mod:make",)
    config = settings.per_pipeline["resnet-photos"]
    assert config == PipelineConfig(skip={"determinism": "cuDNN"}, options={"overfit": {"target_accuracy": 0.9}})
    assert settings.with_overrides({"seed": 1}, "marker").per_pipeline == settings.per_pipeline


@pytest.mark.parametrize(
    "table, message",
    [
        ({"pipeline": ["a"]}, "Invalid pyproject.toml [tool.pipeline_checks] pipeline = ['a']: expected tables named by pipeline"),
        ({"pipeline": {"a": 1}}, "Invalid pyproject.toml [tool.pipeline_checks] pipeline.a = 1: expected a table"),
        ({"pipeline": {"a": {"skip": {"colour": "x"}}}}, "Invalid pyproject.toml [tool.pipeline_checks.pipeline.a] skip.colour = 'x': 'colour' is no check family"),
        ({"pipeline": {"a": {"overfit": 0.9}}}, "Invalid pyproject.toml [tool.pipeline_checks.pipeline.a] overfit = 0.9: expected a table of overfit's keyword arguments"),
        ({"pipelin": {}}, "Unknown setting(s) pipelin in pyproject.toml [tool.pipeline_checks]; known: seed, models, image_size, pipelines, report, shard, baseline_dir, pipeline, baseline_tolerances"),
    ],
    ids=["not-tables", "entry-not-a-table", "skip-unknown-family", "options-not-a-table", "misspelt-table"],
)
def test_invalid_per_pipeline_tables_name_the_key_and_the_value(table, message):
    with pytest.raises(InvalidSetting) as error:
        resolve(lambda knob: None, lambda knob: "", table)
    assert str(error.value).startswith(message)
