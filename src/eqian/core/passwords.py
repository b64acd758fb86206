"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from eqian.core.errors import field_error

_hasher = PasswordHasher()

# Verifying against this when the username is unknown keeps the response time the same,
# so timing does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("eqian-timing-equaliser")

MIN_LENGTH = 10
COMMON_PASSWORDS = frozenset(
    {"password123", "1234567890", "qwertyuiop", "admin12345", "abc1234567", "a123456789", "woaini1314"}
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError, ValueError):
        # ValueError covers hashes that are not even ASCII: never a match, never a crash.
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_policy(password: str, *, field: str = "new_password", username: str | None = None) -> None:
    """等保-style policy: at least 10 characters of at least three kinds, not common, not the username."""
    if len(password) < MIN_LENGTH:
        raise field_error(field, f"密码至少 {MIN_LENGTH} 位", "password_too_short")
    kinds = sum(
        [
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c in string.digits for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if kinds < 3:
        raise field_error(
            field, "密码须包含大写字母、小写字母、数字、符号中的至少三类", "password_too_simple"
        )
    if password.lower() in COMMON_PASSWORDS or (username and username.lower() in password.lower()):
        raise field_error(field, "密码过于常见或包含用户名", "password_common")
