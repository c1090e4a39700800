"""pytest wiring only: options, markers, the report header, fixtures and the built-in suite.

Loaded in every pytest run of a repository that installs pipeline-checks, so it
imports nothing heavy at module level; Keras loads when a fixture is first used. It
registers only its own, namespaced markers and leaves the repository's tests alone.

Under pytest-xdist (`-n N`) each check's result travels from the worker to the controller
on its test report, as plain data, and the controller prints the summary and writes the
report; every test of one pipeline carries `xdist_group(<pipeline>)`, and `-n` with
`--pipeline-checks` selects `--dist loadgroup` unless `--dist` is given, so one worker
trains each pipeline once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
import warnings
from pathlib import Path

import pytest

from pipeline_checks.pytest_plugin import (
    durations,
    hypothesis_profile,  # noqa: F401 - registers the "pipeline-checks" profile
)
from pipeline_checks.pytest_plugin import seeding
from pipeline_checks.pytest_plugin import settings as settings_module
from pipeline_checks.pytest_plugin.settings import KNOBS, InvalidSetting, Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
DEVICES_KEY = pytest.StashKey[set]()
PIPELINES_KEY = pytest.StashKey[list]()
RESULTS_KEY = pytest.StashKey[list]()  # (order, CheckResult) pairs, from this process or from workers
ORDER_KEY = pytest.StashKey[dict]()  # nodeid -> position in the session's items
EMPTY_SHARD_KEY = pytest.StashKey[bool]()  # --pc-shard left this run nothing
ITEM_RESULTS_KEY = pytest.StashKey[list]()  # the results one test recorded, as plain data
CHECK_NUMBERS_KEY = pytest.StashKey[dict]()  # (pipeline, seed) -> family -> numbers, for the baseline's fingerprint
# The attribute of a test report that carries its check results (plain data: it crosses from
# pytest-xdist workers to the controller with the report).
REPORT_ATTRIBUTE = "pipeline_checks_results"
GPU_MARKER = "pipeline_checks_gpu"
# Framework modules whose DeprecationWarnings, raised inside a check's own Keras calls, are
# not findings about the pipeline (a small run raised ~1,100 of them into the warning summary).
FRAMEWORK_MODULES = r"(keras|tf_keras|tensorflow|jax|jaxlib|torch|numpy|h5py|absl|google\.protobuf|ml_dtypes|optree|flatbuffers)(\..*)?$"
SUITE_NODE_ID = "pipeline-checks"
# The built-in suite `--pipeline-checks` collects: every check family as a test.
SUITE_MODULE = Path(__file__).with_name("suite.py")
MARKER = "pipeline_checks"
OUR_FIXTURES = frozenset(
    {"tiny_images", "keras_application", "pc_settings", "pc_seed", "train_step_benchmark", "pipeline", "pc_check", "pc_baseline"}
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
    group.addoption(
        "--pc-durations",
        action="store_true",
        dest=durations.OPTION,
        help="Print, per pipeline, the seconds spent reading data, building the model, training "
        "(first step with its trace, remaining steps), after_fit and each check's own work.",
    )
    for knob in KNOBS:
        group.addoption(knob.flag, dest=knob.ini_key, default=None, metavar=knob.metavar, help=knob.help)
        parser.addini(knob.ini_key, knob.help)
    group.addoption(
        "--pc-update-baselines",
        action="store_true",
        dest="pc_update_baselines",
        help="Write or refresh the baseline file of each pipeline test_baseline runs on (under --pc-baseline-dir), "
        "and pass; review and commit the files.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=None, models=None, image_size=None): override pipeline-checks "
        "settings for one test (marker > --pc-* option > pc_* ini key > default).",
    )
    config.addinivalue_line(
        "markers", f"{GPU_MARKER}: needs a GPU visible to the Keras backend; skipped with the reason otherwise."
    )
    seeding.start_session()
    config.stash[DEVICES_KEY] = set()
    config.stash[RESULTS_KEY] = []
    config.stash[ORDER_KEY] = {}
    config.stash[CHECK_NUMBERS_KEY] = {}
    config.pluginmanager.register(_ResultCollector(config), "pipeline-checks-results")
    if getattr(config, "workerinput", {}).get("pipeline_checks_loadgroup"):
        # A pytest-xdist worker under the loadgroup mode the controller chose for us: let xdist
        # suffix node ids with their group, as `--dist loadgroup` on the command line would
        # (pytest-xdist 3.8 cannot on pytest 9; PipelineScheduling groups without it).
        config.option.loadgroup = True
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


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """With pytest-xdist's -n and --pipeline-checks, and no --dist given: --dist loadgroup."""
    if not config.getoption("pipeline_checks") or not getattr(config.option, "numprocesses", None):
        return
    if not _dist_given(config):
        config.option.dist = "loadgroup"


def _dist_given(config: pytest.Config) -> bool:
    arguments = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    try:
        arguments += list(config.getini("addopts"))
    except ValueError:
        pass
    return any(str(a) == "-d" or str(a).startswith("--dist") for a in arguments)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist: tell each worker whether the controller chose loadgroup for us."""
    node.workerinput["pipeline_checks_loadgroup"] = node.config.getoption("dist", "no") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist under --dist loadgroup: every test of one declared pipeline goes to one worker."""
    if config.getoption("dist", "no") != "loadgroup":
        return None
    settings = config.stash[SETTINGS_KEY]
    names = [p.name for p in _declared_pipelines(config)] if config.getoption("pipeline_checks") or settings.pipelines else []
    from pipeline_checks.pytest_plugin.xdist_scheduling import PipelineScheduling

    return PipelineScheduling(config, log, names)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Load the declared pipelines before collection, so a bad declaration is a usage error
    # naming it, not a collection error with a traceback.
    if session.config.getoption("pipeline_checks"):
        pipelines = _declared_pipelines(session.config)
        _validate_per_pipeline(session.config.stash[SETTINGS_KEY], pipelines)


def _validate_per_pipeline(settings: Settings, pipelines: list) -> None:
    """Names and keywords of `[tool.pipeline_checks.pipeline.NAME]`; a usage error names key and value."""
    if not settings.per_pipeline:
        return
    import inspect

    from pipeline_checks.checks import all_checks

    names = [p.name for p in pipelines]
    checks = all_checks()
    for name, entry in settings.per_pipeline.items():
        where = settings_module.per_pipeline_table(name)
        if name not in names:
            raise pytest.UsageError(
                f"Invalid {where}: no declared pipeline is named {name!r}; the pipelines are {', '.join(map(repr, names))}"
            )
        for family, options in entry.options.items():
            parameters = [n for n in inspect.signature(checks[family]).parameters if n not in ("pipeline", "seed")]
            for key, value in options.items():
                if key not in parameters:
                    raise pytest.UsageError(
                        f"Invalid {where} {family}.{key} = {value!r}: check_{family} takes no {key!r}; "
                        f"it takes {', '.join(parameters) or 'no options'}"
                    )


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
    shard = config.stash[SETTINGS_KEY].shard
    if shard is not None:
        _keep_shard(config, items, *shard)
    if config.pluginmanager.hasplugin("xdist"):
        # One pipeline's tests share one training run: keep them on one worker (--dist loadgroup).
        for item in items:
            pipeline = _our_pipeline(item)
            if pipeline is not None and not any(True for _ in item.iter_markers("xdist_group")):
                item.add_marker(pytest.mark.xdist_group(name=pipeline.name))
    _skip_gpu_items_without_gpu(items)


def _keep_shard(config: pytest.Config, items: list[pytest.Item], index: int, count: int) -> None:
    """Deselect the tests of pipelines dealt to other shards (pipeline k -> shard k % count + 1)."""

    def shard_of(item: pytest.Item) -> int:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "pipeline" not in callspec.indices:
            return 1  # a test of no declared pipeline: the first shard runs it
        return callspec.indices["pipeline"] % count + 1

    kept = [item for item in items if shard_of(item) == index]
    dropped = [item for item in items if shard_of(item) != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[EMPTY_SHARD_KEY] = not kept


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # More shards than pipelines: an empty shard has nothing to check, which is no failure.
    if session.config.stash.get(EMPTY_SHARD_KEY, False) and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


def pytest_collection_finish(session: pytest.Session) -> None:
    # Results are listed in the order of the items, in a serial run and under pytest-xdist alike.
    session.config.stash[ORDER_KEY] = {item.nodeid: index for index, item in enumerate(session.items)}


def _pipeline_index(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    return callspec.indices.get("pipeline", 0) if callspec else 0


def _our_pipeline(item: pytest.Item):
    """The item's `pipeline` parameter when it is a pipeline_checks.Pipeline, else None."""
    current = getattr(getattr(item, "callspec", None), "params", {}).get("pipeline")
    if current is None:
        return None
    from pipeline_checks.pipelines.pipeline import Pipeline  # NumPy only, no Keras

    return current if isinstance(current, Pipeline) else None


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
    """Only our own marker: a repository's `gpu` marker, if it has one, is its own business."""
    gpu_items = [item for item in items if item.get_closest_marker(GPU_MARKER)]
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
    current = _our_pipeline(item)
    if current is None:
        return  # a project's own `pipeline` parameter may be anything; only ours have runs
    following = getattr(getattr(nextitem, "callspec", None), "params", {}).get("pipeline") if nextitem else None
    if following is not current:
        from pipeline_checks.run.training import forget_shared_runs

        forget_shared_runs(current)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    recorded = item.stash.get(ITEM_RESULTS_KEY, None)
    if call.when == "call" and recorded:
        order = item.config.stash[ORDER_KEY]
        position = order.get(item.nodeid, len(order))
        payload = {"order": position, "results": list(recorded)}
        if durations.recorded(item):  # --pc-durations: each check's seconds, beside the results
            payload["durations"] = durations.recorded(item)
        setattr(outcome.get_result(), REPORT_ATTRIBUTE, payload)


class _ResultCollector:
    """Collects the results test reports carry: from this process, or sent by xdist workers."""

    def __init__(self, config: pytest.Config):
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        recorded = getattr(report, REPORT_ATTRIBUTE, None)
        if not recorded:
            return
        from pipeline_checks.results.check_result import CheckResult

        position = recorded["order"]
        for index, data in enumerate(recorded["results"]):
            self.config.stash[RESULTS_KEY].append(((position, index), CheckResult.from_dict(data)))
        durations.collect(self.config, position, recorded.get("durations", ()))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: its results went to the controller with the reports
    results = [result for _order, result in sorted(config.stash.get(RESULTS_KEY, []), key=lambda pair: pair[0])]
    if not results:
        return
    from pipeline_checks.model import devices
    from pipeline_checks.results import summary

    terminalreporter.write_sep("=", "pipeline-checks summary")
    for line in summary.summary_lines(results):
        terminalreporter.write_line(line)
    timed = durations.session_entries(config)
    if config.getoption(durations.OPTION):
        terminalreporter.write_sep("=", durations.TITLE)
        for line in durations.lines(timed):
            terminalreporter.write_line(line)
    directory = config.stash[SETTINGS_KEY].report
    if directory is not None:
        extra = {"durations": durations.report(timed)} if timed else None
        for line in summary.write_report(results, directory, devices.describe(), extra):
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
    yield seeding.start_test(pc_settings.seed)
    seeding.end_test()


@pytest.fixture
def _pc_check_seed(pc_settings: Settings) -> int:
    """`pc_seed` for `pc_check` and `pc_baseline`: the same seed, set without clearing the traced
    functions that the shared run's checks reuse (each check seeds what it trains itself)."""
    yield seeding.start_test(pc_settings.seed, keep_compiled=True)
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
def pc_check(request: pytest.FixtureRequest, _pc_check_seed: int):
    """Run a check family on a pipeline, record it for the summary, fail when it fails.

    Example:
        def test_my_pipeline_labels(pipeline, pc_check):
            pc_check("labels", pipeline)
    """
    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError

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
        try:
            with _quiet_framework_deprecations(), durations.measured(pipeline, _pc_check_seed) as measured:
                result = checks[family](pipeline, seed=_pc_check_seed, **{**from_config, **options})
        except PipelineRunError as error:  # the pipeline's own code raised: its message, not our frames
            pytest.fail(f"{error}\n(caused by: {type(error.__cause__).__name__}; run the check directly for the traceback)", pytrace=False)
        except (ValueError, TypeError) as error:
            if not set(from_config) - set(options):
                raise
            refused = f"Invalid {where} {family} = {from_config!r}: {error}"
        if refused is not None:  # a value from pyproject.toml that the check refuses: name where it came from
            pytest.fail(refused, pytrace=False)
        durations.record(request.node, result.pipeline, family, measured)
        request.config.stash[CHECK_NUMBERS_KEY].setdefault((pipeline.name, _pc_check_seed), {})[family] = result.to_dict()["numbers"]
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
    from pipeline_checks.pytest_plugin.baselines import check_baseline

    settings = request.config.stash[SETTINGS_KEY]

    def run(pipeline):
        __tracebackhide__ = True
        configured = settings.per_pipeline.get(pipeline.name)
        if configured is not None and settings_module.BASELINE_FAMILY in configured.skip:
            where = settings_module.per_pipeline_table(pipeline.name)
            pytest.skip(f"{configured.skip[settings_module.BASELINE_FAMILY]} ({where} skip.{settings_module.BASELINE_FAMILY})")
        try:
            with _quiet_framework_deprecations(), durations.measured(pipeline, _pc_check_seed) as measured:
                result = check_baseline(
                    request, pipeline, _pc_check_seed,
                    directory=settings.baseline_dir,
                    update=request.config.getoption("pc_update_baselines"),
                    builtin=not settings.pipelines,
                    overrides=(*(configured.baseline_tolerances if configured else ()), *settings.baseline_tolerances),
                    check_numbers=request.config.stash[CHECK_NUMBERS_KEY].get((pipeline.name, _pc_check_seed), {}),
                )
        except PipelineRunError as error:
            pytest.fail(f"{error}\n(caused by: {type(error.__cause__).__name__}; run the check directly for the traceback)", pytrace=False)
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
