"""Expand the ``experiments`` section of the config into runs.

A *run* is one (experiment, grid point, seed). Its ID is readable and stable::

    mnist_cost/cost=quadratic+eta=3.0+weight_init=large/seed=1
    cifar_challenge/cand=003/seed=1

Only the keys of the experiment's grid appear in the label; the full,
resolved parameters of a run are in :attr:`Run.params`, and
:func:`canonical_json` turns them into the deterministic string that Snakemake
compares for its parameter rerun trigger (sorted keys, shortest round-trip
floats): the same config always gives byte-identical params, and changing one
grid value changes exactly the runs that use it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnflow.train.trainers import TRAINERS

# Not a comma: cluster executors pass wildcards to the remote Snakemake as a
# comma-separated list, which Snakemake 9 splits at every comma.
LABEL_SEPARATOR = "+"


@dataclass(frozen=True)
class Run:
    experiment: str
    label: str
    seed: int
    trainer: str
    dataset: str
    params: dict[str, Any] = field(hash=False)
    resources: dict[str, Any] = field(hash=False)

    @property
    def run_id(self) -> str:
        return f"{self.experiment}/{self.label}/seed={self.seed}"

    @property
    def run_path(self) -> str:
        """The part of the run ID below the experiment (``<label>/seed=<seed>``)."""
        return f"{self.label}/seed={self.seed}"

    def spec(self) -> dict[str, Any]:
        """Everything that determines the run's outputs."""
        return {
            "experiment": self.experiment,
            "run_id": self.run_id,
            "seed": self.seed,
            "trainer": self.trainer,
            "dataset": self.dataset,
            "params": self.params,
        }


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace, round-trip floats)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def label_value(value: Any) -> str:
    """A short, filesystem-safe, canonical rendering of a grid value for run labels."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "x".join(label_value(v) for v in value) or "none"
    text = str(value)
    bad = set(text) & set("/,=+ \t\n")
    if bad:
        raise ValueError(f"grid value {text!r} contains characters not allowed in a run ID: {bad}")
    return text


def _grid_points(grid: Mapping[str, Any] | None, where: str) -> list[dict[str, Any]]:
    """``points`` (listed dicts) times the cartesian ``product`` of the listed values."""
    grid = grid or {}
    points = [dict(p) for p in grid.get("points", [])] or [{}]
    product = grid.get("product", {})
    keys = sorted(product)
    for key in keys:
        if not isinstance(product[key], list) or not product[key]:
            raise ValueError(f"{where}.grid.product.{key}: must be a non-empty list")
    combos = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(product[k] for k in keys))
    ]
    out = []
    for p in points:
        for c in combos:
            overlap = set(p) & set(c)
            if overlap:
                raise ValueError(f"{where}.grid: keys {sorted(overlap)} are in both points and product")
            out.append({**p, **c})
    return out


def _round_sig(x: float, digits: int = 4) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def sample_candidate(space: Mapping[str, Any], seed: int, index: int) -> dict[str, Any]:
    """Candidate ``index`` of a random search; independent of how many are drawn.

    Each candidate has its own generator seeded with ``(seed, index)``, so raising
    ``n_candidates`` adds candidates and leaves the existing ones untouched.
    Continuous values are rounded to four significant digits so that they read
    well in tables and are exactly reproducible from the config.
    """
    rng = np.random.default_rng([seed, index])
    cand: dict[str, Any] = {}
    for key in sorted(space):
        dist = space[key]
        (kind, arg), = dist.items()
        if kind == "choice":
            cand[key] = arg[int(rng.integers(len(arg)))]
        elif kind == "uniform":
            cand[key] = _round_sig(float(rng.uniform(arg[0], arg[1])))
        elif kind == "loguniform":
            cand[key] = _round_sig(float(math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1])))))
        elif kind == "int":
            cand[key] = int(rng.integers(arg[0], arg[1] + 1))
        else:
            raise ValueError(
                f"search space {key!r}: unknown distribution {kind!r} "
                "(allowed: choice, uniform, loguniform, int)"
            )
    return cand


def expand_experiment(name: str, cfg: Mapping[str, Any]) -> list[Run]:
    """All runs of one experiment (empty if it is disabled or not a training experiment)."""
    if not cfg.get("enabled", True) or "trainer" not in cfg:
        return []
    where = f"experiments.{name}"
    trainer, dataset = cfg["trainer"], cfg["dataset"]
    if trainer not in TRAINERS:
        raise ValueError(f"{where}.trainer: unknown trainer {trainer!r} (allowed: {', '.join(TRAINERS)})")
    base = dict(cfg.get("params", {}))
    resources = dict(cfg.get("resources", {}))
    if "seeds" not in cfg:
        raise ValueError(f"{where}.seeds: missing (the workflow fills in the schema's default)")
    seeds = cfg["seeds"]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}.seeds: duplicate seeds in {seeds}")

    if "search" in cfg:
        search = cfg["search"]
        labelled = [
            (f"cand={i:03d}", {**base, **sample_candidate(search["space"], search["seed"], i)})
            for i in range(search["n_candidates"])
        ]
    else:
        points = _grid_points(cfg.get("grid"), where)
        # Every grid key is in the label (not only those that differ now): changing
        # one point's value must not rename the other points' runs.
        grid_keys = sorted({k for p in points for k in p})
        labelled = []
        for point in points:
            overlap = set(point) & set(base)
            if overlap:
                raise ValueError(f"{where}: {sorted(overlap)} set both in params and in grid")
            label = LABEL_SEPARATOR.join(
                f"{k}={label_value(point[k])}" for k in grid_keys if k in point
            ) or "base"
            labelled.append((label, {**base, **point}))

    labels = [label for label, _ in labelled]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate run names {dupes}; make the grid points differ")
    return [
        Run(name, label, int(seed), trainer, dataset, params, resources)
        for label, params in labelled
        for seed in seeds
    ]


def expand_runs(experiments: Mapping[str, Any]) -> dict[str, Run]:
    """Every run of every enabled training experiment, keyed by run ID, in config order."""
    runs: dict[str, Run] = {}
    for name, cfg in experiments.items():
        for run in expand_experiment(name, cfg):
            runs[run.run_id] = run
    return runs
