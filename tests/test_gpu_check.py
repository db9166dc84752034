"""scripts/gpu_check.sh fits one device command: its --dry-run plan (run here, no GPU needed)
names every stage with a budget, and the budgets, with the grace to kill a hung stage, add
up to at most 480 s (8 minutes)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
STAGES = ["device", "compile", "gpu_tests", "benchmark", "resume", "memcheck", "racecheck", "summary"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def plan():
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dry_run_budgets_fit_eight_minutes():
    out = plan()
    rows = re.findall(r"^\s*(\d+)\.\s+(\w+)\s+(\d+) s  ", out, re.M)
    assert [r[1] for r in rows] == STAGES, out
    total = sum(int(r[2]) for r in rows)
    worst = re.search(r"^total (\d+) s; at most (\d+) s with (\d+) s to kill each stage", out, re.M)
    assert worst and int(worst.group(1)) == total, out
    assert int(worst.group(2)) == total + int(worst.group(3)) * len(rows)
    assert int(worst.group(2)) <= 480, out


def test_the_script_installs_nothing_and_compares_with_the_reference():
    text = SCRIPT.read_text()
    assert not re.search(r"\bpip\b|\bconda\b|apt-get", text.split("set -uo pipefail", 1)[1])
    assert "export BRAINPROP_KERNELS=numpy" in text
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
