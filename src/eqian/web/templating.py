"""Jinja2 environment shared by every domain's pages: one loader over each package's templates/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from eqian.core import i18n
from eqian.core.ids import mask_mobile

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
TEMPLATE_DIRS = [
    PACKAGE_ROOT / "web" / "templates",
    PACKAGE_ROOT / "organizations" / "templates",
    PACKAGE_ROOT / "environment" / "templates",
    PACKAGE_ROOT / "activities" / "templates",
    PACKAGE_ROOT / "hazards" / "templates",
    PACKAGE_ROOT / "workforce" / "templates",
    PACKAGE_ROOT / "incidents" / "templates",
    PACKAGE_ROOT / "mediation" / "templates",
    PACKAGE_ROOT / "requests" / "templates",
    PACKAGE_ROOT / "messaging" / "templates",
    PACKAGE_ROOT / "safety_index" / "templates",
    PACKAGE_ROOT / "cockpit" / "templates",
]


def _local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(DISPLAY_TZ).strftime(fmt)


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in TEMPLATE_DIRS if d.exists()]),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_time"] = _local_time
    env.filters["mask_mobile"] = mask_mobile
    return Jinja2Templates(env=env)
