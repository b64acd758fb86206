"""Chinese first, English second: msgids are the Chinese text, catalogs translate them.

Catalogs are gettext ``.po`` files read with Babel at start-up, so no compile step stands
between a checkout and a running server.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("zh", "en")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

current_language: ContextVar[str] = ContextVar("current_language", default="zh")


@lru_cache
def translations(lang: str) -> NullTranslations:
    if lang == "zh":
        return NullTranslations()
    result = Translations()
    result._catalog.update(catalog_of(lang))
    return result


@lru_cache
def catalog_of(lang: str) -> dict[str, str]:
    """Every translated msgid of a language: ``messages.po`` plus one ``<domain>.po`` per domain
    that keeps its own, so domains add strings without touching a shared file."""
    found: dict[str, str] = {}
    for po_path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for message in catalog:
            msgid, text = message.id, message.string
            if isinstance(msgid, str) and msgid and isinstance(text, str) and text and not message.fuzzy:
                found[msgid] = text
    return found


def gettext(message: str) -> str:
    return translations(current_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ngettext(singular, plural, n)


def pick_language(cookie: str | None, user_language: str | None, default: str) -> str:
    """The switch the user made wins; the browser's Accept-Language does not, so zh stays first."""
    for candidate in (cookie, user_language):
        if candidate in LANGUAGES:
            return candidate
    return default
