"""Strict (de)serialisation of frozen dataclass configs to dicts, YAML and JSON.

Loading is strict on purpose: an unknown key is a typo that would otherwise be silently ignored, and a wrong type
(``num_layers: "8"``) is an error naming the field, the value and the expected type. Overrides use dotted paths,
``--set transformer.num_layers=4``, with the value parsed as YAML (so ``4`` is an int and ``[8, 5]`` a list).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class _Yaml12Loader(yaml.SafeLoader):
    """``SafeLoader`` with YAML 1.2 booleans: only ``true``/``false`` are booleans.

    PyYAML follows YAML 1.1, where ``no``, ``off``, ``yes`` and ``on`` are booleans too, so ``mixed_precision: no``
    would arrive as ``False`` and fail the ``Literal["no", "bf16", "fp16"]`` check.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def yaml_load(text: str) -> Any:
    """Parse YAML text with YAML 1.2 booleans (see :class:`_Yaml12Loader`)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ValueError naming ``where`` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(f"{where}: {value!r} is not one of {list(allowed)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads "3e-4" (no dot) as a string; accept what float() accepts
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range
            raise ValueError(f"{where}: {value!r} is too large for a number") from None
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"{where}: unsupported annotation {tp!r}")  # a programming error, not a user error


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, strictly (unknown keys and wrong types raise ``ValueError``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)  # key=str: a YAML key may be a number (`1: x`)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {name: _convert(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: a 0 divisor in a __post_init__ check
        raise ValueError(f"{where}: {exc}") from None


def to_dict(cfg: Any) -> dict:
    """Dataclass → plain dict of lists/scalars (tuples become lists, so YAML/JSON stay simple)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``["a.b=value", ...]`` to a nested dict (a deep copy is returned; values are parsed as YAML).

    Raises:
        ValueError: malformed override (no ``=``) or a path through a non-mapping.
    """
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.path=value")
        path, raw = item.split("=", 1)
        keys = path.strip().split(".")
        node = out
        for k in keys[:-1]:
            if not isinstance(node.get(k, {}), dict):
                raise ValueError(f"override {item!r}: {k!r} is not a section")
            node = node.setdefault(k, {})
        try:
            node[keys[-1]] = yaml_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"override {item!r}: value is not valid YAML ({exc})") from None
    return out


def read_mapping(path: str | os.PathLike) -> dict:
    """Read a YAML or JSON file that must hold a mapping.

    Raises:
        FileNotFoundError: missing file.
        ValueError: unparsable, or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        data = yaml_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Load dataclass ``cls`` from a YAML/JSON file, then apply dotted overrides. Strict; errors name the file."""
    data = apply_overrides(read_mapping(path), overrides)
    return from_dict(cls, data, where=Path(path).name)


def dump_yaml(cfg: Any) -> str:
    """Serialise a dataclass config to YAML text (field order kept)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


class ConfigMixin:
    """``to_dict`` / ``from_dict`` / ``load`` for a top-level frozen dataclass config (strict, with overrides)."""

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None):
        return from_dict(cls, data, where or cls.__name__)

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()):
        """Load a YAML/JSON config strictly, applying ``a.b=c`` overrides."""
        return load_config(cls, path, overrides)
