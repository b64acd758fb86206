"""Scope per role (never wider than the anchor allows), role checks, password policy and verification."""

from __future__ import annotations

import pytest

from eqian.core.accounts import Role, User
from eqian.core.errors import Forbidden, ValidationFailed
from eqian.core.passwords import (
    COMMON_PASSWORDS,
    MIN_LENGTH,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from eqian.core.permissions import REVEAL_ROLES, SYSTEM, Principal, Scope, ScopeKind, resolve_scope

ANCHORS = ("station_id", "unit_id", "service_point_id", "team_id")
GOOD_PASSWORD = "Zhili-safe-365"
_GOOD_HASH = hash_password(GOOD_PASSWORD)  # argon2 is slow on purpose: hash once


def user(role: Role | str, user_id: int = 7, **anchors: int | None) -> User:
    value = role.value if isinstance(role, Role) else role
    return User(id=user_id, username="u", display_name="用户", password_hash="x", role=value, **anchors)


# --- scope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "anchors", "expected"),
    [
        (Role.BUREAU_ADMIN, {}, Scope(ScopeKind.ALL)),
        (Role.STATION_OFFICER, {"station_id": 3}, Scope(ScopeKind.STATIONS, station_ids=frozenset({3}))),
        (Role.LIAISON_OFFICER, {"station_id": 3}, Scope(ScopeKind.LIAISON, liaison_user_id=7)),
        (Role.UNIT_SECURITY, {"unit_id": 11}, Scope(ScopeKind.UNITS, unit_ids=frozenset({11}))),
        (Role.MEDIATOR, {"team_id": 2}, Scope(ScopeKind.TEAM, team_ids=frozenset({2}))),
        (
            Role.SERVICE_POINT_STAFF,
            {"service_point_id": 5},
            Scope(ScopeKind.SERVICE_POINTS, service_point_ids=frozenset({5})),
        ),
    ],
)
def test_each_role_gets_the_scope_of_its_anchor(role: Role, anchors: dict[str, int], expected: Scope) -> None:
    assert resolve_scope(user(role, **anchors)) == expected


def test_the_bureau_admin_sees_everything_whatever_its_anchors() -> None:
    scope = resolve_scope(user(Role.BUREAU_ADMIN, station_id=3, unit_id=11))
    assert scope.kind is ScopeKind.ALL
    assert scope.is_all
    assert not resolve_scope(user(Role.STATION_OFFICER, station_id=3)).is_all


@pytest.mark.parametrize(
    "role", [r for r in Role if r not in (Role.BUREAU_ADMIN, Role.LIAISON_OFFICER)], ids=str
)
def test_a_role_without_its_anchor_sees_nothing(role: Role) -> None:
    scope = resolve_scope(user(role))
    assert scope == Scope(ScopeKind.NONE)
    assert not scope.is_all


@pytest.mark.parametrize(
    ("role", "wrong_anchor"),
    [
        (Role.STATION_OFFICER, "unit_id"),
        (Role.STATION_OFFICER, "service_point_id"),
        (Role.UNIT_SECURITY, "station_id"),
        (Role.MEDIATOR, "station_id"),
        (Role.SERVICE_POINT_STAFF, "station_id"),
        (Role.SERVICE_POINT_STAFF, "unit_id"),
    ],
)
def test_another_roles_anchor_grants_nothing(role: Role, wrong_anchor: str) -> None:
    assert resolve_scope(user(role, **{wrong_anchor: 3})).kind is ScopeKind.NONE


def test_a_station_officer_with_extra_anchors_still_sees_only_the_station() -> None:
    scope = resolve_scope(user(Role.STATION_OFFICER, station_id=3, unit_id=11, service_point_id=5, team_id=2))
    assert scope == Scope(ScopeKind.STATIONS, station_ids=frozenset({3}))


def test_an_unknown_role_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="superuser"):
        resolve_scope(user("superuser", station_id=3))


# --- principal -----------------------------------------------------------------------------------


def test_principal_of_a_user() -> None:
    u = user(Role.STATION_OFFICER, user_id=42, station_id=3)
    u.language = "en"
    p = Principal.of(u, ip="10.1.2.3")
    assert (p.user_id, p.username, p.display_name, p.role) == (42, "u", "用户", Role.STATION_OFFICER)
    assert p.scope == Scope(ScopeKind.STATIONS, station_ids=frozenset({3}))
    assert (p.ip, p.language) == ("10.1.2.3", "en")


def test_require_role_raises_forbidden_for_any_other_role() -> None:
    p = Principal.of(user(Role.UNIT_SECURITY, unit_id=11))
    p.require_role(Role.UNIT_SECURITY)
    p.require_role(Role.BUREAU_ADMIN, Role.UNIT_SECURITY)
    with pytest.raises(Forbidden) as caught:
        p.require_role(Role.BUREAU_ADMIN, Role.STATION_OFFICER)
    assert (caught.value.status_code, caught.value.code) == (403, "forbidden")
    with pytest.raises(Forbidden):
        p.require_role()  # no role at all allowed means nobody
    assert p.has_role(Role.UNIT_SECURITY)
    assert not p.has_role(Role.BUREAU_ADMIN)


def test_the_system_principal_and_the_reveal_roles() -> None:
    assert SYSTEM.scope.is_all
    assert SYSTEM.role is Role.BUREAU_ADMIN
    assert {Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER} == REVEAL_ROLES
    assert Role.UNIT_SECURITY not in REVEAL_ROLES
    assert Role.SERVICE_POINT_STAFF not in REVEAL_ROLES
    assert Role.MEDIATOR not in REVEAL_ROLES


# --- password policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "username", "code"),
    [
        ("", None, "password_too_short"),
        ("Ab1!Ab1!a", None, "password_too_short"),  # 9 characters
        ("abcdefghijkl", None, "password_too_simple"),  # one kind
        ("abcdefgh12", None, "password_too_simple"),  # two kinds
        ("ABCDEFGH!!", None, "password_too_simple"),
        ("密码密码密码密码密码1", None, "password_too_simple"),  # Chinese characters are not a symbol
        ("Password123", None, "password_common"),
        ("Woaini1314", None, "password_common"),
        ("Zhangsan-2024", "zhangsan", "password_common"),
        ("x-ZHANGSAN-9", "ZhangSan", "password_common"),
    ],
)
def test_the_password_policy_names_what_is_wrong(password: str, username: str | None, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_policy(password, field="password", username=username)
    err = caught.value
    assert (err.status_code, err.code) == (422, "validation_error")
    assert [(d["field"], d["code"]) for d in err.details] == [("password", code)]


@pytest.mark.parametrize("password", ["Abcdefgh1!", "zhili-safe-365", "ZHILI SAFE 365", GOOD_PASSWORD])
def test_a_good_password_passes(password: str) -> None:
    assert len(password) >= MIN_LENGTH
    check_policy(password, username="station_officer")


def test_the_default_field_is_new_password() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_policy("short")
    assert caught.value.details[0]["field"] == "new_password"


def test_every_common_password_is_refused_in_any_case() -> None:
    for common in COMMON_PASSWORDS:
        for variant in (common, common.upper(), common.capitalize()):
            with pytest.raises(ValidationFailed):
                check_policy(variant)


# --- verification --------------------------------------------------------------------------------


def test_verify_password() -> None:
    assert verify_password(_GOOD_HASH, GOOD_PASSWORD)
    assert not verify_password(_GOOD_HASH, GOOD_PASSWORD.upper())
    assert not needs_rehash(_GOOD_HASH)
    assert _GOOD_HASH.startswith("$argon2id$")


@pytest.mark.parametrize(
    "stored",
    [None, "not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy", "\x00", _GOOD_HASH[:-8]],
    ids=["none", "garbage", "malformed-argon2", "nul", "truncated"],
)
def test_verify_password_is_false_for_a_missing_or_garbage_hash(stored: str | None) -> None:
    assert verify_password(stored, GOOD_PASSWORD) is False


def test_no_password_matches_a_missing_hash_not_even_the_timing_dummy() -> None:
    assert verify_password(None, "eqian-timing-equaliser") is False


def test_an_empty_hash_matches_no_password() -> None:
    assert verify_password("", "eqian-timing-equaliser") is False


def test_a_non_ascii_garbage_hash_is_false_not_an_error() -> None:
    assert verify_password("密码哈希", GOOD_PASSWORD) is False
