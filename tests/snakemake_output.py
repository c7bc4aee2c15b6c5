"""Reading what Snakemake prints, for the workflow tests."""

from __future__ import annotations

import re


def job_stats(text: str) -> dict[str, int]:
    """Rule -> number of jobs from the "Job stats" table Snakemake prints (empty if none)."""
    if "Job stats:" not in text:
        return {}
    block = text.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def job_blocks(text: str) -> list[str]:
    """The job blocks Snakemake prints ("rule NAME:" or "localrule NAME:" and its indented
    lines), each up to the next block: they are not separated by blank lines."""
    return [b for b in re.split(r"\n(?=(?:local)?rule \S+:\n)", text) if re.match(r"(local)?rule \S+:\n", b)]
