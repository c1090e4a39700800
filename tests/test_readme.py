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


def readme_block(after_heading: str, language: str) -> str:
    """The first ```language block under `after_heading`."""
    section = (ROOT / "README.md").read_text().split(after_heading, 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_declared_pipeline_example_builds_a_valid_pipeline_that_passes_preprocessing():
    from pipeline_checks import Pipeline
    from pipeline_checks.checks import check_preprocessing

    namespace = {}
    exec(readme_block("## Check your own pipelines", "python"), namespace)  # noqa: S102 - our own README
    pipeline = namespace["mobilenet"]()
    assert isinstance(pipeline, Pipeline) and pipeline.application == "MobileNetV2"
    assert check_preprocessing(pipeline).passed  # the cheap check: no training
    assert readme_block("## Check your own pipelines", "toml").strip() == (
        '[tool.pipeline_checks]\npipelines = ["my_project.pipelines:mobilenet"]'
    )
