"""`snakemake --lint` on the real workflow.

One lint is accepted on purpose: "Specify a conda environment or container for
each rule". nnflow deploys its software as one Python environment from
pyproject.toml (`make venv`), the same for every rule; per-rule conda
environments would duplicate it without isolating anything.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ACCEPTED = {"Specify a conda environment or container for each rule."}

pytestmark = pytest.mark.workflow


def test_snakemake_lint_finds_nothing_but_the_accepted_lint(tmp_path):
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(ROOT), "--lint"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    text = proc.stdout + proc.stderr
    titles = set(re.findall(r"^\s+\* (.+?):?$", text, flags=re.MULTILINE))
    assert titles - ACCEPTED == set(), text[-4000:]
    assert "Traceback" not in text, text[-4000:]

