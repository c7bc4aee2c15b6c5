"""The configuration resolved once: validated, defaults filled, runs expanded.

``workflow/schemas/config.schema.yaml`` describes every key. Where a value must be
the name of something the package registers (an update rule, a trainer, a figure
kind, a dataset, ...), the schema says ``x-registry: "module:NAME"`` and
:func:`load_schema` turns it into an ``enum`` of that registry's names: a new update
rule needs its function and its registry entry, not a schema edit.

:func:`validate_config` checks the config against the schema and names the key of
the first problem; :func:`fill_defaults` then sets every default the schema states
(following ``$ref``, which Snakemake's own validation does not), so each default is
stated once, in the schema. The values a grid point or a search candidate adds to
``params`` are checked against the trainer's ``<trainer>_params`` definition, so a
bad grid value is named before any job runs.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from nnflow.data.prepare import check_declaration, get_format, known_shape, prepared_shape
from nnflow.data.sources import DatasetSource, declared_datasets
from nnflow.report.kinds import figure_kind, resolve_analysis
from nnflow.train.grid import Run, expand_runs


class ConfigError(ValueError):
    """An invalid configuration; the message names the key."""


REGISTRY_KEY = "x-registry"


def registry_names(reference: str) -> list[str]:
    """The names of the registry ``"module:ATTRIBUTE"`` (a dict's keys or a sequence), in order."""
    module, _, attribute = reference.partition(":")
    return [str(name) for name in getattr(importlib.import_module(module), attribute)]


def _resolve_registries(node: Any) -> None:
    if isinstance(node, dict):
        if REGISTRY_KEY in node:
            node["enum"] = registry_names(node[REGISTRY_KEY])
        for value in node.values():
            _resolve_registries(value)
    elif isinstance(node, list):
        for value in node:
            _resolve_registries(value)


def load_schema(path: str | os.PathLike) -> dict[str, Any]:
    """The config schema, with every ``x-registry`` turned into the registry's ``enum``."""
    with open(path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    _resolve_registries(schema)
    return schema


def key_path(parts: Any) -> str:
    """('experiments', 'x', 'params', 'sizes', 1) -> 'experiments.x.params.sizes[1]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the key of the most relevant schema violation."""
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return
    message = error.message
    if error.validator == "additionalProperties" and "properties" in error.schema:
        message += f"; allowed: {', '.join(error.schema['properties'])}"
    raise ConfigError(f"{key_path(error.absolute_path)}: {message}")


# --------------------------------------------------------------------------- reading strictly

MAX_VALUES = 100_000  # a config holds a few thousand; YAML aliases could make it billions


class _AliasRecordingLoader(yaml.SafeLoader):
    """A SafeLoader that notes the line of every alias (``*name``) it composes."""

    def __init__(self, stream):
        super().__init__(stream)
        self.alias_lines: list[int] = []

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_lines.append(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


def check_config_file(path: str | os.PathLike, max_values: int = MAX_VALUES) -> None:
    """Refuse what YAML accepts but a configuration must not hold, naming file and line:
    a key given twice in one mapping (YAML keeps the last silently), and aliases that
    expand to more than ``max_values`` values (a few hundred bytes can otherwise stand
    for billions of values). Cost: one parse, proportional to the file's length."""
    with open(path, encoding="utf-8") as fh:
        loader = _AliasRecordingLoader(fh)
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        finally:
            loader.dispose()
    sizes: dict[int, int] = {}

    def expanded(node: yaml.Node) -> int:  # values below node, aliases counted in full
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a recursive alias counts once
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for key, _ in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                        if key.value in seen:
                            raise ConfigError(
                                f"{path}, line {key.start_mark.line + 1}: duplicate key {key.value!r} "
                                f"(first given on line {seen[key.value]}; YAML would keep only the last)")
                        seen[key.value] = key.start_mark.line + 1
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = []
            sizes[id(node)] = 1 + sum(expanded(child) for child in children)
        return sizes[id(node)]

    total = expanded(root) if root is not None else 0
    if total > max_values:
        raise ConfigError(f"{path}: expands to {total:,} values, more than {max_values:,}: YAML aliases "
                          f"(first at line {loader.alias_lines[0]}) repeat large parts; write them out")


def check_values(config: Any, max_values: int = MAX_VALUES) -> None:
    """Refuse a non-finite number (``.nan``, ``.inf``: no parameter means it), naming its key,
    and a configuration of more than ``max_values`` values (walked within that bound)."""
    stack: list[tuple[tuple, Any]] = [((), config)]
    count = 0
    while stack:
        path, value = stack.pop()
        count += 1
        if count > max_values:
            raise ConfigError(f"the configuration holds more than {max_values:,} values (YAML aliases?)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key_path(path)}: {value} is not a finite number")
        if isinstance(value, Mapping):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))


def _typed(value: Any) -> Any:
    """A ``--config`` value as a user means it: Snakemake parses nested values with YAML's
    BaseLoader, which keeps every scalar a string ("0.5", "true", "[1, 2]" items)."""
    if isinstance(value, Mapping):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if not isinstance(value, str):
        return value
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    parsed = yaml.safe_load(value) if value.strip() else value
    return parsed if isinstance(parsed, (bool, int, float)) or parsed is None else value


def apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Merge ``snakemake --config`` overrides into ``config`` with typed values, in place.

    Snakemake has merged them already, but as strings below the top level; this sets each
    overridden value again, typed: ``--config 'experiments={mnist_cost: {params: {eta: 0.5}}}'``.
    """
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            apply_overrides(config[key], value)
        else:
            config[key] = _typed(value)


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
    ``additionalProperties``, ``items`` and the branch ``if`` selects; returns ``instance``.
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
        if "if" in schema:
            condition = {**schema["if"], "definitions": root.get("definitions", {})}
            branch = schema.get("then" if Draft202012Validator(condition).is_valid(instance) else "else")
            if branch is not None:
                fill_defaults(instance, branch, root)
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
            key = key_path(error.absolute_path) if error.absolute_path else "(params)"
            raise ConfigError(f"experiments.{run.experiment} (run {run.run_id}): {key}: {error.message}")


def validate_figures(experiments: Mapping[str, Any]) -> None:
    """Every enabled experiment's figure kind has the config keys it needs."""
    for name, exp in experiments.items():
        if not exp.get("enabled", True) or "figure" not in exp:
            continue
        try:
            kind = figure_kind(exp["figure"])
        except ValueError as exc:
            raise ConfigError(f"experiments.{name}.figure: {exc}") from None
        missing = [key for key in kind.needs if key not in exp]
        if missing:
            raise ConfigError(f"experiments.{name}: figure {exp['figure']!r} needs {', '.join(missing)}")
        try:
            resolve_analysis(exp["figure"], exp.get("analysis"))
        except ValueError as exc:
            raise ConfigError(f"experiments.{name}.analysis: {exc}") from None


def resolve_runs(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Run]:
    """The runs of every enabled training experiment, keyed by run ID, validated."""
    validate_figures(config["experiments"])
    try:
        runs = expand_runs(config["experiments"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    validate_run_params(runs, schema)
    return runs


def enabled_section(experiments: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The experiment ``name`` if it is present and enabled, else None."""
    section = experiments.get(name)
    return section if section and section.get("enabled", True) else None


def theory_section(experiments: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``theory`` section of the one enabled experiment that has one (None if none has)."""
    sections = {
        name: e["theory"] for name, e in experiments.items() if e.get("enabled", True) and "theory" in e
    }
    if len(sections) > 1:
        raise ConfigError(f"only one experiment may have a theory section, found: {', '.join(sections)}")
    return next(iter(sections.values()), None)


def resolve_datasets(config: Mapping[str, Any]) -> dict[str, DatasetSource]:
    """The built-in and declared datasets, each checked against its format; every
    experiment's dataset must be one of them."""
    try:
        datasets = declared_datasets(config["data"].get("datasets"))
        for source in datasets.values():
            check_declaration(source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for name, exp in config["experiments"].items():
        if exp.get("enabled", True) and "dataset" in exp and exp["dataset"] not in datasets:
            raise ConfigError(
                f"experiments.{name}.dataset: unknown dataset {exp['dataset']!r} "
                f"(declared in data.datasets: {', '.join(datasets)})"
            )
    return datasets


def resolve_config(config: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Run]:
    """Validate ``config``, fill in its defaults (in place) and return its validated runs."""
    check_values(config)
    validate_config(config, schema)
    fill_defaults(config, schema)
    theory_section(config["experiments"])
    resolve_datasets(config)
    return resolve_runs(config, schema)


def dataset_shapes(datasets: Mapping[str, DatasetSource], prepared_dir: str | os.PathLike
                   ) -> dict[str, dict[str, int]]:
    """What is known of each dataset's prepared shape before any job runs: the declaration
    and format settings (:func:`~nnflow.data.prepare.known_shape`), completed from the
    prepared data's provenance when they were prepared with today's settings."""
    shapes = {}
    for name, source in datasets.items():
        shape = known_shape(source)
        path = os.path.join(prepared_dir, name, "provenance.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                provenance = json.load(fh)
            fmt = get_format(source.format)
            if provenance.get("settings") == {**fmt.defaults, **source.settings}:
                shape = {**prepared_shape(provenance), **shape}
        shapes[name] = shape
    return shapes


BATCH_KEYS = {"network2": "mini_batch_size", "solver": "batch_size"}


def check_run_shapes(runs: Mapping[str, Run], shapes: Mapping[str, Mapping[str, int]]) -> None:
    """Refuse runs whose sizes do not fit their dataset, naming the key and the dataset's shape:
    network2's ``sizes[0]``/``sizes[-1]`` against its features/classes, ``train_size`` against
    the training split, the mini-batch against the examples trained on."""
    for run in runs.values():
        problem = _shape_problem(run, shapes.get(run.dataset, {}))
        if problem:
            key, value, fact = problem
            raise ConfigError(f"experiments.{run.experiment} (run {run.run_id}): params.{key} = {value}, "
                              f"but dataset {run.dataset!r} has {fact}")


def _shape_problem(run: Run, shape: Mapping[str, int]) -> tuple[str, Any, str] | None:
    p = run.params
    sizes = p.get("sizes")
    if sizes and "features" in shape and sizes[0] != shape["features"]:
        return "sizes[0]", sizes[0], f"{shape['features']} input features per example"
    if sizes and "classes" in shape and sizes[-1] != shape["classes"]:
        return "sizes[-1]", sizes[-1], f"{shape['classes']} classes (one output each)"
    train = shape.get("train")
    if p.get("train_size") is not None and train is not None and p["train_size"] > train:
        return "train_size", p["train_size"], f"{train} training examples"
    examples = p.get("train_size") or train
    batch_key = BATCH_KEYS.get(run.trainer)
    if batch_key in p and examples is not None and p[batch_key] > examples:
        return batch_key, p[batch_key], f"{examples} examples to train on (a mini-batch is a part of them)"
    return None
