"""One-line errors: the one way this package turns an exception or a message into a line,
prints it (`error: ...` on stderr) and gives the exit status.

Exit statuses: 2 for bad input (a config, key, value, argument or file the user named),
1 for a runtime failure (missing data, no GPU, a non-finite loss), 130 for Ctrl-C.
"""
import argparse
import sys

BAD_INPUT, RUNTIME, INTERRUPTED = 2, 1, 130


def one_line(message, limit=300):
    """`message` (text or an exception) as one line: whitespace folded, at most `limit` characters."""
    if isinstance(message, BaseException):
        text = " ".join(str(message).split()) or type(message).__name__
    else:
        text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fail(code, message):
    """Print `error: <message>` as one line on stderr; return `code` (the exit status)."""
    print("error: " + one_line(message, limit=10_000), file=sys.stderr, flush=True)
    return code


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: ...; see PROG --help` and exit status 2 (no usage block)."""

    def error(self, message):
        fail(BAD_INPUT, f"{message}; see {self.prog} --help")
        raise SystemExit(BAD_INPUT)
