"""The plugin's fixtures: settings and seeds, dataset and model factories, the step benchmark,
and `pc_check` and `pc_baseline`, which run the checks and record their results.

`plugin.py` imports them, so pytest finds them in the plugin's namespace; Keras loads when a
fixture is first used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings

import pytest

from pipeline_checks.pytest_plugin import durations, seeding
from pipeline_checks.pytest_plugin import settings as settings_module
from pipeline_checks.pytest_plugin.keys import (
    CHECK_NUMBERS_KEY,
    DEVICES_KEY,
    FRAMEWORK_MODULES,
    ITEM_RESULTS_KEY,
    MARKER,
    SETTINGS_KEY,
)
from pipeline_checks.pytest_plugin.settings import InvalidSetting, Settings


@pytest.fixture
def pc_settings(request: pytest.FixtureRequest) -> Settings:
    """The resolved pipeline-checks settings for this test, marker overrides applied."""
    resolved = request.config.stash[SETTINGS_KEY]
    # iter_markers yields the closest first; apply outermost first so the closest wins.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keywords only, e.g. seed=1; received: {marker.args!r}", pytrace=False
            )
        try:
            resolved = resolved.with_overrides(marker.kwargs, f"@pytest.mark.{MARKER} on {request.node.nodeid}")
        except InvalidSetting as error:
            pytest.fail(str(error), pytrace=False)
    return resolved


@pytest.fixture
def pc_seed(pc_settings: Settings) -> int:
    """The seed this test started from; Python, NumPy and Keras are seeded with it."""
    yield seeding.start_test(pc_settings.seed)
    seeding.end_test()


@pytest.fixture
def _pc_check_seed(pc_settings: Settings) -> int:
    """The seed of `pc_check` and `pc_baseline`: --pc-seed, else 0, never pytest-randomly's (the
    pipeline's tests share one training run, which its baseline records); set without clearing
    the traced functions that the shared run's checks reuse (each check seeds what it trains itself)."""
    yield seeding.start_check_test(pc_settings.seed)
    seeding.end_test()


@pytest.fixture
def tiny_images(pc_settings: Settings, pc_seed: int, tmp_path):
    """Factory of tiny image datasets; see `pipeline_checks.make_tiny_images`.

    Defaults: `size` from --pc-image-size (else 32), `seed` from --pc-seed. `size`
    takes an int (square images) or `(height, width)`. The datasets' `to_directory()`
    writes under this test's tmp_path.

    Example:
        def test_loader(tiny_images):
            data = tiny_images(classes=3, per_class=2, kind="photos", size=(24, 40))
            batches = data.image_dataset_from_directory(label_mode="categorical")
    """
    from pipeline_checks.testing.datasets import make_tiny_images

    made = 0

    def make(classes=3, per_class=2, size=None, channels=3, seed=None, kind="patterns"):
        nonlocal made
        made += 1
        data = make_tiny_images(
            classes=classes,
            per_class=per_class,
            size=(pc_settings.image_size or 32) if size is None else size,
            channels=channels,
            seed=pc_seed if seed is None else seed,
            kind=kind,
        )
        return dataclasses.replace(data, scratch_dir=tmp_path / f"tiny_images_{made}")

    return make


@pytest.fixture
def keras_application(pc_settings: Settings, pc_seed: int):
    """Factory of `keras.applications` models; see `pipeline_checks.build_application`.

    `input_shape` defaults to --pc-image-size, else the model's smallest input.
    The Keras session is cleared after the test to free the models' memory.

    Example:
        def test_resnet(keras_application):
            model, preprocess_input = keras_application("ResNet50", classes=3)
    """
    from pipeline_checks.model import compat
    from pipeline_checks.model.applications import build_application

    built = []

    def build(name, classes=3, input_shape=None, channels=3, weights=None, **kwargs):
        if input_shape is None:
            input_shape = pc_settings.image_size
        application = build_application(
            name, classes=classes, input_shape=input_shape, channels=channels, weights=weights, **kwargs
        )
        built.append(application.name)
        return application

    yield build
    if built:
        compat.keras().backend.clear_session()


@pytest.fixture
def train_step_benchmark(benchmark, request: pytest.FixtureRequest, pc_seed: int):
    """Time compiled training steps with pytest-benchmark; see `pipeline_checks.pytest_plugin.benchmark`.

    Example:
        def test_step(train_step_benchmark, keras_application, tiny_images):
            model, preprocess_input = keras_application("MobileNetV2", classes=3)
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            data = tiny_images(classes=3, per_class=3)
            train_step_benchmark(model, preprocess_input(data.images.astype("float32")), data.labels)
    """
    from pipeline_checks.pytest_plugin.benchmark import StepBenchmark

    devices = request.config.stash[DEVICES_KEY]
    return StepBenchmark(benchmark, on_facts=lambda facts: devices.add(facts.device))


@pytest.fixture
def pipeline(request: pytest.FixtureRequest):
    """The pipeline under check: each declared pipeline in turn.

    Declared with --pc-pipelines, the pc_pipelines ini key or `pipelines` in
    pyproject.toml's [tool.pipeline_checks]; by default the built-in pipelines for
    --pc-models. Override this fixture in the rootdir conftest.py to give your own.
    """
    if not hasattr(request, "param"):
        pytest.fail(
            "the pipeline fixture is parametrized by pipeline-checks; this test was collected without it", pytrace=False
        )
    return request.param


@pytest.fixture
def pc_check(request: pytest.FixtureRequest, _pc_check_seed: int):
    """Run a check family on a pipeline, record it for the summary, fail when it fails.

    Example:
        def test_my_pipeline_labels(pipeline, pc_check):
            pc_check("labels", pipeline)
    """
    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.pytest_plugin import check_errors

    checks = all_checks()
    per_pipeline = request.config.stash[SETTINGS_KEY].per_pipeline

    def run(family: str, pipeline, **options):
        __tracebackhide__ = True
        if family not in checks:
            raise ValueError(f"unknown check family {family!r}; expected one of: {', '.join(checks)}")
        configured = per_pipeline.get(getattr(pipeline, "name", None))
        where = settings_module.per_pipeline_table(getattr(pipeline, "name", "?"))
        if configured is not None and family in configured.skip:
            pytest.skip(f"{configured.skip[family]} ({where} skip.{family})")
        from_config = dict(configured.options.get(family, {})) if configured is not None else {}
        refused = None
        request.node.stash[check_errors.CHECKING_KEY] = family  # an error is this family's, in the summary
        try:
            with _quiet_framework_deprecations(), durations.measured(pipeline, _pc_check_seed) as measured:
                result = checks[family](pipeline, seed=_pc_check_seed, **{**from_config, **options})
        except PipelineRunError as error:  # the pipeline's own code raised: its message, not our frames
            pytest.fail(check_errors.run_error_message(request, error, pipeline, _pc_check_seed), pytrace=False)
        except (ValueError, TypeError) as error:
            if not set(from_config) - set(options):
                raise
            refused = f"Invalid {where} {family} = {from_config!r}: {error}"
        if refused is not None:  # a value from pyproject.toml that the check refuses: name where it came from
            pytest.fail(refused, pytrace=False)
        durations.record(request.node, result.pipeline, family, measured)
        request.config.stash[CHECK_NUMBERS_KEY].setdefault((pipeline.name, _pc_check_seed), {})[family] = (
            result.to_dict()["numbers"]
        )
        _record(request, result)
        return result

    return run


@pytest.fixture
def pc_baseline(request: pytest.FixtureRequest, _pc_check_seed: int):
    """Compare a pipeline's run with its baseline file; record the result; fail when figures moved.

    The fingerprint takes the numbers of the checks that ran on the pipeline before it in this
    session (the suite runs test_baseline after the nine checks). See docs/baselines.md.

    Example:
        def test_my_pipeline_baseline(pipeline, pc_baseline):
            pc_baseline(pipeline)
    """
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.pytest_plugin import check_errors
    from pipeline_checks.pytest_plugin.baselines import check_baseline

    settings = request.config.stash[SETTINGS_KEY]

    def run(pipeline):
        __tracebackhide__ = True
        configured = settings.per_pipeline.get(pipeline.name)
        if configured is not None and settings_module.BASELINE_FAMILY in configured.skip:
            where = settings_module.per_pipeline_table(pipeline.name)
            pytest.skip(
                f"{configured.skip[settings_module.BASELINE_FAMILY]} ({where} skip.{settings_module.BASELINE_FAMILY})"
            )
        request.node.stash[check_errors.CHECKING_KEY] = settings_module.BASELINE_FAMILY
        try:
            with _quiet_framework_deprecations(), durations.measured(pipeline, _pc_check_seed) as measured:
                result = check_baseline(
                    request,
                    pipeline,
                    _pc_check_seed,
                    directory=settings.baseline_dir,
                    update=request.config.getoption("pc_update_baselines"),
                    builtin=not settings.pipelines,
                    overrides=(*(configured.baseline_tolerances if configured else ()), *settings.baseline_tolerances),
                    check_numbers=request.config.stash[CHECK_NUMBERS_KEY].get((pipeline.name, _pc_check_seed), {}),
                )
        except PipelineRunError as error:
            pytest.fail(check_errors.run_error_message(request, error, pipeline, _pc_check_seed), pytrace=False)
        except ValueError as error:  # an unreadable baseline file: the message names it
            pytest.fail(str(error), pytrace=False)
        durations.record(request.node, result.pipeline, result.name, measured)
        _record(request, result)
        return result

    return run


def _record(request: pytest.FixtureRequest, result) -> None:
    """Keep the result for the summary, the report and junit; fail the test when it failed."""
    __tracebackhide__ = True
    from pipeline_checks.results import summary

    request.node.stash.setdefault(ITEM_RESULTS_KEY, []).append(result.to_dict())
    request.node.user_properties.extend(summary.junit_properties(result))
    result.raise_if_failed()


@contextlib.contextmanager
def _quiet_framework_deprecations():
    """Ignore DeprecationWarnings that the frameworks raise inside a check's own calls (only those)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=FRAMEWORK_MODULES)
        yield
