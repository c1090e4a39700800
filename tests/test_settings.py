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
        (
            {"image_size": "0"},
            {},
            "Invalid pc_image_size '0' from command line --pc-image-size: expected a positive integer or 'min'",
        ),
        ({}, {"image_size": "big"}, "Invalid pc_image_size 'big' from ini file"),
        (
            {"models": "ResNet51"},
            {},
            "Invalid pc_models 'ResNet51' from command line --pc-models: Unknown application 'ResNet51'; expected one "
            "of: DenseNet121,",
        ),
        ({}, {"models": " , "}, "Invalid pc_models ' , ' from ini file: expected a comma-separated list"),
    ],
    ids=[
        "seed-word-cli",
        "seed-negative-ini",
        "seed-float-ini",
        "size-zero-cli",
        "size-word-ini",
        "unknown-model-cli",
        "empty-models-ini",
    ],
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
        (
            {"pipeline": ["a"]},
            "Invalid pyproject.toml [tool.pipeline_checks] pipeline = ['a']: expected tables named by pipeline",
        ),
        ({"pipeline": {"a": 1}}, "Invalid pyproject.toml [tool.pipeline_checks] pipeline.a = 1: expected a table"),
        (
            {"pipeline": {"a": {"skip": {"colour": "x"}}}},
            "Invalid pyproject.toml [tool.pipeline_checks.pipeline.a] skip.colour = 'x': 'colour' is no check family",
        ),
        (
            {"pipeline": {"a": {"overfit": 0.9}}},
            "Invalid pyproject.toml [tool.pipeline_checks.pipeline.a] overfit = 0.9: expected a table of overfit's "
            "keyword arguments",
        ),
        (
            {"pipelin": {}},
            "Unknown setting pipelin in pyproject.toml [tool.pipeline_checks]; did you mean pipelines or pipeline? "
            "known: seed, models, image_size, pipelines, report, shard, baseline_dir, pipeline, baseline_tolerances",
        ),
    ],
    ids=["not-tables", "entry-not-a-table", "skip-unknown-family", "options-not-a-table", "misspelt-table"],
)
def test_invalid_per_pipeline_tables_name_the_key_and_the_value(table, message):
    with pytest.raises(InvalidSetting) as error:
        resolve(lambda knob: None, lambda knob: "", table)
    assert str(error.value).startswith(message)


# --- pyproject.toml: every value type-checked, misspelt names refused -----------------------------


def from_pyproject(table, unknown_key=None):
    return resolve(lambda knob: None, lambda knob: "", table, unknown_key)


@pytest.mark.parametrize(
    "table, message",
    [
        (
            {"models": 5},
            "Invalid pyproject.toml [tool.pipeline_checks] models = 5: expected a comma-separated list of "
            "keras.applications names, or a list of them; received: 5 of type int",
        ),
        (
            {"models": ["ResNet50", 5]},
            "Invalid pyproject.toml [tool.pipeline_checks] models = ['ResNet50', 5]: expected a comma-separated list",
        ),
        (
            {"report": 5},
            "Invalid pyproject.toml [tool.pipeline_checks] report = 5: expected a directory path, a string; received: "
            "5 of type int",
        ),
        (
            {"baseline_dir": []},
            "Invalid pyproject.toml [tool.pipeline_checks] baseline_dir = []: expected a directory path, a string; "
            "received: [] of type list",
        ),
        (
            {"baseline_dir": {"a": 1}},
            "Invalid pyproject.toml [tool.pipeline_checks] baseline_dir = {'a': 1}: expected a directory path, a "
            "string; received: {'a': 1} of type dict",
        ),
        (
            {"report": True},
            "Invalid pyproject.toml [tool.pipeline_checks] report = True: expected a directory path, a string; "
            "received: True of type bool",
        ),
        (
            {"seed": [1]},
            "Invalid pyproject.toml [tool.pipeline_checks] seed = [1]: expected a non-negative integer; received: [1] "
            "of type list",
        ),
        (
            {"seed": True},
            "Invalid pyproject.toml [tool.pipeline_checks] seed = True: expected a non-negative integer; received: "
            "True of type bool",
        ),
        (
            {"image_size": 1.5},
            "Invalid pyproject.toml [tool.pipeline_checks] image_size = 1.5: expected a positive integer or 'min'; "
            "received: 1.5 of type float",
        ),
        (
            {"pipelines": 3},
            "Invalid pyproject.toml [tool.pipeline_checks] pipelines = 3: expected 'package.module:factory' names, in "
            "a list or one string",
        ),
        (
            {"pipelines": [{"a": "b"}]},
            "Invalid pyproject.toml [tool.pipeline_checks] pipelines = [{'a': 'b'}]: expected "
            "'package.module:factory' names",
        ),
        (
            {"shard": 2},
            "Invalid pyproject.toml [tool.pipeline_checks] shard = 2: expected a string, INDEX/COUNT with 1 <= INDEX "
            "<= COUNT, e.g. 1/3; received: 2 of type int",
        ),
        ({"report": " "}, "Invalid pyproject.toml [tool.pipeline_checks] report = ' ': expected a directory path"),
    ],
    ids=[
        "models-int",
        "models-list-of-int",
        "report-int",
        "baseline-dir-list",
        "baseline-dir-table",
        "report-bool",
        "seed-list",
        "seed-bool",
        "image-size-float",
        "pipelines-int",
        "pipelines-table",
        "shard-int",
        "report-blank",
    ],
)
def test_every_pyproject_value_is_type_checked_naming_the_key_and_the_value(table, message):
    with pytest.raises(InvalidSetting) as error:
        from_pyproject(table)
    assert str(error.value).startswith(message)


def test_pyproject_values_of_the_right_types_resolve():
    settings = from_pyproject({"models": ["resnet50"], "report": "out", "seed": 3, "image_size": "min", "shard": "1/2"})
    assert (settings.models, str(settings.report), settings.seed, settings.image_size, settings.shard) == (
        ("ResNet50",),
        "out",
        3,
        None,
        (1, 2),
    )


@pytest.mark.parametrize(
    "key, close",
    [
        ("modles", "models"),
        ("seeds", "seed"),
        ("pipeline-s", "pipelines"),
        ("baseline_directory", "baseline_dir"),
        ("Report", "report"),
    ],
)
def test_a_key_close_to_a_known_one_is_an_error_whatever_the_strictness(key, close):
    warned = []
    with pytest.raises(InvalidSetting) as error:
        from_pyproject({key: "x"}, unknown_key=warned.append)
    assert str(error.value).startswith(
        f"Unknown setting {key} in pyproject.toml [tool.pipeline_checks]; did you mean {close}"
    )
    assert warned == []


def test_a_key_unlike_any_known_one_goes_to_the_unknown_key_rule():
    warned = []
    assert from_pyproject({"colour": "red", "seed": 2}, unknown_key=warned.append).seed == 2
    assert warned == [
        "Unknown setting colour in pyproject.toml [tool.pipeline_checks] (ignored); known: seed, models, image_size, "
        "pipelines, report, shard, baseline_dir, pipeline, baseline_tolerances"
    ]
    with pytest.raises(InvalidSetting, match="Unknown setting colour"):
        from_pyproject({"colour": "red"})  # without a rule: an error


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[tool.pipeline-checks]\npipelines = ["my:good"]\n',
            "Invalid pyproject.toml [tool.pipeline-checks]: pipeline-checks reads [tool.pipeline_checks] (with an "
            "underscore)",
        ),
        (
            "[tool.pipeline_check]\nseed = 1\n",
            "Invalid pyproject.toml [tool.pipeline_check]: pipeline-checks reads [tool.pipeline_checks]",
        ),
        (
            "[tool.Pipeline_Checks]\nseed = 1\n",
            "Invalid pyproject.toml [tool.Pipeline_Checks]: pipeline-checks reads [tool.pipeline_checks]",
        ),
        (
            '[tool]\npipeline_checks = ["my:good"]\n',
            "Invalid pyproject.toml [tool] pipeline_checks = ['my:good']: expected a table, [tool.pipeline_checks]",
        ),
        (
            '[tool]\npipeline-checks = "my:good"\n',
            "Invalid pyproject.toml [tool.pipeline-checks]: pipeline-checks reads [tool.pipeline_checks]",
        ),
        ("[tool.pipeline_checks\n", "Cannot read "),
    ],
    ids=["hyphen", "singular", "capitals", "tool-key-not-a-table", "tool-key-hyphen", "not-toml"],
)
def test_a_misspelt_tool_table_is_an_error_naming_it(tmp_path, text, message):
    from pipeline_checks.pytest_plugin.settings import read_tool_table

    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(InvalidSetting) as error:
        read_tool_table(tmp_path / "pyproject.toml")
    assert str(error.value).startswith(message)


def test_other_tools_tables_are_left_alone(tmp_path):
    from pipeline_checks.pytest_plugin.settings import read_tool_table

    (tmp_path / "pyproject.toml").write_text(
        "[tool.pipelines]\na = 1\n[tool.ruff]\nline-length = 1\n[tool.pipeline_checks]\nseed = 1\n"
    )
    assert read_tool_table(tmp_path / "pyproject.toml") == {"seed": 1}
    assert read_tool_table(tmp_path / "missing.toml") == {}
