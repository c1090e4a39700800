"""pytest wiring only: options, markers, the report header and the built-in suite; the
fixtures live in `fixtures.py` and are imported here, where pytest finds a plugin's fixtures.

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
import os
import shlex
from pathlib import Path

import pytest

from pipeline_checks.pytest_plugin import (
    durations,
    fixtures,
    hypothesis_profile,  # noqa: F401 - registers the "pipeline-checks" profile
    seeding,
    strict_config,
)
from pipeline_checks.pytest_plugin import settings as settings_module
from pipeline_checks.pytest_plugin.fixtures import (  # noqa: F401 - pytest collects them from this module
    _pc_check_seed,
    keras_application,
    pc_baseline,
    pc_check,
    pc_seed,
    pc_settings,
    pipeline,
    tiny_images,
    train_step_benchmark,
)
from pipeline_checks.pytest_plugin.keys import (
    CHECK_NUMBERS_KEY,
    DEVICES_KEY,
    EMPTY_SHARD_KEY,
    GPU_MARKER,
    ITEM_RESULTS_KEY,
    MARKER,
    OLDER_OBJECTS_KEY,
    ORDER_KEY,
    PIPELINES_KEY,
    REPORT_ATTRIBUTE,
    RESULTS_KEY,
    SETTINGS_KEY,
)
from pipeline_checks.pytest_plugin.settings import DEFAULT_MODELS, KNOBS, InvalidSetting, Settings

SUITE_NODE_ID = "pipeline-checks"
# The built-in suite `--pipeline-checks` collects: every check family as a test.
SUITE_MODULE = Path(__file__).with_name("suite.py")
OUR_FIXTURES = frozenset(
    {
        "tiny_images",
        "keras_application",
        "pc_settings",
        "pc_seed",
        "train_step_benchmark",
        "pipeline",
        "pc_check",
        "pc_baseline",
    }
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
            tool_table=settings_module.read_tool_table(config.rootpath / "pyproject.toml"),
            unknown_key=lambda message: strict_config.warn_or_fail_if_strict(config, message),
        )
    except InvalidSetting as error:
        raise pytest.UsageError(str(error)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """With pytest-xdist's -n and --pipeline-checks, and no --dist given: --dist loadgroup.

    Without workers (no -n, no --tx), a --dist from addopts does nothing in pytest-xdist, but
    pytest-benchmark turns itself off whenever --dist is set: it becomes "no", so that
    `pytest --benchmark-enable` times in a project whose addopts say `--dist loadfile`.
    """
    if not (getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None)):
        if getattr(config.option, "dist", "no") != "no":
            config.option.dist = "no"
        return
    if config.getoption("pipeline_checks") and not _dist_given(config):
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
    from pipeline_checks.pytest_plugin.xdist_scheduling import PipelineScheduling

    return PipelineScheduling(config, log, _pipeline_names(config))


def _pipeline_names(config: pytest.Config) -> list[str]:
    """The declared pipelines' names, where this session checks declared pipelines; else none."""
    settings = config.stash[SETTINGS_KEY]
    return (
        [p.name for p in _declared_pipelines(config)]
        if config.getoption("pipeline_checks") or settings.pipelines
        else []
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    """pytest-xdist's controller collects nothing: the order results are listed in is the workers'."""
    order = node.config.stash[ORDER_KEY]
    if not order:
        order.update((nodeid, index) for index, nodeid in enumerate(ids))


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched) -> None:
    """pytest-xdist: a check whose worker died is an error of its pipeline, in the summary and the reports."""
    from pipeline_checks.pytest_plugin import check_errors
    from pipeline_checks.pytest_plugin.xdist_scheduling import GROUP_PREFIX, pipeline_group

    config = sched.config
    group = pipeline_group(crashitem, getattr(sched, "pipeline_names", None) or _pipeline_names(config))
    if group is None:
        return  # a test of no declared pipeline: xdist's own report says it crashed
    order = config.stash[ORDER_KEY]
    result = check_errors.error_result(
        check_errors.family_of_nodeid(crashitem), group[len(GROUP_PREFIX) :], check_errors.failure_message(report)
    )
    check_errors.attach(report, order.get(crashitem, len(order)), result)


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
    from pipeline_checks.checks import all_checks
    from pipeline_checks.checks.family import family_of

    names = [p.name for p in pipelines]
    checks = all_checks()
    for name, entry in settings.per_pipeline.items():
        where = settings_module.per_pipeline_table(name)
        if name not in names:
            raise pytest.UsageError(
                f"Invalid {where}: no declared pipeline is named {name!r}; the pipelines are "
                f"{', '.join(map(repr, names))}"
            )
        for family, options in entry.options.items():
            parameters = list(family_of(checks[family]).options)
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
    _let_older_objects_back(session.config)  # a session stopped inside a pipeline's tests (-x, Ctrl-C)
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
    if getattr(closest, "__module__", None) != fixtures.__name__:
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
                config.stash[PIPELINES_KEY] = load_declared(settings.pipelines, config.rootpath)
            else:
                other_kinds = tuple(settings.models) == DEFAULT_MODELS  # the default suite, not a --pc-models choice
                config.stash[PIPELINES_KEY] = default_pipelines(settings.models, settings.image_size, other_kinds)
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """From a pipeline's first test, leave older objects out of garbage collections: the checks
    collect several times to free their models, and each would walk the whole process."""
    if _our_pipeline(item) is not None and OLDER_OBJECTS_KEY not in item.config.stash:
        from pipeline_checks.run.memory import older_objects_left_out

        stack = item.config.stash[OLDER_OBJECTS_KEY] = contextlib.ExitStack()
        stack.enter_context(older_objects_left_out())


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Drop a pipeline's shared training run once no later test uses that pipeline."""
    current = _our_pipeline(item)
    if current is None:
        return  # a project's own `pipeline` parameter may be anything; only ours have runs
    following = getattr(getattr(nextitem, "callspec", None), "params", {}).get("pipeline") if nextitem else None
    if following is not current:
        from pipeline_checks.pytest_plugin.check_errors import forget_first_tests
        from pipeline_checks.run.training import forget_shared_runs

        forget_shared_runs(current)
        forget_first_tests(item.config, current.name)
        _let_older_objects_back(item.config)


def _let_older_objects_back(config: pytest.Config) -> None:
    stack = config.stash.get(OLDER_OBJECTS_KEY, None)
    if stack is not None:
        del config.stash[OLDER_OBJECTS_KEY]
        stack.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    recorded = item.stash.get(ITEM_RESULTS_KEY, None)
    order = item.config.stash[ORDER_KEY]
    position = order.get(item.nodeid, len(order))
    if call.when == "call" and recorded:
        payload = {"order": position, "results": list(recorded)}
        if durations.recorded(item):  # --pc-durations: each check's seconds, beside the results
            payload["durations"] = durations.recorded(item)
        setattr(outcome.get_result(), REPORT_ATTRIBUTE, payload)
    elif call.when in ("setup", "call") and outcome.get_result().failed and not recorded and _is_check(item):
        _record_error(item, outcome.get_result(), position)


def _is_check(item: pytest.Item) -> bool:
    """A test that runs a check on one of our pipelines (through `pc_check` or `pc_baseline`)."""
    return _our_pipeline(item) is not None and bool(
        {"pc_check", "pc_baseline"} & set(getattr(item, "fixturenames", ()))
    )


def _record_error(item: pytest.Item, report: pytest.TestReport, position: int) -> None:
    """A check that raised instead of giving a verdict: an error result, which counts as failed."""
    from pipeline_checks.pytest_plugin import check_errors
    from pipeline_checks.results import summary

    family = item.stash.get(check_errors.CHECKING_KEY, None) or check_errors.family_of_nodeid(item.nodeid)
    result = check_errors.error_result(family, _our_pipeline(item).name, check_errors.failure_message(report))
    check_errors.attach(report, position, result)
    item.user_properties.extend(summary.junit_properties(result))  # junit reads them from the teardown's report


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
