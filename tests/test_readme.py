"""README opens with the two commands a newcomer types, and CI runs the second one."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def opening_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_the_two_commands():
    assert opening_commands() == ['pip install ".[tf]" && pipeline-checks', 'pip install ".[test]" && pytest -n 2']


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


# The front door and the pages behind it --------------------------------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(markdown: str) -> str:
    """The text outside fenced code blocks (links and headings inside code are not links)."""
    return "".join(part for i, part in enumerate(re.split(r"^```.*$", markdown, flags=re.M)) if i % 2 == 0)


def relative_links(page: Path):
    """(target path or "", anchor or "") for each link that is neither a URL nor mail."""
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        yield path, anchor


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(page.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_docs_folder_has_the_pages_the_readme_promises():
    names = {page.name for page in DOCS}
    assert {"checks.md", "detection-matrix.md", "diagnose.md", "configuration.md", "benchmarks.md"} <= names
    assert {"compatibility.md", "testing.md", "development.md"} <= names


def test_every_relative_link_in_readme_and_docs_resolves_to_a_file_in_the_repository():
    broken = []
    for page in DOCS:
        for path, _anchor in relative_links(page):
            if not path:  # a pure #anchor: checked below
                continue
            target = (page.parent / path).resolve()
            if not target.exists() or not target.is_relative_to(ROOT.resolve()):
                broken.append(f"{page.relative_to(ROOT)}: {path}")
    assert not broken, "links to missing files or out of the repository:\n" + "\n".join(broken)


def test_every_anchor_in_readme_and_docs_names_a_heading_of_its_page():
    broken = []
    for page in DOCS:
        for path, anchor in relative_links(page):
            target = (page.parent / path).resolve() if path else page
            if anchor and target.suffix == ".md" and target.exists() and anchor not in anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {path}#{anchor}")
    assert not broken, "anchors that match no heading:\n" + "\n".join(broken)


def test_readme_is_a_front_door_of_at_most_220_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 220


def test_readme_and_docs_point_nowhere_outside_the_repository():
    # Spelled in pieces so that this file does not mention them either.
    outside = ["../" + "shared", "DESIGN" + ".md"]
    found = [f"{page.relative_to(ROOT)}: {word}" for page in DOCS for word in outside if word in page.read_text()]
    assert not found
