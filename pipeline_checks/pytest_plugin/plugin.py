"""pytest wiring only: options, markers, the report header, fixtures and the built-in suite.

Loaded in every pytest run of a repository that installs pipeline-checks, so it
imports nothing heavy at module level; Keras loads when a fixture is first used.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from pipeline_checks.pytest_plugin import settings as settings_module
from pipeline_checks.pytest_plugin.settings import KNOBS, InvalidSetting, Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
DEVICES_KEY = pytest.StashKey[set]()
PIPELINES_KEY = pytest.StashKey[list]()
RESULTS_KEY = pytest.StashKey[list]()
SUITE_NODE_ID = "pipeline-checks"
# The built-in suite `--pipeline-checks` collects: every check family as a test.
SUITE_MODULE = Path(__file__).with_name("suite.py")
MARKER = "pipeline_checks"
OUR_FIXTURES = frozenset(
    {"tiny_images", "keras_application", "pc_settings", "pc_seed", "train_step_benchmark", "pipeline", "pc_check"}
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pipeline-checks", "pipeline-checks: Keras training pipeline checks")
    group.addoption(
        "--pipeline-checks",
        action="store_true",
        dest="pipeline_checks",
        help="Also collect the built-in check suite, run over the declared pipelines (--pc-pipelines) "
        "or the built-in ones (--pc-models).",
    )
    group.addoption(
        "--pc-suite-only",
        action="store_true",
        dest="pc_suite_only",
        help="With --pipeline-checks: collect only the built-in suite, none of the project's tests.",
    )
    for knob in KNOBS:
        group.addoption(knob.flag, dest=knob.ini_key, default=None, metavar=knob.metavar, help=knob.help)
        parser.addini(knob.ini_key, knob.help)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=None, models=None, image_size=None): override pipeline-checks "
        "settings for one test (marker > --pc-* option > pc_* ini key > default).",
    )
    config.addinivalue_line("markers", "gpu: needs a GPU visible to the Keras backend; skipped otherwise.")
    config.addinivalue_line("markers", "slow: takes long (minutes); deselect with -m 'not slow'.")
    config.stash[DEVICES_KEY] = set()
    config.stash[RESULTS_KEY] = []
    try:
        config.stash[SETTINGS_KEY] = settings_module.resolve(
            cli_value=lambda knob: config.getoption(knob.ini_key),
            ini_value=lambda knob: config.getini(knob.ini_key),
            tool_table=_tool_table(config.rootpath / "pyproject.toml"),
        )
    except InvalidSetting as error:
        raise pytest.UsageError(str(error)) from None


def _tool_table(pyproject: Path) -> dict:
    """The [tool.pipeline_checks] table of the rootdir's pyproject.toml, or {}."""
    if not pyproject.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("pipeline_checks", {})
    except tomllib.TOMLDecodeError as error:
        raise pytest.UsageError(f"Cannot read {pyproject}: {error}") from None
    return table if isinstance(table, dict) else {}


def pytest_sessionstart(session: pytest.Session) -> None:
    # Load the declared pipelines before collection, so a bad declaration is a usage error
    # naming it, not a collection error with a traceback.
    if session.config.getoption("pipeline_checks"):
        _declared_pipelines(session.config)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    if config.getoption("pipeline_checks") and config.getoption("pc_suite_only"):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the suite's items are in place before -k and -m deselect.
    if config.getoption("pipeline_checks"):
        module = pytest.Module.from_parent(session, path=SUITE_MODULE, nodeid=SUITE_NODE_ID)
        suite = list(session.genitems(module))
        # Pipeline by pipeline, so each one's training run can be dropped after its last check.
        suite.sort(key=lambda item: _pipeline_index(item))
        items.extend(suite)
    _skip_gpu_items_without_gpu(items)


def _pipeline_index(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    return callspec.indices.get("pipeline", 0) if callspec else 0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pipeline" not in metafunc.fixturenames:
        return
    definitions = metafunc.definition._fixtureinfo.name2fixturedefs.get("pipeline", ())
    closest = definitions[-1].func if definitions else None
    if getattr(closest, "__module__", None) != __name__:
        return  # the project overrides the `pipeline` fixture with its own pipelines
    pipelines = _declared_pipelines(metafunc.config)
    metafunc.parametrize("pipeline", pipelines, ids=[p.name for p in pipelines], indirect=True)


def _declared_pipelines(config: pytest.Config) -> list:
    if PIPELINES_KEY not in config.stash:
        from pipeline_checks.pipelines.declared import (
            PipelineDeclarationError,
            load_declared,
        )
        from pipeline_checks.scenarios.builtin import default_pipelines

        settings = config.stash[SETTINGS_KEY]
        try:
            if settings.pipelines:
                config.stash[PIPELINES_KEY] = load_declared(settings.pipelines)
            else:
                config.stash[PIPELINES_KEY] = default_pipelines(settings.models, settings.image_size)
        except PipelineDeclarationError as error:
            raise pytest.UsageError(str(error)) from None
    return config.stash[PIPELINES_KEY]


def _skip_gpu_items_without_gpu(items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return  # Finding devices imports Keras: only pay for it when a test asks.
    from pipeline_checks.model import compat, devices

    if devices.gpu_available():
        return
    skip = pytest.mark.skip(
        reason=f"needs a GPU; the {compat.backend()} backend sees only {', '.join(devices.devices())}"
    )
    for item in gpu_items:
        item.add_marker(skip)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]):
    if not any(OUR_FIXTURES.intersection(getattr(item, "fixturenames", ())) for item in items):
        return None
    from pipeline_checks.model import devices

    return f"pipeline-checks: {devices.describe()}"


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Drop a pipeline's shared training run once no later test uses that pipeline."""
    current = getattr(getattr(item, "callspec", None), "params", {}).get("pipeline")
    from pipeline_checks.pipelines.pipeline import Pipeline  # NumPy only, no Keras

    if not isinstance(current, Pipeline):
        return  # a project's own `pipeline` parameter may be anything; only ours have runs
    following = getattr(getattr(nextitem, "callspec", None), "params", {}).get("pipeline") if nextitem else None
    if following is not current:
        from pipeline_checks.run.training import forget_shared_runs

        forget_shared_runs(current)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS_KEY, [])
    if not results:
        return
    from pipeline_checks.model import devices
    from pipeline_checks.results import summary

    terminalreporter.write_sep("=", "pipeline-checks summary")
    for line in summary.summary_lines(results):
        terminalreporter.write_line(line)
    directory = config.stash[SETTINGS_KEY].report
    if directory is not None:
        for line in summary.write_report(results, directory, devices.describe()):
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Name the devices training steps ran on, so a baseline says which accelerator it is for."""
    devices = config.stash.get(DEVICES_KEY, set())
    if devices:
        machine_info["pipeline_checks_devices"] = sorted(devices)


@pytest.fixture
def pc_settings(request: pytest.FixtureRequest) -> Settings:
    """The resolved pipeline-checks settings for this test, marker overrides applied."""
    resolved = request.config.stash[SETTINGS_KEY]
    # iter_markers yields the closest first; apply outermost first so the closest wins.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keywords only, e.g. seed=1; received: {marker.args!r}", pytrace=False)
        try:
            resolved = resolved.with_overrides(marker.kwargs, f"@pytest.mark.{MARKER} on {request.node.nodeid}")
        except InvalidSetting as error:
            pytest.fail(str(error), pytrace=False)
    return resolved


@pytest.fixture
def pc_seed(pc_settings: Settings) -> int:
    """The seed this test started from; Python, NumPy and Keras are seeded with it."""
    from pipeline_checks.pytest_plugin import seeding

    yield seeding.start_test(pc_settings.seed)
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
        pytest.fail("the pipeline fixture is parametrized by pipeline-checks; this test was collected without it", pytrace=False)
    return request.param


@pytest.fixture
def pc_check(request: pytest.FixtureRequest, pc_seed: int):
    """Run a check family on a pipeline, record it for the summary, fail when it fails.

    Example:
        def test_my_pipeline_labels(pipeline, pc_check):
            pc_check("labels", pipeline)
    """
    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError

    checks = all_checks()

    def run(family: str, pipeline, **options):
        __tracebackhide__ = True
        if family not in checks:
            raise ValueError(f"unknown check family {family!r}; expected one of: {', '.join(checks)}")
        try:
            result = checks[family](pipeline, seed=pc_seed, **options)
        except PipelineRunError as error:  # the pipeline's own code raised: its message, not our frames
            pytest.fail(f"{error}\n(caused by: {type(error.__cause__).__name__}; run the check directly for the traceback)", pytrace=False)
        request.config.stash[RESULTS_KEY].append(result)
        result.raise_if_failed()
        return result

    return run
