"""The README is the short front door; every link in it and in docs/ leads somewhere that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_readme_is_short():
    assert len((REPO / "README.md").read_bytes()) <= 12 * 1024


def test_readme_links_every_doc():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert DOCS, "docs/ is empty"
    for doc in DOCS:
        assert f"](docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"


@pytest.mark.parametrize("page", [REPO / "README.md", *DOCS], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        assert linked.exists(), f"{page.name}: link to {target} leads nowhere"
        if anchor:
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{page.name}: no heading for #{anchor}"


def test_readme_operator_example_is_the_file_the_dag_test_runs():
    """The README's "Reuse the operator" block is tests/examples/example_custom_dag.py (run by tests/integration),
    except for the archive path, which the test points at a temporary folder."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    example = (REPO / "tests" / "examples" / "example_custom_dag.py").read_text(encoding="utf-8")
    code = example.split("from __future__ import annotations\n\n", 1)[1].replace("import os\n", "", 1)

    def without_archive(text: str) -> list[str]:
        return [line for line in text.splitlines() if "archive_path=" not in line]

    assert without_archive(block) == without_archive(code)
    assert 'archive_path="file:///var/lib/audit-archive"' in block


def test_readme_layout_diagram_matches_the_folders():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    diagram = readme.split("<!-- layout:", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"([a-z_]+)/", diagram))
    package = REPO / "airflow_provider_atlassian_qradar"
    subpackages = {path.parent.name for path in package.glob("*/__init__.py")}
    assert subpackages <= named, f"package folders missing from the README diagram: {subpackages - named}"
    for folder in named:
        assert (package / folder).is_dir() or (REPO / folder).is_dir(), f"the README diagram names {folder}/"
    for module in re.findall(r"([a-z_/]+\.py)", diagram):
        assert (package / module).is_file() or (REPO / module).is_file(), f"the README diagram names {module}"
