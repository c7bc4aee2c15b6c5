"""The configuration resolved once: defaults filled, runs expanded and validated.

Snakemake validates ``config.yaml`` against ``workflow/schemas/config.schema.yaml``
and fills in defaults, but only those written directly at a property, not those of
a ``$ref``'d definition (an experiment without ``resources`` kept none).
:func:`fill_defaults` completes that from the same schema, so every default is
stated once, there. The values a grid point or a search candidate adds to
``params`` are checked against the same schema (the trainer's ``<trainer>_params``
definition), so a bad grid value is named before any job runs.
"""

from __future__ import annotations

import copy
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


_ABSENT = object()


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` replaced by its target (sibling keys win)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def fill_defaults(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Set the schema's ``default`` of every absent property, recursively and in place.

    Follows local ``$ref`` (at the property and inside it), ``properties``,
    ``additionalProperties`` and ``items``; returns ``instance``.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            sub = _resolve(sub, root)
            if key not in instance and sub.get("default", _ABSENT) is not _ABSENT:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                fill_defaults(instance[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in properties:
                    fill_defaults(value, extra, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            fill_defaults(item, schema["items"], root)
    return instance


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
