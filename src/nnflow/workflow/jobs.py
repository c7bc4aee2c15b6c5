"""Glue between a Snakemake ``script:`` and the package.

Scripts stay a few lines long: they open :func:`job`, which sends stdout and
stderr to the rule's log, sets up logging, and limits BLAS threads to the
job's ``threads``; then they call one nnflow function.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

from nnflow.runtime import limit_threads


@contextlib.contextmanager
def job(smk: Any) -> Iterator[Any]:
    """Context for the body of a Snakemake script: log redirection and thread limits."""
    log_path = smk.log[0] if len(smk.log) else None
    stream = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
    old_out, old_err = sys.stdout, sys.stderr
    if stream is not None:
        sys.stdout = sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        limit_threads(int(getattr(smk, "threads", 1) or 1))
        yield smk
    except BaseException:
        logging.getLogger("nnflow").exception("job failed")
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        if stream is not None:
            stream.close()
