"""Thresholds of aluminium-ash supervision, read from ``config.toml`` (versioned with the code).

``load_config()`` returns the packaged configuration (read once); ``load_config(path)`` reads
another file, e.g. in tests or for a what-if run. Every value is checked against its valid range
and a wrong file fails loudly with the key and the range it broke, never with a silent default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config.toml"


class EnvConfigError(ValueError):
    """The thresholds file is missing a key, has an unknown one, or a value out of its range."""


@dataclass(frozen=True)
class EnvConfig:
    version: int
    # [coefficient] kg of ash per tonne of aluminium a process may declare
    coefficient_min_kg_per_t: float
    coefficient_max_kg_per_t: float
    # [balance] unaccounted ash within max(tolerance_pct % of expected, tolerance_min_t) is green
    tolerance_pct: float
    tolerance_min_t: float
    # [manifest]
    confirm_within_hours: float
    weight_tolerance_pct: float
    # [activity]
    max_days_without_shipment: int
    production_lookback_days: int

    def coefficient_in_range(self, kg_per_t: float) -> bool:
        return self.coefficient_min_kg_per_t <= kg_per_t <= self.coefficient_max_kg_per_t


# (section, key) → (field, kind, low, high, low_inclusive, high_inclusive); None means unbounded.
_Spec = tuple[str, type, float | None, float | None, bool, bool]
_KEYS: dict[tuple[str, str], _Spec] = {
    ("", "version"): ("version", int, 1, None, True, False),
    ("coefficient", "min_kg_per_t"): ("coefficient_min_kg_per_t", float, 0, None, False, False),
    ("coefficient", "max_kg_per_t"): ("coefficient_max_kg_per_t", float, 0, None, False, False),
    ("balance", "tolerance_pct"): ("tolerance_pct", float, 0, 100, False, False),
    ("balance", "tolerance_min_t"): ("tolerance_min_t", float, 0, None, True, False),
    ("manifest", "confirm_within_hours"): ("confirm_within_hours", float, 0, 24 * 366, False, True),
    ("manifest", "weight_tolerance_pct"): ("weight_tolerance_pct", float, 0, 100, True, False),
    ("activity", "max_days_without_shipment"): ("max_days_without_shipment", int, 1, 366, True, True),
    ("activity", "production_lookback_days"): ("production_lookback_days", int, 1, 366, True, True),
}


def _range_text(low: float | None, high: float | None, low_inc: bool, high_inc: bool) -> str:
    left = "(-∞" if low is None else ("[" if low_inc else "(") + f"{low:g}"
    right = "+∞)" if high is None else f"{high:g}" + ("]" if high_inc else ")")
    return f"{left}, {right}"


def _value(source: str, name: str, raw: Any, spec: _Spec) -> float | int:
    _, kind, low, high, low_inc, high_inc = spec
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise EnvConfigError(f"{source}: {name} must be a number, got {raw!r}")
    if kind is int and not isinstance(raw, int):
        raise EnvConfigError(f"{source}: {name} must be a whole number, got {raw!r}")
    value: float | int = raw if kind is int else float(raw)
    too_low = low is not None and (value < low if low_inc else value <= low)
    too_high = high is not None and (value > high if high_inc else value >= high)
    if too_low or too_high:
        raise EnvConfigError(
            f"{source}: {name} = {raw!r} is out of range {_range_text(low, high, low_inc, high_inc)}"
        )
    return value


def parse_config(data: dict[str, Any], *, source: str = "<config>") -> EnvConfig:
    """Build and validate an ``EnvConfig`` from the parsed TOML document."""
    values: dict[str, float | int] = {}
    seen: set[tuple[str, str]] = set()
    for section, body in data.items():
        if isinstance(body, dict):
            seen.update((section, key) for key in body)
        else:
            seen.add(("", section))
    unknown = sorted(seen - _KEYS.keys())
    if unknown:
        names = ", ".join(".".join(p for p in pair if p) for pair in unknown)
        raise EnvConfigError(f"{source}: unknown key(s) {names}")
    for (section, key), spec in _KEYS.items():
        name = f"{section}.{key}" if section else key
        container = data.get(section, {}) if section else data
        if not isinstance(container, dict) or key not in container:
            raise EnvConfigError(f"{source}: missing {name}")
        values[spec[0]] = _value(source, name, container[key], spec)
    config = EnvConfig(**values)  # type: ignore[arg-type]  # keys and kinds checked above
    if config.coefficient_min_kg_per_t >= config.coefficient_max_kg_per_t:
        raise EnvConfigError(
            f"{source}: coefficient.min_kg_per_t ({config.coefficient_min_kg_per_t:g}) must be below "
            f"coefficient.max_kg_per_t ({config.coefficient_max_kg_per_t:g})"
        )
    return config


@lru_cache(maxsize=1)
def _packaged() -> EnvConfig:
    text = resources.files("eqian.environment").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    return parse_config(tomllib.loads(text), source=f"eqian/environment/{DEFAULT_CONFIG}")


def load_config(path: str | Path | None = None) -> EnvConfig:
    """The packaged thresholds (cached), or those of the TOML file at ``path``."""
    if path is None:
        return _packaged()
    file = Path(path)
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise EnvConfigError(f"{file}: not valid TOML: {exc}") from exc
    return parse_config(data, source=str(file))
