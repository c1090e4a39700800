"""Loading the plugin must not import a deep-learning framework."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch")


def test_importing_the_plugin_imports_no_framework():
    code = (
        "import sys, pipeline_checks.pytest_plugin.plugin, pipeline_checks; "
        "print(','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""


def test_the_plugin_is_registered_through_pytest11(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--trace-config", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*pipeline_checks*pipeline_checks/pytest_plugin/plugin.py*"])


def test_an_unrelated_test_run_never_imports_keras(pytester):
    pytester.makepyfile(
        f"""
        import sys

        def test_no_framework_loaded():
            assert not [m for m in {HEAVY!r} if m in sys.modules]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("pipeline-checks: keras*")
