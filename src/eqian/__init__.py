"""e企安·365 — police–enterprise co-governance platform."""

__version__ = "0.1.0"
