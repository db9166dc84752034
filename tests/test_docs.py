"""The documentation holds together: README is a short newcomer's page whose relative links
all resolve, every docs page is in the site's navigation and linked from README, CI runs
README's test line, and the docs site builds with `mkdocs build --strict` (no broken
link, anchor or page; skipped when mkdocs is not installed: `pip install -e ".[docs]"`).
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 150
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(text):
    """Targets of the markdown links and images that point into the repository."""
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                                   # http:, https:, mailto:, in-page anchors
        out.append(target.split("#", 1)[0])
    return out


def nav_pages(nav):
    """Every page file named in mkdocs.yml's nav, in order."""
    for item in nav:
        if isinstance(item, str):
            yield item
        else:
            for value in item.values():
                yield from ([value] if isinstance(value, str) else nav_pages(value))


def mkdocs_config():
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def readme_code_blocks():
    return re.findall(r"```[a-z]*\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; at most {MAX_README_LINES} (the rest belongs in docs/)"


def test_readme_links_point_at_existing_files():
    links = relative_links(README.read_text(encoding="utf-8"))
    assert links, "README.md should link the docs pages"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_every_docs_page_is_in_the_nav_and_linked_from_readme():
    cfg = mkdocs_config()
    assert cfg.get("strict") is True and cfg.get("docs_dir", "docs") == "docs"
    nav = list(nav_pages(cfg["nav"]))
    assert len(nav) == len(set(nav)), f"a page appears twice in the nav: {nav}"
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, f"nav {sorted(nav)} != docs pages {pages}"
    linked = {Path(t).as_posix() for t in relative_links(README.read_text(encoding="utf-8"))}
    not_linked = [p for p in pages if f"docs/{p}" not in linked]
    assert not not_linked, f"docs pages not linked from README.md: {not_linked}"


def test_ci_runs_readme_test_line():
    lines = [b.strip() for b in readme_code_blocks() if "pytest" in b]
    assert len(lines) == 1 and "\n" not in lines[0], f"README.md should give the test command as one line: {lines}"
    line = lines[0]
    assert line.startswith('pip install -e ".[test') and "docs" in line, line   # the site build runs in CI
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert line in [c.strip() for c in ci], f".ci/run does not run README's test line {line!r}"
    first = README.read_text(encoding="utf-8").lstrip().splitlines()[0]
    assert "pytest" not in first, "the test command is not README's first line"


def test_pages_speak_of_the_product_only():
    words = re.compile(r"\bTODO\b|to be filled|left to a later|not run yet", re.I)
    for page in [README] + sorted(DOCS.rglob("*.md")):
        hits = words.findall(page.read_text(encoding="utf-8"))
        assert not hits, f"{page.relative_to(ROOT)}: {hits}"


def test_mkdocs_strict_build(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip('mkdocs not installed (pip install -e ".[docs]")')
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                        "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    assert (site / "index.html").is_file() and (site / "results" / "index.html").is_file()
