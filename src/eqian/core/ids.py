"""Validation and masking of Chinese identifiers: resident ID, unified social credit code, mobile."""

from __future__ import annotations

import datetime
from typing import Final, Literal, overload
from zoneinfo import ZoneInfo

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "PROVINCE_CODES",
    "IdentifierCode",
    "IdentifierError",
    "birth_date_of",
    "credit_code_check_char",
    "is_valid_credit_code",
    "is_valid_mobile",
    "is_valid_resident_id",
    "make_credit_code",
    "make_resident_id",
    "mask_mobile",
    "mask_resident_id",
    "resident_id_check_digit",
    "validate_credit_code",
    "validate_mobile",
    "validate_resident_id",
]

IdentifierCode = Literal["invalid_resident_id", "invalid_credit_code", "invalid_mobile"]

_RESIDENT_ID: Final = "invalid_resident_id"
_CREDIT_CODE: Final = "invalid_credit_code"
_MOBILE: Final = "invalid_mobile"

# Explicit ASCII sets: str.isdigit() would also accept full-width and other Unicode digits.
_DIGITS = frozenset("0123456789")

# GB/T 2260 province-level codes (incl. Taiwan 71, HK 81, Macau 82, 83 and 91 used on residence permits).
PROVINCE_CODES = frozenset(
    f"{n:02d}"
    for n in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
        91,
    )
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_MAP = "10X98765432"
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)

# GB 32100-2015 leaves out I, O, Z, S and V so they cannot be misread as 1, 0, 2, 5 and U.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUES = {ch: i for i, ch in enumerate(CREDIT_CODE_ALPHABET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_MOBILE_SECOND_DIGITS = frozenset("3456789")
_CN_TZ = ZoneInfo("Asia/Shanghai")


class IdentifierError(ValueError):
    """A rejected identifier; ``code`` is for machines, ``message`` (Chinese) for people."""

    def __init__(self, code: IdentifierCode, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.code: IdentifierCode = code
        self.message = message
        # Lets callers and tests tell the failure kinds apart without matching on Chinese text.
        self.reason = reason

    def __str__(self) -> str:
        return self.message


def _today() -> datetime.date:
    # Birth dates are Chinese calendar dates, so "today" must be Beijing's, not the server's.
    return datetime.datetime.now(tz=_CN_TZ).date()


def _compact(value: str) -> str:
    # People paste IDs with spaces (incl. the full-width U+3000) between digit groups.
    return "".join(value.split())


# --- resident ID (GB 11643-1999) ---------------------------------------------------------------


def resident_id_check_digit(first17: str) -> str:
    """ISO 7064 mod 11-2 check character for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not set(first17) <= _DIGITS:
        raise IdentifierError(_RESIDENT_ID, "身份证号码本体码应为17位数字", reason="characters")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_MAP[total % 11]


def _parse_birth(yyyymmdd: str) -> datetime.date:
    try:
        born = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        raise IdentifierError(_RESIDENT_ID, "出生日期无效", reason="date") from None
    if born < _EARLIEST_BIRTH:
        raise IdentifierError(_RESIDENT_ID, "出生日期无效", reason="date")
    if born > _today():
        raise IdentifierError(_RESIDENT_ID, "出生日期不能晚于今天", reason="date")
    return born


def validate_resident_id(value: str) -> str:
    """Return the normalised 18-character resident ID or raise ``IdentifierError``."""
    rid = _compact(value).upper()
    if len(rid) != 18:
        raise IdentifierError(_RESIDENT_ID, "身份证号码应为18位", reason="length")
    if not set(rid[:17]) <= _DIGITS or rid[17] not in _ID_CHECK_MAP:
        raise IdentifierError(_RESIDENT_ID, "身份证号码包含无效字符", reason="characters")
    if rid[:2] not in PROVINCE_CODES:
        raise IdentifierError(_RESIDENT_ID, "身份证号码地区码无效", reason="region")
    _parse_birth(rid[6:14])
    if resident_id_check_digit(rid[:17]) != rid[17]:
        raise IdentifierError(_RESIDENT_ID, "身份证号码校验位错误", reason="check_digit")
    return rid


def is_valid_resident_id(value: str) -> bool:
    try:
        validate_resident_id(value)
    except IdentifierError:
        return False
    return True


def birth_date_of(resident_id: str) -> datetime.date:
    """Date of birth encoded in a resident ID (which is validated first)."""
    return _parse_birth(validate_resident_id(resident_id)[6:14])


def make_resident_id(region: str, birth: datetime.date, seq: int) -> str:
    """Build a valid resident ID from a 6-digit region code, birth date and sequence 0-999."""
    if not 0 <= seq <= 999:
        raise ValueError(f"seq must be 0-999, got {seq}")
    if len(region) != 6 or not set(region) <= _DIGITS:
        raise IdentifierError(_RESIDENT_ID, "身份证号码地区码无效", reason="region")
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    # Validating the result rejects bad provinces and out-of-range dates with the usual errors.
    return validate_resident_id(first17 + resident_id_check_digit(first17))


# --- unified social credit code (GB 32100-2015) -------------------------------------------------


def _check_credit_body(body: str) -> None:
    if not set(body) <= _CREDIT_VALUES.keys():
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码包含无效字符", reason="characters")
    if not set(body[2:8]) <= _DIGITS:
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码行政区划码无效", reason="region")


def credit_code_check_char(first17: str) -> str:
    """Mod 31 check character for the first 17 characters of a credit code."""
    body = first17.upper()
    if len(body) != 17:
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码本体码应为17位", reason="length")
    if not set(body) <= _CREDIT_VALUES.keys():
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码包含无效字符", reason="characters")
    total = sum(_CREDIT_VALUES[ch] * w for ch, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> str:
    """Return the normalised 18-character credit code or raise ``IdentifierError``."""
    code = _compact(value).upper()
    if len(code) != 18:
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码应为18位", reason="length")
    _check_credit_body(code)
    if credit_code_check_char(code[:17]) != code[17]:
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码校验位错误", reason="check_digit")
    return code


def is_valid_credit_code(value: str) -> bool:
    try:
        validate_credit_code(value)
    except IdentifierError:
        return False
    return True


def make_credit_code(first17_without_check: str) -> str:
    """Append the check character to 17 code characters, giving a valid credit code."""
    body = _compact(first17_without_check).upper()
    if len(body) != 17:
        raise IdentifierError(_CREDIT_CODE, "统一社会信用代码本体码应为17位", reason="length")
    _check_credit_body(body)
    return body + credit_code_check_char(body)


# --- mainland mobile numbers --------------------------------------------------------------------


def validate_mobile(value: str) -> str:
    """Return the bare 11-digit mobile number or raise ``IdentifierError``."""
    number = _compact(value).replace("-", "")
    if number.startswith("+86"):
        number = number[3:]
    elif len(number) == 13 and number.startswith("86"):
        # Only strip a bare "86" when 11 digits remain: no valid number itself starts with 86.
        number = number[2:]
    if not set(number) <= _DIGITS:
        raise IdentifierError(_MOBILE, "手机号码包含无效字符", reason="characters")
    if len(number) != 11:
        raise IdentifierError(_MOBILE, "手机号码应为11位", reason="length")
    if number[0] != "1" or number[1] not in _MOBILE_SECOND_DIGITS:
        raise IdentifierError(_MOBILE, "手机号码格式错误", reason="format")
    return number


def is_valid_mobile(value: str) -> bool:
    try:
        validate_mobile(value)
    except IdentifierError:
        return False
    return True


# --- masking ------------------------------------------------------------------------------------


def _mask(value: str, length: int, keep_head: int, keep_tail: int) -> str:
    n = len(value)
    if n != length:
        # Unknown shape: reveal at most the ends, and nothing when the ends would be all of it.
        keep_head, keep_tail = (1, 1) if n > 2 else (0, 0)
    return value[:keep_head] + "*" * (n - keep_head - keep_tail) + value[n - keep_tail :]


@overload
def mask_resident_id(value: str) -> str: ...
@overload
def mask_resident_id(value: None) -> None: ...
def mask_resident_id(value: str | None) -> str | None:
    """Keep the first 6 and last 4 characters of an 18-character ID; same length, never unmasked."""
    if not value:
        return value
    return _mask(value, 18, 6, 4)


@overload
def mask_mobile(value: str) -> str: ...
@overload
def mask_mobile(value: None) -> None: ...
def mask_mobile(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits of an 11-digit number; same length, never unmasked."""
    if not value:
        return value
    return _mask(value, 11, 3, 4)
