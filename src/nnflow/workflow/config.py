"""The configuration resolved once: runs expanded and every run's parameters validated.

Snakemake validates ``config.yaml`` against ``workflow/schemas/config.schema.yaml``
and fills in the schema's defaults; the values a grid point or a search candidate
adds to ``params`` are checked here against the same schema (the trainer's
``<trainer>_params`` definition), so a bad grid value is named before any job runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from nnflow.train.grid import Run, expand_runs


class ConfigError(ValueError):
    """An invalid configuration; the message names the key."""


def load_schema(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def params_validator(schema: Mapping[str, Any], trainer: str) -> Draft202012Validator:
    """A validator of one run's resolved ``params`` for ``trainer``."""
    sub = dict(schema["definitions"][f"{trainer}_params"])
    sub["definitions"] = schema["definitions"]
    return Draft202012Validator(sub)


def validate_run_params(runs: Mapping[str, Run], schema: Mapping[str, Any]) -> None:
    """Every run's parameters (params + grid point or search candidate) against the schema."""
    validators: dict[str, Draft202012Validator] = {}
    for run in runs.values():
        if run.trainer not in validators:
            validators[run.trainer] = params_validator(schema, run.trainer)
        errors = sorted(validators[run.trainer].iter_errors(run.params), key=str)
        if errors:
            error = errors[0]
            key = ".".join(str(p) for p in error.absolute_path) or "(params)"
            raise ConfigError(f"experiments.{run.experiment} (run {run.run_id}): {key}: {error.message}")


def resolve_runs(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Run]:
    """The runs of every enabled training experiment, keyed by run ID, validated."""
    try:
        runs = expand_runs(config["experiments"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    validate_run_params(runs, schema)
    return runs
