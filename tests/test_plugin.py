"""The plugin as users meet it, in temporary projects run by pytester."""

from pathlib import Path

import pytest

# In-process runs share this interpreter's Keras; pytest-randomly stays off unless a test asks.
NO_RANDOMLY = ("-p", "no:randomly")


def test_help_lists_the_options(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "pipeline-checks: Keras training pipeline checks:",
            "*--pc-seed=INT*",
            "*--pc-models=NAMES*",
            "*--pc-image-size=PIXELS*",
            "*pc_seed (string):*",
            "*pc_models (string):*",
            "*pc_image_size (string):*",
        ]
    )


def test_only_namespaced_markers_are_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.pipeline_checks(seed=None, models=None, image_size=None): *",
            "@pytest.mark.pipeline_checks_gpu: needs a GPU*",
        ]
    )
    result.stdout.no_fnmatch_line("@pytest.mark.gpu*")
    result.stdout.no_fnmatch_line("@pytest.mark.slow*")


def test_a_repository_s_own_gpu_and_slow_markers_are_left_alone(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    gpu: ours: runs on the lab GPU\n    slow: ours: minutes\n")
    pytester.makepyfile(
        """
        import sys

        import pytest

        @pytest.mark.gpu
        def test_on_gpu():
            assert "keras" not in sys.modules  # the plugin did not import Keras to look for a GPU

        @pytest.mark.slow
        def test_slow():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-rs", "--strict-markers", *NO_RANDOMLY)
    result.assert_outcomes(passed=2)
    markers = pytester.runpytest("--markers", *NO_RANDOMLY)
    markers.stdout.fnmatch_lines(["@pytest.mark.gpu: ours: runs on the lab GPU", "@pytest.mark.slow: ours: minutes"])
    assert "needs a GPU visible" not in "\n".join(
        line for line in markers.outlines if line.startswith("@pytest.mark.gpu")
    )


def test_the_plugin_s_own_gpu_marker_skips_with_a_reason_without_a_gpu(pytester):
    from pipeline_checks.model import devices

    if devices.gpu_available():
        pytest.skip("this machine has a GPU, so the pipeline_checks_gpu marker does not skip here")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pipeline_checks_gpu
        def test_on_gpu():
            raise AssertionError("must not run without a GPU")
        """
    )
    result = pytester.runpytest("-rs", "--strict-markers", *NO_RANDOMLY)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*needs a GPU; the * backend sees only CPU:0*"])


def test_the_project_s_own_gpu_and_slow_markers_come_from_its_root_conftest(request):
    descriptions = request.config.getini("markers")
    assert any(line.startswith("gpu:") for line in descriptions)
    assert any(line.startswith("slow:") for line in descriptions)


SHOW_SETTINGS = """
    def test_show(pc_settings):
        print("SETTINGS", pc_settings.seed, ",".join(pc_settings.models), pc_settings.image_size)
"""


@pytest.mark.parametrize(
    "ini, args, expected",
    [
        ("", (), "*SETTINGS None ResNet50,InceptionV3,MobileNetV2 None"),
        ("pc_seed = 3\npc_image_size = 40\npc_models = vgg16", (), "*SETTINGS 3 VGG16 40"),
        (
            "pc_seed = 3\npc_models = vgg16",
            ("--pc-seed=9", "--pc-models=DenseNet121,Xception"),
            "*SETTINGS 9 DenseNet121,Xception None",
        ),
    ],
    ids=["defaults", "ini", "cli-beats-ini"],
)
def test_settings_precedence(pytester, ini, args, expected):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest("-s", *NO_RANDOMLY, *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([expected])


def test_marker_beats_command_line_and_closest_marker_wins(pytester):
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.pipeline_checks(seed=1, image_size=50)

        @pytest.mark.pipeline_checks(seed=2)
        def test_show(pc_settings):
            print("SETTINGS", pc_settings.seed, pc_settings.image_size)
        """
    )
    result = pytester.runpytest("-s", "--pc-seed=8", "--pc-image-size=64", *NO_RANDOMLY)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SETTINGS 2 50"])


@pytest.mark.parametrize(
    "ini, args, message",
    [
        ("pc_seed = many", (), "ERROR: Invalid pc_seed 'many' from ini file: expected a non-negative integer"),
        ("", ("--pc-image-size=-2",), "ERROR: Invalid pc_image_size '-2' from command line --pc-image-size: *"),
        (
            "",
            ("--pc-models=ResNet",),
            "ERROR: Invalid pc_models 'ResNet' from command line --pc-models: Unknown application 'ResNet'; expected "
            "one of: *",
        ),
    ],
    ids=["ini-seed", "cli-size", "cli-model"],
)
def test_invalid_option_values_stop_the_run_naming_their_source(pytester, ini, args, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(SHOW_SETTINGS)
    result = pytester.runpytest(*NO_RANDOMLY, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_invalid_marker_value_fails_that_test_naming_it(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pipeline_checks(image_size="huge")
        def test_show(pc_settings):
            pass
        """
    )
    result = pytester.runpytest(*NO_RANDOMLY)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Invalid pc_image_size 'huge' from @pytest.mark.pipeline_checks on "
            "test_invalid_marker_value_fails_that_test_naming_it.py::test_show: expected a positive integer or 'min'"
        ]
    )


def test_header_line_only_when_our_fixtures_are_used(pytester):
    pytester.makepyfile(test_plain="def test_plain(): pass")
    plain = pytester.runpytest(*NO_RANDOMLY)
    plain.stdout.no_fnmatch_line("pipeline-checks: *")
    pytester.makepyfile(test_ours="def test_ours(pc_seed): pass")
    ours = pytester.runpytest(*NO_RANDOMLY)
    ours.assert_outcomes(passed=2)
    ours.stdout.fnmatch_lines(["pipeline-checks: keras * (backend *), tensorflow *, devices *CPU:0*"])


def test_the_readme_example_runs_as_an_outside_test_file_without_a_conftest(pytester):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```python\n")[1:]]
    example = next(block for block in blocks if "def test_" in block)
    assert "conftest" not in example
    pytester.makepyfile(example)
    result = pytester.runpytest_subprocess(*NO_RANDOMLY)
    result.assert_outcomes(passed=1)


SEEDS = """
    import random

    def test_seeds(pc_seed, tiny_images):
        print("SEED", pc_seed, tiny_images().seed, random.random())
"""


def seed_line(result):
    return next(ln[ln.index("SEED") :] for ln in result.outlines if "SEED" in ln)


def test_tests_start_from_pc_seed(pytester):
    pytester.makepyfile(SEEDS)
    first = pytester.runpytest("-s", "--pc-seed=11", *NO_RANDOMLY)
    second = pytester.runpytest("-s", "--pc-seed=11", *NO_RANDOMLY)
    first.assert_outcomes(passed=1)
    assert seed_line(first).startswith("SEED 11 11 ")
    assert seed_line(first) == seed_line(second)


def test_follows_pytest_randomly_when_pc_seed_is_unset(pytester):
    pytester.makepyfile(SEEDS)
    result = pytester.runpytest("-s", "-p", "randomly", "--randomly-seed=123")
    result.assert_outcomes(passed=1)
    again = pytester.runpytest("-s", "-p", "randomly", "--randomly-seed=123")
    assert seed_line(result) == seed_line(again)
    assert seed_line(result).split()[1] not in ("0", "None")
    pinned = pytester.runpytest("-s", "-p", "randomly", "--randomly-seed=123", "--pc-seed=5")
    assert seed_line(pinned).startswith("SEED 5 5 ")
    # A later session in the same process without pytest-randomly starts from 0 again.
    assert seed_line(pytester.runpytest("-s", *NO_RANDOMLY)).startswith("SEED 0 0 ")


def test_the_hypothesis_profile_for_training_properties():
    from hypothesis import HealthCheck, settings

    from pipeline_checks.pytest_plugin.hypothesis_profile import (
        PROFILE,
        profile_settings,
    )

    profile = settings.get_profile(PROFILE)  # registered when the plugin loads
    assert profile.deadline is None and profile.max_examples == 10
    assert HealthCheck.too_slow in profile.suppress_health_check
    assert profile_settings({"CI": "true"}).derandomize is True
    assert profile_settings({}).derandomize is False
    assert profile_settings({"HYPOTHESIS_EXAMPLES": "25"}).max_examples == 25


def test_a_user_loads_the_hypothesis_profile_in_one_line(pytester):
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st
        settings.load_profile("pipeline-checks")

        @given(st.integers())
        def test_property(value):
            assert settings().deadline is None and settings().max_examples == 10
        """
    )
    pytester.runpytest(*NO_RANDOMLY).assert_outcomes(passed=1)
    pytester.runpytest("--hypothesis-profile=pipeline-checks", *NO_RANDOMLY).assert_outcomes(passed=1)


def test_objects_older_than_a_pipeline_s_tests_are_left_out_of_collections_until_its_last_test(pytester):
    pytester.makepyfile(
        """
        import gc
        import pytest
        from pipeline_checks import Pipeline, make_tiny_images

        DATA = make_tiny_images(classes=2, per_class=1, size=8)
        A, B = (Pipeline(name=name, build_model=lambda: None, data=DATA) for name in "ab")

        def test_before():
            assert gc.get_freeze_count() == 0

        @pytest.mark.parametrize("pipeline", [A, A, B], ids=["a1", "a2", "b"])
        def test_check(pipeline):
            assert gc.get_freeze_count() > 0

        def test_after():
            assert gc.get_freeze_count() == 0
        """
    )
    result = pytester.runpytest_subprocess(*NO_RANDOMLY, "-p", "no:xdist")
    result.assert_outcomes(passed=5)
