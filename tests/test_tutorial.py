"""docs/learning_rule.md runs: every ```python block is executed in order in one
namespace, and the ```text block that follows a code block must equal what it printed.
docs/learning_rule.ipynb is the same page as a notebook (jupytext): its cells must equal
the markdown's, and it must run in a real kernel (nbclient) printing the same numbers.

Regenerate the printed blocks, the figure and the notebook after a deliberate change with:
    python tests/test_tutorial.py --update
"""
import contextlib
import io
import os
import re
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "learning_rule.md"
NOTEBOOK = DOC.with_suffix(".ipynb")
FIGURE = DOC.parent / "learning_rule_feedback.png"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def run_blocks(text):
    """[(code, expected_or_None, printed, span_of_expected)] for the document's code blocks."""
    blocks = list(BLOCK.finditer(text))
    ns, out = {"__name__": "tutorial"}, []
    for i, m in enumerate(blocks):
        if m.group(1) != "python":
            continue
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(m.group(2), f"{DOC.name} block {i}", "exec"), ns)
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        follows = nxt is not None and nxt.group(1) == "text" and text[m.end():nxt.start()].strip() == ""
        out.append((m.group(2), nxt.group(2) if follows else None, buf.getvalue(), nxt.span(2) if follows else None))
    return out


def test_tutorial_blocks_run_and_print_what_the_document_shows(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the tutorial draws the feedback path with matplotlib")
    monkeypatch.chdir(tmp_path)                 # the figure is written to the working folder
    text = DOC.read_text(encoding="utf-8")
    results = run_blocks(text)
    assert len(results) >= 10, "the tutorial should walk through the trials in several code blocks"
    for code, expected, printed, _ in results:
        if expected is not None:
            assert printed == expected, f"block\n{code}\nprinted\n{printed}\nbut the document shows\n{expected}"
    assert (tmp_path / FIGURE.name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert FIGURE.is_file() and f"]({FIGURE.name})" in text      # the committed figure is shown


def test_tutorial_has_an_unrewarded_explored_trial():
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"explored action \[(\d)\]  reward \[0\.\]  delta \[(-[0-9.]+)\]", text)
    assert m and m.group(1) != "2" and float(m.group(2)) < 0


def _notebook_from_markdown():
    jupytext = pytest.importorskip("jupytext", reason="the notebook is generated with jupytext")
    nb = jupytext.read(DOC)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_notebook_is_generated_from_the_markdown():
    nbformat = pytest.importorskip("nbformat", reason="reading the notebook needs nbformat")
    fresh = _notebook_from_markdown()
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert _cells(committed) == _cells(fresh), "docs/learning_rule.ipynb drifted: python tests/test_tutorial.py --update"
    assert sum(c.cell_type == "code" for c in committed.cells) >= 10


def test_notebook_runs_in_a_kernel_and_prints_the_documented_numbers(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the tutorial draws the feedback path with matplotlib")
    nbformat = pytest.importorskip("nbformat", reason="reading the notebook needs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="running the notebook needs nbclient")
    pytest.importorskip("ipykernel", reason="running the notebook needs ipykernel")
    root = str(DOC.parents[1])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
               for c in nb.cells if c.cell_type == "code"]
    text = DOC.read_text(encoding="utf-8")
    shown = [m.group(2) for i, m in enumerate(BLOCK.finditer(text)) if m.group(1) == "text"]
    for block in shown:
        assert block in printed, f"the notebook did not print\n{block}"
    assert (tmp_path / FIGURE.name).is_file()


def update():
    """Rewrite the printed blocks, docs/learning_rule_feedback.png and the notebook."""
    text = DOC.read_text(encoding="utf-8")
    cwd = os.getcwd()
    os.chdir(DOC.parent)
    try:
        results = run_blocks(text)
    finally:
        os.chdir(cwd)
    for _, expected, printed, span in reversed(results):
        if span is not None:
            text = text[:span[0]] + printed + text[span[1]:]
    DOC.write_text(text, encoding="utf-8")
    import jupytext
    nb = _notebook_from_markdown()
    jupytext.write(nb, NOTEBOOK)


if __name__ == "__main__" and "--update" in sys.argv:
    sys.path.insert(0, str(DOC.parents[1]))
    update()
