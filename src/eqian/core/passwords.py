"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import re
import string
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from eqian.core.errors import field_error

_hasher = PasswordHasher()

# Verifying against this when the username is unknown keeps the response time the same,
# so timing does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("eqian-timing-equaliser")

MIN_LENGTH = 10

# Leetspeak undone only between two letters ("p@ssw0rd"), so a digit suffix stays a suffix.
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
_BETWEEN_LETTERS = re.compile(r"(?<=[a-z])[013457@$!](?=[a-z])")
_ONE_WORD = re.compile(r"^[^a-z]*([a-z]+)[^a-z]*$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _unleet(text: str) -> str:
    for _ in range(3):  # "p@$$" needs more than one pass, as each match needs a letter beside it
        text = _BETWEEN_LETTERS.sub(lambda m: _LEET[m.group()], text)
    return text


def _load(name: str) -> frozenset[str]:
    raw = resources.files("eqian.core").joinpath("data", name).read_text(encoding="utf-8")
    lines = (line.strip().lower() for line in raw.splitlines())
    return frozenset(_NOT_ALNUM.sub("", line) for line in lines if line and not line.startswith("#"))


# Shipped with the package (src/eqian/core/data/): exact passwords, and words that with only
# digits and symbols around them are guessed first.
COMMON_PASSWORDS = _load("common_passwords.txt")
COMMON_STEMS = _load("common_stems.txt")


def is_common(password: str) -> bool:
    """On the list, or a listed word padded with digits and symbols, in any case or leetspeak."""
    lower = password.lower()
    forms = {lower, _unleet(lower)}
    if {_NOT_ALNUM.sub("", f) for f in forms} & COMMON_PASSWORDS:
        return True
    return any((m := _ONE_WORD.match(f)) is not None and m.group(1) in COMMON_STEMS for f in forms)


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
    """等保-style policy: at least 10 characters of at least three kinds, not common (``is_common``),
    not containing the username."""
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
    if is_common(password) or (username and username.lower() in password.lower()):
        raise field_error(field, "密码过于常见或包含用户名", "password_common")
