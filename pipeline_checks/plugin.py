"""pytest wiring only: options, markers, the report header and fixtures.

Loaded in every pytest run of a repository that installs pipeline-checks, so it
imports nothing heavy at module level; Keras loads when a fixture is first used.
"""

from __future__ import annotations

import dataclasses

import pytest

from pipeline_checks import settings as settings_module
from pipeline_checks.settings import KNOBS, InvalidSetting, Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
DEVICES_KEY = pytest.StashKey[set]()
MARKER = "pipeline_checks"
OUR_FIXTURES = frozenset({"tiny_images", "keras_application", "pc_settings", "pc_seed", "train_step_benchmark"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pipeline-checks", "pipeline-checks: Keras training pipeline checks")
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
    try:
        config.stash[SETTINGS_KEY] = settings_module.resolve(
            cli_value=lambda knob: config.getoption(knob.ini_key),
            ini_value=lambda knob: config.getini(knob.ini_key),
        )
    except InvalidSetting as error:
        raise pytest.UsageError(str(error)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return  # Finding devices imports Keras: only pay for it when a test asks.
    from pipeline_checks import compat

    if compat.gpu_available():
        return
    skip = pytest.mark.skip(
        reason=f"needs a GPU; the {compat.backend()} backend sees only {', '.join(compat.devices())}"
    )
    for item in gpu_items:
        item.add_marker(skip)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]):
    if not any(OUR_FIXTURES.intersection(getattr(item, "fixturenames", ())) for item in items):
        return None
    from pipeline_checks import environment

    return f"pipeline-checks: {environment.describe()}"


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
    from pipeline_checks import seeding

    yield seeding.start_test(pc_settings.seed)
    seeding.end_test()


@pytest.fixture
def tiny_images(pc_settings: Settings, pc_seed: int, tmp_path):
    """Factory of tiny image datasets; see `pipeline_checks.make_tiny_images`.

    Defaults: `size` from --pc-image-size (else 32), `seed` from --pc-seed. The
    datasets' `to_directory()` writes under this test's tmp_path.

    Example:
        def test_loader(tiny_images):
            data = tiny_images(classes=3, per_class=2, kind="photos")
            batches = data.image_dataset_from_directory(label_mode="categorical")
    """
    from pipeline_checks.datasets import make_tiny_images

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
    from pipeline_checks import compat
    from pipeline_checks.applications import build_application

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
    """Time compiled training steps with pytest-benchmark; see `pipeline_checks.step_timing`.

    Example:
        def test_step(train_step_benchmark, keras_application, tiny_images):
            model, preprocess_input = keras_application("MobileNetV2", classes=3)
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            data = tiny_images(classes=3, per_class=3)
            train_step_benchmark(model, preprocess_input(data.images.astype("float32")), data.labels)
    """
    from pipeline_checks.step_timing import StepBenchmark

    devices = request.config.stash[DEVICES_KEY]
    return StepBenchmark(benchmark, on_facts=lambda facts: devices.add(facts.device))
