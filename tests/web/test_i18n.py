"""Chinese first, English second: every interface string has a translation, and the switch works."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po

from eqian.core import i18n
from eqian.core.accounts import ROLE_LABELS_ZH
from eqian.core.config import Settings
from eqian.organizations.categories import CATEGORIES, CONTACT_ROLES, STATUS_LABELS_ZH
from eqian.web.app import create_app

SRC = Path(i18n.__file__).resolve().parents[1]
PO_DIR = SRC / "locale" / "en" / "LC_MESSAGES"
PO_PATH = PO_DIR / "messages.po"
_TEMPLATE_MSGID = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)]""")
PYTHON_CODE = "python code (gettext calls)"


def _english() -> dict[str, str]:
    return i18n.catalog_of("en")


def _template_msgids(path: Path) -> set[str]:
    return {d or s for d, s in _TEMPLATE_MSGID.findall(path.read_text(encoding="utf-8"))}


def python_msgids() -> set[str]:
    """Literal arguments of ``gettext(...)`` / ``i18n.gettext(...)`` calls in the package's code."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            first = node.args[0]
            if name in ("gettext", "_") and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


@cache
def msgids_by_source() -> dict[str, set[str]]:
    """Every msgid the interface uses, by the template (or code) that uses it."""
    sources = {str(p.relative_to(SRC)): _template_msgids(p) for p in sorted(SRC.rglob("*.html"))}
    sources[PYTHON_CODE] = python_msgids()
    return sources


LABELS: dict[str, set[str]] = {
    "role labels": set(ROLE_LABELS_ZH.values()),
    "unit categories": {c.name_zh for c in CATEGORIES},
    "unit statuses": set(STATUS_LABELS_ZH.values()),
    "contact roles": set(CONTACT_ROLES.values()),
}
# Known gaps, each a bug to fix in messages.po (strict: the mark must go once the entries exist).
_KNOWN_GAPS: dict[str, str] = {}


def test_the_catalogs_parse_and_have_no_duplicates_or_fuzzy_entries() -> None:
    raw_ids: list[str] = []
    for po_path in sorted(PO_DIR.glob("*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale="en")
        assert str(catalog.locale) == "en"
        messages = [m for m in catalog if m.id]
        assert not [m.id for m in messages if m.fuzzy], po_path.name
        raw_ids += re.findall(r'^msgid "(.+)"$', po_path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(raw_ids) > 50
    assert len(raw_ids) == len(set(raw_ids)), "a msgid appears twice; the later silently wins"


def test_the_scans_find_the_interface_text() -> None:
    # Guards the scanners themselves: an empty scan would make the checks below pass vacuously.
    sources = msgids_by_source()
    assert {"登录", "登录 e企安·365", "连续 5 次输错密码，账户将锁定 15 分钟。"} <= sources[
        "web/templates/login.html"
    ]
    assert {"主导航", "数字驾驶舱", "退出"} <= sources["web/templates/base.html"]
    assert (
        "查看完整号码（将记入审计日志）" in sources["organizations/templates/organizations/unit_detail.html"]
    )
    assert "页面已过期，请重新提交" in sources[PYTHON_CODE]


@pytest.mark.parametrize("source", list(msgids_by_source()))
def test_every_interface_string_has_an_english_translation(source: str) -> None:
    english = _english()
    missing = sorted(m for m in msgids_by_source()[source] if not english.get(m, "").strip())
    assert missing == [], f"{source}: no English in {PO_DIR} for {missing}"


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(g, marks=pytest.mark.xfail(strict=True, reason=_KNOWN_GAPS[g]))
        if g in _KNOWN_GAPS
        else g
        for g in LABELS
    ],
)
def test_every_role_category_status_and_contact_label_has_an_english_translation(group: str) -> None:
    english = _english()
    missing = sorted(m for m in LABELS[group] if not english.get(m, "").strip())
    assert missing == [], f"{group}: no English for {missing}"


def test_category_translations_match_their_english_names() -> None:
    english = _english()
    assert {c.name_zh: english.get(c.name_zh) for c in CATEGORIES} == {
        c.name_zh: c.name_en for c in CATEGORIES
    }


def test_gettext_follows_the_current_language() -> None:
    token = i18n.current_language.set("en")
    try:
        assert i18n.gettext("登录") == "Log in"
        assert i18n.gettext("没有翻译的句子") == "没有翻译的句子"  # an unknown msgid falls back to Chinese
    finally:
        i18n.current_language.reset(token)
    assert i18n.gettext("登录") == "登录"
    assert i18n.pick_language("en", None, "zh") == "en"
    assert i18n.pick_language("xx", None, "zh") == "zh"
    assert i18n.pick_language(None, "en", "zh") == "en"
    assert i18n.pick_language(None, None, "en") == "en"


# --- the language switch, through HTTP -----------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The login page and the switch need no database, so these run once, not once per backend."""
    app = create_app(Settings(env="test", var_dir=tmp_path, secret_key="test-secret"))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        await app.state.engine.dispose()


async def test_switching_to_english_sets_the_cookie_and_renders_english(client: httpx.AsyncClient) -> None:
    r = await client.get("/lang/en", params={"next": "/login"})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("eqian_lang=en;")
    assert "samesite=lax" in set_cookie.lower()
    page = await client.get("/login", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert '<button type="submit" class="primary">Log in</button>' in page.text
    assert "Log in to e-Qi'an·365" in page.text
    assert "登录 e企安·365" not in page.text
    assert '<a href="/lang/zh?next=/login">中文</a>' in page.text
    # And back.
    await client.get("/lang/zh")
    page = await client.get("/login", headers={"Accept": "text/html"})
    assert "登录 e企安·365" in page.text


async def test_chinese_is_the_default_even_for_an_english_browser(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers={"Accept": "text/html", "Accept-Language": "en-US,en;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "登录 e企安·365" in page.text
    assert "Log in" not in page.text
    assert '<a href="/lang/en?next=/login">English</a>' in page.text


async def test_an_unknown_language_changes_nothing(client: httpx.AsyncClient) -> None:
    r = await client.get("/lang/xx")
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert "set-cookie" not in r.headers
    await client.get("/lang/en")
    r = await client.get("/lang/xx")
    assert "set-cookie" not in r.headers
    page = await client.get("/login", headers={"Accept": "text/html"})
    assert '<html lang="en">' in page.text  # the earlier choice stands
    # A forged cookie value falls back to Chinese.
    client.cookies.set("eqian_lang", "fr")
    page = await client.get("/login", headers={"Accept": "text/html"})
    assert '<html lang="zh-CN">' in page.text


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("https://evil.example", "/"),
        ("//evil.example", "/"),
        ("/units?category=garment", "/units?category=garment"),
        (None, "/"),
    ],
)
async def test_the_switch_only_returns_to_this_site(
    client: httpx.AsyncClient, target: str | None, location: str
) -> None:
    r = await client.get("/lang/en", params={} if target is None else {"next": target})
    assert (r.status_code, r.headers["location"]) == (303, location)
