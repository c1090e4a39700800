"""README opens with the two commands a newcomer types, and CI runs the second one."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def opening_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_the_two_commands():
    assert opening_commands() == ['pip install ".[tf]" && pipeline-checks', 'pip install ".[test]" && pytest']


def test_ci_installs_the_test_extras_and_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    install, test = opening_commands()[1].split(" && ")
    assert install == 'pip install ".[test]"'
    assert 'python -m pip install --quiet ".[test]"' in ci
    assert test in ci
