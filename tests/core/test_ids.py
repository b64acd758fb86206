"""Resident IDs, credit codes and mobile numbers validate, normalise and mask as the standards say."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqian.core import ids
from eqian.core.ids import (
    CREDIT_CODE_ALPHABET,
    PROVINCE_CODES,
    IdentifierError,
    birth_date_of,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_mobile,
    is_valid_resident_id,
    make_credit_code,
    make_resident_id,
    mask_mobile,
    mask_resident_id,
    resident_id_check_digit,
    validate_credit_code,
    validate_mobile,
    validate_resident_id,
)

# GB 11643-1999's own worked example; sum 167, 167 mod 11 = 2 -> "X".
GB_EXAMPLE_ID = "11010519491231002X"
# Checked by hand: weighted sum 182, 182 mod 11 = 6 -> "6".
ZJ_ID = "330502199001011236"
# Commonly cited example; weighted sum 1640, 1640 mod 31 = 28, 31 - 28 = 3 -> "3".
CITED_CREDIT_CODE = "91350100M000100Y43"
# Checked by hand: weighted sum 1499, 1499 mod 31 = 11, 31 - 11 = 20 -> "L".
ZJ_CREDIT_CODE = "91330500MA2B12345L"

FAST = settings(max_examples=60, deadline=None)
TODAY = ids._today()


def _reject(func: object, value: str, code: str, reason: str, message: str) -> None:
    assert callable(func)
    with pytest.raises(IdentifierError) as info:
        func(value)
    err = info.value
    assert (err.code, err.reason, err.message, str(err)) == (code, reason, message, message)


# --- resident ID -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (GB_EXAMPLE_ID, GB_EXAMPLE_ID),
        ("11010519491231002x", GB_EXAMPLE_ID),
        (" 110105 19491231 002x\n", GB_EXAMPLE_ID),
        ("110105\u300019491231002X", GB_EXAMPLE_ID),
        (ZJ_ID, ZJ_ID),
    ],
)
def test_valid_resident_ids_normalise(raw: str, normalised: str) -> None:
    assert validate_resident_id(raw) == normalised
    assert is_valid_resident_id(raw)


def test_check_digit_and_birth_date() -> None:
    assert resident_id_check_digit("11010519491231002") == "X"
    assert resident_id_check_digit("33050219900101123") == "6"
    assert birth_date_of(GB_EXAMPLE_ID) == datetime.date(1949, 12, 31)
    assert birth_date_of("11010519491231002x") == datetime.date(1949, 12, 31)


def test_make_resident_id() -> None:
    assert make_resident_id("330502", datetime.date(1990, 1, 1), 123) == ZJ_ID
    assert make_resident_id("110105", datetime.date(1949, 12, 31), 2) == GB_EXAMPLE_ID


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("", "length", "身份证号码应为18位"),
        ("11010519491231002", "length", "身份证号码应为18位"),
        ("11010519491231002X1", "length", "身份证号码应为18位"),
        ("1101051949123100XX", "characters", "身份证号码包含无效字符"),
        ("11010519491231002Y", "characters", "身份证号码包含无效字符"),
        ("A1010519491231002X", "characters", "身份证号码包含无效字符"),
        ("\uff111010519491231002X", "characters", "身份证号码包含无效字符"),  # full-width digit
        ("00010519491231002X", "region", "身份证号码地区码无效"),
        ("16010519491231002X", "region", "身份证号码地区码无效"),
        ("84010519491231002X", "region", "身份证号码地区码无效"),
        ("110105194913310020", "date", "出生日期无效"),  # month 13
        ("110105190002290020", "date", "出生日期无效"),  # 1900 was not a leap year
        ("110105189912310020", "date", "出生日期无效"),  # before 1900
        ("110105000001010020", "date", "出生日期无效"),  # year 0
        ("110105299912310020", "date", "出生日期不能晚于今天"),
        ("110105194912310021", "check_digit", "身份证号码校验位错误"),
        ("110105194912310020", "check_digit", "身份证号码校验位错误"),
    ],
)
def test_resident_id_errors(value: str, reason: str, message: str) -> None:
    _reject(validate_resident_id, value, "invalid_resident_id", reason, message)
    assert not is_valid_resident_id(value)


def test_every_province_code_accepted() -> None:
    assert len(PROVINCE_CODES) == 36
    for province in PROVINCE_CODES:
        assert is_valid_resident_id(make_resident_id(province + "0000", datetime.date(2000, 2, 29), 0))


def test_birth_date_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fixed "today" keeps the boundary test from flaking at Beijing midnight.
    monkeypatch.setattr(ids, "_today", lambda: datetime.date(2024, 6, 1))
    assert is_valid_resident_id(make_resident_id("110105", datetime.date(2024, 6, 1), 1))
    assert is_valid_resident_id(make_resident_id("110105", datetime.date(1900, 1, 1), 1))
    body = "11010520240602001"
    _reject(
        validate_resident_id,
        body + resident_id_check_digit(body),
        "invalid_resident_id",
        "date",
        "出生日期不能晚于今天",
    )
    with pytest.raises(IdentifierError, match="出生日期无效"):
        make_resident_id("110105", datetime.date(1899, 12, 31), 1)


def test_today_is_beijing_date() -> None:
    assert ids._today() == datetime.datetime.now(tz=datetime.timezone(datetime.timedelta(hours=8))).date()


@pytest.mark.parametrize("seq", [-1, 1000])
def test_make_resident_id_rejects_bad_seq(seq: int) -> None:
    with pytest.raises(ValueError, match="seq"):
        make_resident_id("110105", datetime.date(1990, 1, 1), seq)


@pytest.mark.parametrize("region", ["11010", "1101055", "11O105", "990105"])
def test_make_resident_id_rejects_bad_region(region: str) -> None:
    with pytest.raises(IdentifierError) as info:
        make_resident_id(region, datetime.date(1990, 1, 1), 1)
    assert (info.value.code, info.value.reason) == ("invalid_resident_id", "region")


@pytest.mark.parametrize("first17", ["1101051949123100", "1101051949123100X", "110105194912310021"])
def test_check_digit_needs_17_digits(first17: str) -> None:
    with pytest.raises(IdentifierError) as info:
        resident_id_check_digit(first17)
    assert info.value.code == "invalid_resident_id"


def test_birth_date_of_rejects_invalid() -> None:
    with pytest.raises(IdentifierError, match="校验位"):
        birth_date_of("110105194912310021")


regions = st.builds(
    lambda p, rest: p + rest,
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
births = st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY)
resident_ids = st.builds(make_resident_id, regions, births, st.integers(0, 999))


@FAST
@given(regions, births, st.integers(0, 999))
def test_generated_resident_ids_validate(region: str, birth: datetime.date, seq: int) -> None:
    rid = make_resident_id(region, birth, seq)
    assert rid[:6] == region
    assert rid[14:17] == f"{seq:03d}"
    assert validate_resident_id(rid) == rid
    assert validate_resident_id(rid.lower()) == rid  # idempotent, and lower "x" normalises
    assert birth_date_of(rid) == birth


@FAST
@given(resident_ids, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_substitution_breaks_resident_id(rid: str, pos: int, char: str) -> None:
    if rid[pos] == char:
        char = "0" if char != "0" else "1"
    mutated = rid[:pos] + char + rid[pos + 1 :]
    assert not is_valid_resident_id(mutated)
    if pos < 17 and char != "X":
        # mod 11-2 weights are non-zero mod 11, so the check digit itself always moves.
        assert resident_id_check_digit(mutated[:17]) != rid[17]


def test_every_single_substitution_changes_id_check_digit() -> None:
    for pos in range(17):
        for digit in "0123456789":
            if digit != GB_EXAMPLE_ID[pos]:
                mutated = GB_EXAMPLE_ID[:pos] + digit + GB_EXAMPLE_ID[pos + 1 : 17]
                assert resident_id_check_digit(mutated) != "X"


# --- unified social credit code ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        (CITED_CREDIT_CODE, CITED_CREDIT_CODE),
        ("91350100m000100y43", CITED_CREDIT_CODE),
        ("  91350100M000100Y43 ", CITED_CREDIT_CODE),
        (ZJ_CREDIT_CODE, ZJ_CREDIT_CODE),
    ],
)
def test_valid_credit_codes_normalise(raw: str, normalised: str) -> None:
    assert validate_credit_code(raw) == normalised
    assert is_valid_credit_code(raw)


def test_credit_check_char_and_make() -> None:
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert credit_code_check_char("91350100m000100y4") == "3"
    assert make_credit_code("91330500MA2B12345") == ZJ_CREDIT_CODE
    assert make_credit_code("91330500ma2b12345") == ZJ_CREDIT_CODE


def test_check_value_31_maps_to_zero() -> None:
    # All zeros sum to 0, so 31 - 0 = 31 must wrap to "0" rather than index past the alphabet.
    assert credit_code_check_char("0" * 17) == "0"
    assert is_valid_credit_code("0" * 18)


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("", "length", "统一社会信用代码应为18位"),
        ("91350100M000100Y4", "length", "统一社会信用代码应为18位"),
        ("91350100M000100Y431", "length", "统一社会信用代码应为18位"),
        ("91350100I000100Y43", "characters", "统一社会信用代码包含无效字符"),
        ("91350100O000100Y43", "characters", "统一社会信用代码包含无效字符"),
        ("91350100Z000100Y43", "characters", "统一社会信用代码包含无效字符"),
        ("91350100S000100Y43", "characters", "统一社会信用代码包含无效字符"),
        ("91350100V000100Y43", "characters", "统一社会信用代码包含无效字符"),
        ("91350100M000100Y4-", "characters", "统一社会信用代码包含无效字符"),
        ("913501A0M000100Y43", "region", "统一社会信用代码行政区划码无效"),
        ("91A50100M000100Y43", "region", "统一社会信用代码行政区划码无效"),
        ("91350100M000100Y44", "check_digit", "统一社会信用代码校验位错误"),
        ("91350100M000100Y4Y", "check_digit", "统一社会信用代码校验位错误"),
    ],
)
def test_credit_code_errors(value: str, reason: str, message: str) -> None:
    _reject(validate_credit_code, value, "invalid_credit_code", reason, message)
    assert not is_valid_credit_code(value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [("91350100M000100Y", "length"), ("91350100M000100YI", "characters"), ("91A50100M000100Y4", "region")],
)
def test_make_credit_code_errors(body: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as info:
        make_credit_code(body)
    assert (info.value.code, info.value.reason) == ("invalid_credit_code", reason)


@pytest.mark.parametrize(
    ("body", "reason"), [("91350100M000100Y", "length"), ("9135010OM000100Y4", "characters")]
)
def test_credit_check_char_errors(body: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as info:
        credit_code_check_char(body)
    assert (info.value.code, info.value.reason) == ("invalid_credit_code", reason)


code_chars = st.sampled_from(CREDIT_CODE_ALPHABET)
credit_bodies = st.builds(
    lambda head, region, tail: "".join(head) + region + "".join(tail),
    st.lists(code_chars, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.lists(code_chars, min_size=9, max_size=9),
)
credit_codes = credit_bodies.map(make_credit_code)


@FAST
@given(credit_bodies)
def test_generated_credit_codes_validate(body: str) -> None:
    code = make_credit_code(body)
    assert code[:17] == body
    assert validate_credit_code(code) == code
    assert validate_credit_code(validate_credit_code(code.lower())) == code


@FAST
@given(credit_codes, st.integers(0, 17), code_chars)
def test_any_single_substitution_breaks_credit_code(code: str, pos: int, char: str) -> None:
    if code[pos] == char:
        char = CREDIT_CODE_ALPHABET[(CREDIT_CODE_ALPHABET.index(char) + 1) % 31]
    mutated = code[:pos] + char + code[pos + 1 :]
    assert not is_valid_credit_code(mutated)
    if pos < 17:
        # 31 is prime and every weight is non-zero mod 31, so the check character always moves.
        assert credit_code_check_char(mutated[:17]) != code[17]


def test_every_single_substitution_changes_credit_check_char() -> None:
    for pos in range(17):
        for char in CREDIT_CODE_ALPHABET:
            if char != CITED_CREDIT_CODE[pos]:
                mutated = CITED_CREDIT_CODE[:pos] + char + CITED_CREDIT_CODE[pos + 1 : 17]
                assert credit_code_check_char(mutated) != "3"


# --- mobile ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+8613812345678",
        "8613812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "86 138-1234-5678",
        " 138 1234 5678 ",
    ],
)
def test_valid_mobiles_normalise(raw: str) -> None:
    assert validate_mobile(raw) == "13812345678"
    assert is_valid_mobile(raw)


@pytest.mark.parametrize("second", "3456789")
def test_every_allowed_second_digit(second: str) -> None:
    assert is_valid_mobile(f"1{second}012345678")


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("", "length", "手机号码应为11位"),
        ("1381234567", "length", "手机号码应为11位"),
        ("138123456789", "length", "手机号码应为11位"),
        ("+86138123456789", "length", "手机号码应为11位"),
        ("0086 13812345678", "length", "手机号码应为11位"),
        ("+8513812345678", "characters", "手机号码包含无效字符"),
        ("1381234567a", "characters", "手机号码包含无效字符"),
        ("(138)12345678", "characters", "手机号码包含无效字符"),
        ("\uff113812345678", "characters", "手机号码包含无效字符"),  # full-width digit
        ("12812345678", "format", "手机号码格式错误"),
        ("23812345678", "format", "手机号码格式错误"),
        ("+8602112345678", "format", "手机号码格式错误"),
    ],
)
def test_mobile_errors(value: str, reason: str, message: str) -> None:
    _reject(validate_mobile, value, "invalid_mobile", reason, message)
    assert not is_valid_mobile(value)


mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
separators = st.sampled_from(["", " ", "-", "  ", " - "])


@FAST
@given(mobiles, st.sampled_from(["", "+86", "86"]), separators, separators, separators)
def test_mobile_round_trips_with_prefix_and_separators(
    number: str, prefix: str, sep0: str, sep1: str, sep2: str
) -> None:
    decorated = f"{prefix}{sep0 if prefix else ''}{number[:3]}{sep1}{number[3:7]}{sep2}{number[7:]}"
    assert validate_mobile(decorated) == number
    assert validate_mobile(validate_mobile(decorated)) == number


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("330502199001011234", "330502********1234"),
        ("33050219900101123X", "330502********123X"),
        ("3305021990010112", "3**************2"),
        ("abc", "a*c"),
        ("ab", "**"),
        ("a", "*"),
        ("", ""),
    ],
)
def test_mask_resident_id(value: str, masked: str) -> None:
    assert mask_resident_id(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+************8"),
        ("1381234567", "1********7"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_mobile(value: str, masked: str) -> None:
    assert mask_mobile(value) == masked


def test_mask_none_passes_through() -> None:
    assert mask_resident_id(None) is None
    assert mask_mobile(None) is None


def _revealable(n: int, length: int, head: int, tail: int) -> set[int]:
    if n == length:
        return set(range(head)) | set(range(n - tail, n))
    return {0, n - 1} if n > 2 else set()


@FAST
@given(st.one_of(st.text(max_size=30), resident_ids, mobiles))
def test_masking_preserves_length_and_hides_the_middle(value: str) -> None:
    for mask, length, head, tail in ((mask_resident_id, 18, 6, 4), (mask_mobile, 11, 3, 4)):
        masked = mask(value)
        assert len(masked) == len(value)
        allowed = _revealable(len(value), length, head, tail)
        for i, (orig, shown) in enumerate(zip(value, masked, strict=True)):
            if i in allowed:
                assert shown == orig
            else:
                assert shown == "*"
        if len(value) > 0:
            assert masked.count("*") >= 1
