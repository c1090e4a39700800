"""The package's folders show the flow: no import cycle, and no check imports another check."""

import ast
from importlib.metadata import entry_points
from pathlib import Path

import pipeline_checks
import pipeline_checks.checks

PACKAGE = Path(pipeline_checks.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every pipeline_checks module `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline_checks"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(
                    submodule
                    if (PACKAGE.parent / submodule.replace(".", "/")).with_suffix(".py").exists()
                    else node.module
                )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline_checks"))
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    # A package's __init__ runs before any of its modules: importing a.b imports a too.
    for imported in list(graph.values()):
        for name in list(imported):
            imported.update(".".join(name.split(".")[:i]) for i in range(2, name.count(".") + 1))
    return {name: {i for i in imported if i in graph and i != name} for name, imported in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    visiting, done = [], set()

    def visit(node):
        if node in visiting:
            return visiting[visiting.index(node) :] + [node]
        if node in done:
            return []
        visiting.append(node)
        for child in sorted(graph[node]):
            if cycle := visit(child):
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return []


def test_no_import_cycle():
    assert find_cycle(import_graph()) == []


def test_no_check_module_imports_another():
    graph = import_graph()
    families = {f"pipeline_checks.checks.{name}" for name in pipeline_checks.checks.FAMILIES}
    crossing = {name: sorted(graph[name] & families) for name in families if graph[name] & families}
    assert crossing == {}


def modules_under(graph: dict[str, set[str]], folder: str) -> set[str]:
    package = f"pipeline_checks.{folder}"
    return {name for name in graph if name == package or name.startswith(package + ".")}


# run/recorder.py only keeps the Recorder's old import path: it hands `Recorder` on from attach/.
MOVED = {"pipeline_checks.run.recorder": {"pipeline_checks.attach", "pipeline_checks.attach.recorder"}}


def test_the_run_comes_before_the_checks_and_the_recorder_after_them():
    """run -> checks -> attach: a training run knows no check; the Recorder, which runs checks, is above them."""
    graph = import_graph()
    checks, attach = modules_under(graph, "checks"), modules_under(graph, "attach")
    upward = {
        name: sorted(graph[name] & (checks | attach) - MOVED.get(name, set()))
        for name in modules_under(graph, "run")
        if graph[name] & (checks | attach) - MOVED.get(name, set())
    }
    upward.update({name: sorted(graph[name] & attach) for name in checks if graph[name] & attach})
    assert upward == {}


def test_the_suite_has_one_test_per_family_in_order():
    from pipeline_checks.pytest_plugin import suite

    tests = [name for name in vars(suite) if name.startswith("test_")]
    assert tests == [*(f"test_{name}" for name in pipeline_checks.checks.FAMILIES), "test_baseline"]


def test_the_top_level_holds_only_the_package_face_and_cross_cutting_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "_imports.py", "_text.py", "_validation.py", "errors.py"]


def test_every_public_name_imports():
    for name in pipeline_checks.__all__:
        assert getattr(pipeline_checks, name) is not None, name
    for name in pipeline_checks.checks.__all__:
        assert callable(getattr(pipeline_checks.checks, name)) or name == "FAMILIES", name


def test_the_entry_points_load():
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "pipeline_checks"]
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "pipeline-checks"]
    (seeder,) = [e for e in entry_points(group="pytest_randomly.random_seeder") if e.name == "pipeline_checks"]
    assert hasattr(plugin.load(), "pytest_addoption")
    assert callable(script.load()) and callable(seeder.load())
