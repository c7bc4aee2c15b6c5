"""`snakemake --lint` on the real workflow finds nothing.

"Specify a conda environment or container for each rule" is answered by the
Snakefile's global `container:` (the image of requirements/lock.txt, used with
`--sdm apptainer`): nnflow's software is one locked environment, the same for
every rule; per-rule conda environments would duplicate it without isolating
anything.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

pytestmark = pytest.mark.workflow


def test_snakemake_lint_finds_nothing(tmp_path):
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(ROOT), "--lint"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    text = proc.stdout + proc.stderr
    titles = set(re.findall(r"^\s+\* (.+?):?$", text, flags=re.MULTILINE))
    assert titles == set(), text[-4000:]
    assert "Traceback" not in text, text[-4000:]

