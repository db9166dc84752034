"""docs/learning_rule.md runs: every ```python block is executed in order in one
namespace, and the ```text block that follows a code block must equal what it printed.

Regenerate the printed blocks after a deliberate change with:
    python tests/test_tutorial.py --update
"""
import contextlib
import io
import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "learning_rule.md"
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


def test_tutorial_blocks_run_and_print_what_the_document_shows():
    text = DOC.read_text(encoding="utf-8")
    results = run_blocks(text)
    assert len(results) >= 8, "the tutorial should walk through the trial in several code blocks"
    for code, expected, printed, _ in results:
        if expected is not None:
            assert printed == expected, f"block\n{code}\nprinted\n{printed}\nbut the document shows\n{expected}"


def update():
    text = DOC.read_text(encoding="utf-8")
    for _, expected, printed, span in reversed(run_blocks(text)):
        if span is not None:
            text = text[:span[0]] + printed + text[span[1]:]
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__" and "--update" in sys.argv:
    sys.path.insert(0, str(DOC.parents[1]))
    update()
