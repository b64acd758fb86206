"""Unit import/export without a database: reading CSV/XLSX, per-row validation, planning writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eqian.core.ids import make_credit_code
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.transfer import (
    COLUMNS,
    UNIT_DEFAULTS,
    ImportFailed,
    Lookups,
    RowError,
    _cell_text,
    _csv_guard,
    _CsvSink,
    _export_row,
    _XlsxSink,
    plan_import,
    read_rows,
    validate_row,
    validate_rows,
)

CODE_A = make_credit_code("91330502000000001")
CODE_B = make_credit_code("91330502000000002")
CODE_C = make_credit_code("91330502000000003")

ZH_HEADER = ",".join(zh for _, zh in COLUMNS)
EN_HEADER = ",".join(name for name, _ in COLUMNS)

STATION_N, STATION_S = 1, 2
SP_N, SP_S = 10, 20


def lookups(allowed: frozenset[int] | None = None) -> Lookups:
    return Lookups.build(
        categories=[(c.code, c.name_zh, c.name_en) for c in CATEGORIES],
        stations=[(STATION_N, "ZB", "织北派出所"), (STATION_S, "ZN", "织南派出所")],
        service_points=[(SP_N, STATION_N, "大河服务点"), (SP_S, STATION_S, "吴兴服务点")],
        allowed_station_ids=allowed,
    )


def raw(**overrides: str) -> dict[str, str]:
    row = {
        "name": "织里好孩子童装有限公司",
        "credit_code": CODE_A,
        "category": "童装企业",
        "station": "织北派出所",
        "service_point": "大河服务点",
        "address": "织里镇大河路1号",
        "lat": "30.8712",
        "lng": "120.2345",
        "employee_count": "120",
        "above_scale": "是",
        "status": "在营",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- read_rows: CSV -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_in_every_encoding_excel_produces(tmp_path: Path, encoding: str) -> None:
    text = f"{ZH_HEADER}\n织里好孩子童装有限公司,{CODE_A},童装企业,织北派出所,,织里镇大河路1号,,,120,是,在营"
    rows = read_rows(write_csv(tmp_path / "units.csv", text, encoding))
    assert rows == [
        (
            2,
            {
                "name": "织里好孩子童装有限公司",
                "credit_code": CODE_A,
                "category": "童装企业",
                "station": "织北派出所",
                "service_point": "",
                "address": "织里镇大河路1号",
                "lat": "",
                "lng": "",
                "employee_count": "120",
                "above_scale": "是",
                "status": "在营",
            },
        )
    ]


def test_csv_english_headers_any_case_and_extra_columns(tmp_path: Path) -> None:
    text = f"序号,Name,CREDIT_CODE,category,station,备注\n1,吾悦广场,{CODE_A},market,ZB,三楼\n"
    rows = read_rows(write_csv(tmp_path / "u.csv", text))
    assert rows == [(2, {"name": "吾悦广场", "credit_code": CODE_A, "category": "market", "station": "ZB"})]


def test_csv_line_numbers_are_spreadsheet_rows(tmp_path: Path) -> None:
    text = (
        f"{ZH_HEADER}\r\n"
        f"甲单位,{CODE_A},童装企业,织北派出所,,,,,,,\r\n"
        "\r\n"
        ",,,,,,,,,,\r\n"
        f'乙单位,{CODE_B},童装企业,织北派出所,,"多行\r\n地址",,,,,\r\n'
        f"丙单位,{CODE_C},童装企业,织北派出所\r\n"
    )
    rows = read_rows(write_csv(tmp_path / "u.csv", text))
    # Blank rows count as rows; a quoted newline does not start one.
    assert [(line, r["name"]) for line, r in rows] == [(2, "甲单位"), (5, "乙单位"), (6, "丙单位")]
    assert rows[1][1]["address"] == "多行\r\n地址"
    assert rows[2][1]["address"] == ""  # a short row is padded, not shifted


def test_title_row_above_header_keeps_excel_numbering(tmp_path: Path) -> None:
    text = f"织里镇重点单位信息表,,,\n{ZH_HEADER}\n甲单位,{CODE_A},童装企业,织北派出所\n"
    assert [line for line, _ in read_rows(write_csv(tmp_path / "u.csv", text))] == [3]


def test_cells_are_trimmed_and_formula_guard_removed(tmp_path: Path) -> None:
    text = f"{ZH_HEADER}\n\u3000'=甲单位 ,\u200b{CODE_A}\xa0,童装企业,织北派出所\n"
    [(_, row)] = read_rows(write_csv(tmp_path / "u.csv", text))
    assert row["name"] == "=甲单位"
    assert row["credit_code"] == CODE_A


def test_missing_required_header_is_one_error_per_column_on_line_1(tmp_path: Path) -> None:
    text = "单位名称,单位类别,地址\n甲单位,童装企业,x\n"
    with pytest.raises(ImportFailed) as info:
        read_rows(write_csv(tmp_path / "u.csv", text))
    errors = info.value.errors
    assert {(e.line, e.field, e.code) for e in errors} == {
        (1, "credit_code", "missing_column"),
        (1, "station", "missing_column"),
    }
    assert any("统一社会信用代码" in e.message for e in errors)
    assert info.value.status_code == 422
    assert info.value.details[0]["line"] == 1


def test_duplicate_column_is_reported(tmp_path: Path) -> None:
    text = f"{ZH_HEADER},name\n"
    with pytest.raises(ImportFailed) as info:
        read_rows(write_csv(tmp_path / "u.csv", text))
    [err] = info.value.errors
    assert (err.line, err.field, err.code) == (1, "name", "duplicate_column")
    assert "A" in err.message
    assert "L" in err.message


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed) as info:
        read_rows(write_csv(tmp_path / "h.csv", f"{ZH_HEADER}\n,,,\n"))
    assert [e.code for e in info.value.errors] == ["no_data"]
    with pytest.raises(ImportFailed) as info:
        read_rows(write_csv(tmp_path / "e.csv", ""))
    assert [e.code for e in info.value.errors] == ["empty_file"]


def test_undecodable_csv(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(ZH_HEADER.encode() + b"\n\x81\x30\xff\xff\n")
    with pytest.raises(ImportFailed, match="编码"):
        read_rows(path)


@pytest.mark.parametrize(
    ("name", "needle"), [("units.xls", ".xls"), ("units.txt", ".txt"), ("units", "无扩展名")]
)
def test_unsupported_suffix(tmp_path: Path, name: str, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"whatever")
    with pytest.raises(ImportFailed) as info:
        read_rows(path)
    assert needle in info.value.message
    assert info.value.errors == []


# --- read_rows: XLSX ----------------------------------------------------------------------------


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(row=r, column=c, value=value)
    wb.save(path)
    return path


def test_xlsx_values_and_line_numbers(tmp_path: Path) -> None:
    header = [zh for _, zh in COLUMNS]
    path = write_xlsx(
        tmp_path / "u.xlsx",
        {
            "单位": [
                header,
                [
                    "甲单位",
                    CODE_A,
                    "童装企业",
                    "织北派出所",
                    None,
                    "大河路1号",
                    30.8712,
                    120.2345,
                    120.0,
                    True,
                    "在营",
                ],
                [],
                ["乙单位", CODE_B, "garment", "ZB", None, None, 30, None, 7, False],
            ]
        },
    )
    rows = read_rows(path)
    assert [line for line, _ in rows] == [2, 4]
    first = rows[0][1]
    assert (first["lat"], first["lng"], first["employee_count"], first["above_scale"]) == (
        "30.8712",
        "120.2345",
        "120",
        "true",
    )
    assert rows[1][1]["lat"] == "30"
    assert rows[1][1]["status"] == ""


def test_xlsx_finds_the_data_sheet_behind_an_instructions_sheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "u.xlsx",
        {
            "填写说明": [["请按模板填写"], ["单位类别可填中文名称"]],
            "数据": [["name", "credit_code", "category", "station"], ["甲单位", CODE_A, "garment", "ZB"]],
        },
    )
    wb = openpyxl.load_workbook(path)
    wb.active = 0
    wb.save(path)
    expected = {"name": "甲单位", "credit_code": CODE_A, "category": "garment", "station": "ZB"}
    assert read_rows(path) == [(2, expected)]


def test_xlsx_missing_header_and_corrupt_file(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "u.xlsx", {"s": [["单位名称", "地址"], ["甲单位", "x"]]})
    with pytest.raises(ImportFailed) as info:
        read_rows(path)
    assert {e.field for e in info.value.errors} == {"credit_code", "category", "station"}
    assert {e.line for e in info.value.errors} == {1}
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ImportFailed, match="Excel"):
        read_rows(broken)


# --- validate_row ---------------------------------------------------------------------------------


def test_valid_row_by_chinese_names() -> None:
    values, errors = validate_row(2, raw(), lookups())
    assert errors == []
    assert values == {
        "name": "织里好孩子童装有限公司",
        "credit_code": CODE_A,
        "category_code": "garment",
        "station_id": STATION_N,
        "service_point_id": SP_N,
        "address": "织里镇大河路1号",
        "lat": 30.8712,
        "lng": 120.2345,
        "employee_count": 120,
        "above_scale": True,
        "status": "active",
    }


def test_valid_row_by_codes_and_blank_optionals_are_absent() -> None:
    row = {"name": "吾悦广场", "credit_code": CODE_A.lower(), "category": "MARKET", "station": "zn"}
    values, errors = validate_row(7, row, lookups())
    assert errors == []
    assert values == {
        "name": "吾悦广场",
        "credit_code": CODE_A,
        "category_code": "market",
        "station_id": STATION_S,
    }


def test_every_problem_on_a_row_is_reported_with_its_field() -> None:
    bad = raw(
        name="甲",
        credit_code="91330502MA2ABCDEF0",
        category="服装厂",
        station="织东派出所",
        service_point="不存在服务点",
        address="长" * 201,
        lat="北纬30",
        lng="200",
        employee_count="-3",
        above_scale="大概",
        status="营业中",
    )
    values, errors = validate_row(9, bad, lookups())
    assert values is None
    assert all(e.line == 9 for e in errors)
    assert [e.field for e in errors] == [
        "name",
        "credit_code",
        "category",
        "station",
        "service_point",
        "address",
        "lat",
        "lng",
        "employee_count",
        "above_scale",
        "status",
    ]
    for err, label in zip(errors, [zh for _, zh in COLUMNS], strict=True):
        assert label in err.message, err
    assert {e.code for e in errors} >= {
        "invalid_length",
        "unknown_category",
        "unknown_station",
        "unknown_service_point",
        "too_long",
        "invalid_number",
        "out_of_range",
        "invalid_boolean",
        "invalid_status",
    }


@pytest.mark.parametrize("missing", ["name", "credit_code", "category", "station"])
def test_required_fields(missing: str) -> None:
    values, errors = validate_row(3, raw(**{missing: "  "}), lookups())
    assert values is None
    assert [(e.field, e.code) for e in errors] == [(missing, "required")]


def test_name_length_bounds() -> None:
    assert validate_row(2, raw(name="甲乙"), lookups())[1] == []
    assert validate_row(2, raw(name="甲" * 100), lookups())[1] == []
    assert [e.code for e in validate_row(2, raw(name="甲" * 101), lookups())[1]] == ["invalid_length"]


def test_credit_code_mangled_by_excel_gets_a_hint() -> None:
    _, [err] = validate_row(2, raw(credit_code="9.13305E+17"), lookups())
    assert err.field == "credit_code"
    assert "文本" in err.message


@pytest.mark.parametrize(("text", "expected"), [("120", 120), ("120.0", 120), ("1,200", 1200), ("0", 0)])
def test_employee_count_accepts_excel_forms(text: str, expected: int) -> None:
    values, _ = validate_row(2, raw(employee_count=text), lookups())
    assert values is not None
    assert values["employee_count"] == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("12.5", "invalid_integer"),
        ("-1", "out_of_range"),
        ("一百", "invalid_integer"),
        ("2000000", "out_of_range"),
    ],
)
def test_employee_count_rejects(text: str, code: str) -> None:
    _, errors = validate_row(2, raw(employee_count=text), lookups())
    assert [(e.field, e.code) for e in errors] == [("employee_count", code)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True),
        ("否", False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        ("Y", True),
        ("n", False),
    ],
)
def test_above_scale_spellings(text: str, expected: bool) -> None:
    values, _ = validate_row(2, raw(above_scale=text), lookups())
    assert values is not None
    assert values["above_scale"] is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("active", "active"),
        ("Suspended", "suspended"),
        ("closed", "closed"),
        ("在营", "active"),
        ("停业整顿", "suspended"),
        ("注销", "closed"),
    ],
)
def test_status_spellings(text: str, expected: str) -> None:
    values, _ = validate_row(2, raw(status=text), lookups())
    assert values is not None
    assert values["status"] == expected


@pytest.mark.parametrize(
    ("lat", "lng", "field", "code"),
    [
        ("91", "120", "lat", "out_of_range"),
        ("30", "-181", "lng", "out_of_range"),
        ("nan", "120", "lat", "invalid_number"),
        ("30", "inf", "lng", "invalid_number"),
        ("120.2", "30.8", "lat", "swapped_coordinates"),
    ],
)
def test_coordinates(lat: str, lng: str, field: str, code: str) -> None:
    _, errors = validate_row(2, raw(lat=lat, lng=lng), lookups())
    assert [(e.field, e.code) for e in errors] == [(field, code)]


def test_coordinates_at_the_edges_are_fine() -> None:
    values, _ = validate_row(2, raw(lat="-90", lng="180"), lookups())
    assert values is not None
    assert (values["lat"], values["lng"]) == (-90.0, 180.0)


def test_station_outside_scope_reads_like_an_unknown_one() -> None:
    _, outside = validate_row(2, raw(station="织南派出所", service_point=""), lookups(frozenset({STATION_N})))
    _, unknown = validate_row(2, raw(station="织东派出所", service_point=""), lookups(frozenset({STATION_N})))
    assert [(e.field, e.code) for e in outside] == [("station", "unknown_station")]
    assert [e.code for e in unknown] == ["unknown_station"]
    assert outside[0].message.replace("织南", "织东") == unknown[0].message


def test_service_point_must_belong_to_the_rows_station() -> None:
    _, errors = validate_row(2, raw(station="织北派出所", service_point="吴兴服务点"), lookups())
    assert [(e.field, e.code) for e in errors] == [("service_point", "service_point_mismatch")]


# --- validate_rows and plan_import ----------------------------------------------------------------


def test_duplicate_credit_code_is_an_error_on_the_later_line() -> None:
    rows = [(2, raw()), (3, raw(credit_code=CODE_B)), (5, raw(name="另一家", credit_code=CODE_A.lower()))]
    valid, errors = validate_rows(rows, lookups())
    assert [line for line, _ in valid] == [2, 3]
    assert errors == [RowError(5, "credit_code", "duplicate_in_file", errors[0].message)]
    assert "第 2 行" in errors[0].message


def test_all_rows_are_checked_not_just_the_first_bad_one() -> None:
    rows = [
        (i, raw(credit_code=make_credit_code(f"913305020000{i:05d}"), name="甲" if i % 2 else "正常单位"))
        for i in range(2, 12)
    ]
    _, errors = validate_rows(rows, lookups())
    assert [e.line for e in errors] == [3, 5, 7, 9, 11]


def _existing(unit_id: int, **values: Any) -> dict[str, Any]:
    base = {
        "id": unit_id,
        "name": "织里好孩子童装有限公司",
        "category_code": "garment",
        "station_id": STATION_N,
        "service_point_id": SP_N,
        "address": "织里镇大河路1号",
        "lat": 30.8712,
        "lng": 120.2345,
        "employee_count": 120,
        "above_scale": True,
        "status": "active",
    }
    return {**base, **values}


def test_plan_creates_with_defaults_and_updates_only_real_changes() -> None:
    valid, _ = validate_rows(
        [
            (2, raw()),  # identical to what is stored
            (3, raw(credit_code=CODE_B, employee_count="130")),
            (4, {"name": "新单位", "credit_code": CODE_C, "category": "garment", "station": "ZB"}),
        ],
        lookups(),
    )
    existing = {CODE_A: _existing(1), CODE_B: _existing(2)}
    plan = plan_import(valid, existing, lookups())
    assert plan.errors == []
    assert plan.unchanged == 1
    assert plan.updates == [{"id": 2, "employee_count": 130}]
    assert plan.creates == [
        {
            **UNIT_DEFAULTS,
            "name": "新单位",
            "credit_code": CODE_C,
            "category_code": "garment",
            "station_id": STATION_N,
        }
    ]


def test_plan_blank_cells_keep_existing_values() -> None:
    sparse = {
        "name": "织里好孩子童装有限公司",
        "credit_code": CODE_A,
        "category": "garment",
        "station": "ZB",
        "address": "",
        "employee_count": "",
        "status": "",
    }
    valid, _ = validate_rows([(2, sparse)], lookups())
    plan = plan_import(valid, {CODE_A: _existing(1, status="closed")}, lookups())
    assert (plan.updates, plan.unchanged) == ([], 1)


def test_plan_moving_station_drops_the_old_service_point() -> None:
    valid, _ = validate_rows([(2, raw(station="织南派出所", service_point=""))], lookups())
    plan = plan_import(valid, {CODE_A: _existing(1)}, lookups())
    assert plan.updates == [{"id": 1, "station_id": STATION_S, "service_point_id": None}]


def test_plan_refuses_units_registered_in_another_jurisdiction() -> None:
    scoped = lookups(frozenset({STATION_N}))
    valid, _ = validate_rows([(2, raw()), (3, raw(credit_code=CODE_B))], scoped)
    plan = plan_import(valid, {CODE_A: _existing(1, station_id=STATION_S)}, scoped)
    [err] = plan.errors
    assert (err.line, err.field, err.code) == (2, "credit_code", "registered_elsewhere")
    assert "织南" not in err.message
    assert "1" not in err.message
    assert [c["credit_code"] for c in plan.creates] == [CODE_B]


# --- export files re-import unchanged (the database part is simulated) -----------------------------

_ZW = "\ufeff\u200b\u200c\u200d\u2060"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=12))
@example("=SUM(A1)")
@example("-负号")
@example("'=已有引号")
@example("''+1")
@example("'普通引号")
def test_csv_formula_guard_round_trips(text: str) -> None:
    clean = text.strip().strip(_ZW).strip()
    guarded = _csv_guard(clean)
    assert guarded[:1] not in ("=", "+", "-", "@")
    assert _cell_text(guarded) == clean


# What the export query yields per unit: name, credit code, category name, station name,
# service point name, address, lat, lng, employee count, above scale, status.
EXPORTED: list[tuple[Any, ...]] = [
    (
        '=HYPERLINK("http://x")',
        CODE_A,
        "童装企业",
        "织北派出所",
        "大河服务点",
        "大河路1号",
        30.87123456789,
        120.1,
        120,
        True,
        "active",
    ),
    (
        "-负号公司",
        CODE_B,
        "商场市场",
        "织南派出所",
        None,
        '多行\n地址, 带"引号"',
        None,
        None,
        0,
        False,
        "suspended",
    ),
    ("'=引号开头", CODE_C, "危化单位", "织北派出所", None, "", -0.5, 1e-7, 7, False, "closed"),
]


def _stored(i: int, row: tuple[Any, ...]) -> dict[str, Any]:
    name, _, category, station, sp, address, lat, lng, employees, above, status = row
    cat = next(c.code for c in CATEGORIES if c.name_zh == category)
    station_id = STATION_N if station == "织北派出所" else STATION_S
    return {
        "id": i,
        "name": name,
        "category_code": cat,
        "station_id": station_id,
        "service_point_id": SP_N if sp else None,
        "address": address,
        "lat": lat,
        "lng": lng,
        "employee_count": employees,
        "above_scale": above,
        "status": status,
    }


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_exported_file_reimports_with_no_errors_and_no_changes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"units{suffix}"
    sink = _CsvSink(path) if suffix == ".csv" else _XlsxSink(path)
    sink.write([_export_row(r) for r in EXPORTED])
    sink.close()
    if suffix == ".csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
        assert "'=HYPERLINK" in path.read_text("utf-8-sig")
    else:
        ws = openpyxl.load_workbook(path).active
        assert ws["A2"].data_type == "s"  # written as text, not as a live formula
        assert [c.value for c in ws[1]] == [zh for _, zh in COLUMNS]
    valid, errors = validate_rows(read_rows(path), lookups())
    assert errors == []
    existing = {row[1]: _stored(i, row) for i, row in enumerate(EXPORTED, start=1)}
    plan = plan_import(valid, existing, lookups())
    assert (plan.creates, plan.updates, plan.errors, plan.unchanged) == ([], [], [], len(EXPORTED))
