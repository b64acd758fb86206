"""Safety index computation at city scale: SQLite and PostgreSQL against DuckDB on the same rows.

Builds a throwaway database with 20,000 units in 40 stations and two years of the rows every facts
module of the index (``eqian.core.facts.SOURCES``) reads, per month at full size:

- hazards (50,000), self-inspections (20,000), hires with person and residence registration
  (20,000 each), activity invitations (4 roundtables per station, 100 units each: 16,000) and
  environment alerts (80);
- incidents: 10,000 linked to a unit and 4,000 street calls without one (``unit_id`` NULL), over
  every category, with police flag, severity, route (dispatch / self_governance / mediation) and
  SLA, open and done statuses, resolution times of which some breach the SLA, fraud loss and
  recovery;
- mediation: 120 station teams and 1,000 units' own advisers (in-unit teams; once, not monthly);
  ~1,050 cases (~650 from mediation-routed incidents, 400 brought by units or walk-ins, some of
  them handled in-unit) with outcome agreement / failed / referred, amount recovered, closed_at;
- enterprise requests: 1,000 (submitted, replied, resolved, rated), routed to the 4 default
  departments;
- messaging: 4 instructions per station (a message in the station's channel each) addressed to
  all of the station's units: 80,000 receipts, ~90 % acknowledged (~95 % of those by the
  deadline), with ``ack_latency_seconds``; unacknowledged ones escalated.

About 5.8 million rows in all, 1.9 million of them receipts (``--quick``: 2,000 units in 8
stations, ~620,000 rows), inserted in bulk (stdlib sqlite3 / asyncpg COPY). Generating them takes
about 12 s and 1.6 GB. Then, for the last month:

- ``compute_s``: ``eqian.safety_index.service.compute_month`` end to end, the code path of
  ``eqian index compute`` (one facts pass per domain, scoring in Python, ranks, the change from
  last month's index, one bulk write of every unit's row, audit row and outbox event, commit),
  for a month not computed yet, as the monthly job finds it (before each run, untimed, the
  month's rows are deleted and vacuumed away). Best of 3. Last month's index is computed first,
  untimed, so every run reads it for the change.
- ``recompute_s``: the same for a month already computed, replaced in the same transaction (a
  re-run for late data: its old rows are deleted, and the new ones written among them). Best of 3.
- ``facts_s``: the facts pass alone (``unit_metrics``), best of 3.
- ``paced_s``: ``compute_month`` once more with ``pace=DEFAULT_PACE``, as the monthly job and
  ``eqian index compute`` run it beside the live service (``core/pacing.py``; PostgreSQL only);
  ``paced_paused_s``: how much of it was pauses (the pacer pauses only while another client of the
  database is busy, so on an otherwise idle database it should be about 0).
- ``score_s``: the Python scoring alone for every unit over every metric of the model (synthetic
  values, all metrics non-zero: the worst case), with ranks: ``score_slices`` as ``compute_month``
  scores (figures; the reasons are written when a month is read).
- ``cpu_loop_s``: a 10M-iteration Python loop, to read the figures against the machine's load.
- baseline ``duckdb_s``: DuckDB (in-process, columnar) running the same aggregations (the same
  GROUP BYs, filters and month attribution as the facts modules) over the same rows, loaded from
  CSV: the best of 3 runs at first (``duckdb_first_s``) and of one run just before each backend's
  timed new month (the host's speed drifts within minutes; the baseline is taken in the same ones).
Ratios: ``compute_s / duckdb_s``, ``recompute_s / duckdb_s`` and ``facts_s / duckdb_s`` per backend.

Honesty check: every metric of ``unit_metrics`` on each backend (the last timed pass), summed over
all units, against the same total from the DuckDB queries' rows: ``metrics_checked``,
``max_rel_diff``, ``agree`` (every one within 1e-6, relative) and, if not, ``mismatches`` (per
backend, metric: [backend, duckdb]). One fact reads the clock (``workforce.registration_pending``:
hired within the window before today; the incidents' and messaging's facts judge at the month's
end, or now for the month under way), so DuckDB computes the totals at the clock read just before
and just after that pass and the backend's must lie between the two (the same unless it spans a
local midnight).

Usage: python bench/index.py [--quick] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
Last line: JSON with the figures, the baseline's, the ratios and the check.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import gc
import itertools
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped]
import duckdb
from sqlalchemy import delete, insert, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import eqian.all_models  # noqa: F401 - every table, for create_all
from eqian.core.db import Base, make_engine, make_sessionmaker, utcnow
from eqian.core.facts import SOURCES
from eqian.core.months import LOCAL_TZ
from eqian.core.months import between as months_between
from eqian.core.months import bounds as month_bounds
from eqian.core.months import shift as shift_month
from eqian.core.permissions import SYSTEM
from eqian.demo.requests import TEXTS as REQUEST_TEXTS  # kind -> (title, body), as the demo files them
from eqian.incidents.routing import DEFAULT_SLA, POLICE_BY_CATEGORY
from eqian.mediation.schemas import DISPUTE_TYPES
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import Bureau, Station, Unit, UnitCategory
from eqian.requests.schemas import SLA_DAYS
from eqian.requests.service import DEFAULT_DEPARTMENTS
from eqian.safety_index.compute import group_ranks, load_model, score_slices
from eqian.safety_index.models import SafetyIndexRun, SafetyIndexScore
from eqian.safety_index.service import DEFAULT_PACE, SCORE_SLICE, compute_month, unit_metrics
from eqian.workforce.service import registration_window_days

PG_DATABASE = "eqian_bench_index"  # created and dropped by this script
SEED = 365
LAST_MONTH = "2026-10"
MONTHS = 24
NAMES = SOURCES  # every facts module the index reads
NOW = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
Rows = list[tuple[Any, ...]]

# Incident categories (every code of the classifier): weight on a unit, weight in the street,
# a description, the classifier's evidence.
INCIDENT_KINDS: dict[str, tuple[int, int, str, str]] = {
    "labor": (14, 3, "员工报警称老板拖欠三个月工资，双方在车间门口发生争执", '["工资"]'),
    "processing_fee": (10, 1, "加工户称童装厂拖欠加工费，现场情绪激动", '["加工费"]'),
    "economic": (8, 3, "报警人称对方欠款不还，要求民警到场处理", '["欠款"]'),
    "contract": (6, 1, "双方因布料供货合同违约发生纠纷", '["合同"]'),
    "family": (2, 12, "夫妻因家庭琐事发生争吵，女方要求民警到场", '["夫妻"]'),
    "neighbor": (3, 12, "邻居因楼道堆放杂物发生口角", '["邻居"]'),
    "traffic": (8, 20, "厂区门口电动车与货车发生碰擦，无人受伤", '["碰擦"]'),
    "theft": (12, 12, "报警称仓库内一批童装面料被盗", '["被盗"]'),
    "fraud": (10, 6, "报警人称接到冒充客服电话，被骗转账", '["被骗", "转账"]'),
    "fire": (5, 2, "厂房二楼冒烟，疑似电线短路起火", '["起火"]'),
    "help": (3, 12, "报警人称老人走失，请求民警协助寻找", '["走失"]'),
    "public_order": (8, 12, "夜市摊位附近有人酒后滋事", '["滋事"]'),
    "environment": (4, 2, "群众举报有车辆夜间偷倒铝灰", '["铝灰"]'),
    "other": (7, 2, "报警人反映情况，需民警到场了解核实", "[]"),
}
SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_CW = (30, 80, 95, 100)
OPEN_CHOICES = ("reported", "triaged", "assigned", "assigned", "in_progress", "in_progress", "in_progress")
STATUS_LEVEL = {"reported": 0, "triaged": 1, "assigned": 2, "in_progress": 3, "resolved": 4, "closed": 5}
LINKS = (
    ("ref", "接警单注明单位编号"),
    ("name", "报警内容含单位名称"),
    ("address", "地址与单位登记地址一致"),
    ("nearest", "报警位置 150 米内最近的单位"),
)
ADDRESSES = tuple(
    f"织里镇{s}{n}号" for s in ("大港路", "珍贝路", "康泰路", "栋梁路", "富民路") for n in range(1, 41)
)
DISPUTE_OF = {
    c: c for c in ("labor", "processing_fee", "economic", "contract", "family", "neighbor", "traffic")
}
MONEY_DISPUTES = frozenset({"labor", "processing_fee", "economic", "contract", "traffic", "consumer"})
CASE_SUMMARY = {code: f"{label}：当事双方申请调解，请求依法处理" for code, label in DISPUTE_TYPES.items()}
CASE_NOTE = {
    None: "",
    "agreement": "双方自愿达成调解协议",
    "failed": "双方分歧较大，调解不成",
    "referred": "已告知当事人通过其他途径解决",
}
AGREEMENT_TEXT = "经调解，双方自愿达成如下协议：被申请人按约定金额支付申请人款项，双方就此事再无其他纠葛。"
REQUEST_REPLY = "已收到诉求，已转相关部门办理，办理结果将及时反馈。"
REQUEST_RESOLUTION = "已按诉求办理完毕，相关情况已电话反馈企业负责人。"
REQUEST_KINDS = tuple(REQUEST_TEXTS)
REQUEST_CW = tuple(itertools.accumulate((20, 10, 5, 20, 35, 10)))
RATING_CW = (3, 7, 17, 50, 100)
INSTRUCTION_TEXTS = (
    ("关于开展消防安全自查的通知", "请于截止时间前完成消防通道、灭火器和电气线路自查，并回执。"),
    ("反诈宣传：组织员工观看反诈视频", "请组织全体员工观看反诈宣传片，并回复观看人数。"),
    ("节前安全检查部署", "节前请落实值班安排，排查仓库、宿舍安全隐患。"),
    ("铝灰等危废规范处置提醒", "严禁私自转运、倾倒铝灰，请核对危废台账并回执。"),
    ("外来务工人员居住登记核查", "请核对本单位新招员工居住登记情况，未登记的尽快办理。"),
    ("防汛防台应急准备", "台风临近，请检查排水设施和临时搭建物，做好人员转移准备。"),
)


def unit_station(unit_id: int, n_stations: int) -> int:
    """The bench district's layout: units dealt to the stations in turn (1 to 1, 2 to 2, …)."""
    return (unit_id - 1) % n_stations + 1


def plan(n_units: int, n_stations: int, scale: float) -> dict[str, tuple[list[str], Rows]]:
    """Every table's (columns, rows), deterministic for the seed."""
    rng = random.Random(SEED)
    months = months_between(shift_month(LAST_MONTH, -(MONTHS - 1)), LAST_MONTH)
    hz: Rows = []
    insp: Rows = []
    persons: Rows = []
    emps: Rows = []
    res: Rows = []
    acts: Rows = []
    invs: Rows = []
    alerts: Rows = []
    by_station: dict[int, list[int]] = {}
    for u in range(1, n_units + 1):
        by_station.setdefault(unit_station(u, n_stations), []).append(u)
    for month in months:
        start, end = month_bounds(month)
        span = (end - start).total_seconds()

        def at() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.random() * span)  # noqa: B023

        for _ in range(int(2.5 * scale * n_units)):
            found = at()
            deadline = found + dt.timedelta(days=rng.choice((3, 7, 15, 30)))
            fixed = found + dt.timedelta(days=rng.random() * 40)
            verified = fixed if rng.random() < 0.85 and fixed < NOW else None
            hz.append(
                (
                    len(hz) + 1,
                    rng.randrange(1, n_units + 1),
                    "隐患",
                    "medium",
                    "verified" if verified else "open",
                    found,
                    deadline,
                    verified,
                    0,
                    found,
                )
            )
        for _ in range(int(1.0 * scale * n_units)):
            t = at()
            insp.append((len(insp) + 1, rng.randrange(1, n_units + 1), "self_inspection", t, "", t))
        for _ in range(int(1.0 * scale * n_units)):
            pid = len(persons) + 1
            hired = at().date()
            persons.append((pid, f"P{pid:017d}", "员工", "", dt.date(1995, 1, 1), "330502", NOW))
            emps.append((pid, pid, rng.randrange(1, n_units + 1), hired, "", "", NOW))
            r = rng.random()
            reg = hired + dt.timedelta(days=rng.randrange(0, 25 if r < 0.8 else 90)) if r < 0.95 else None
            res.append((pid, "registered" if reg else "unregistered", reg, NOW))
        for station, units in by_station.items():
            for _ in range(4):
                aid = len(acts) + 1
                t = at()
                acts.append(
                    (
                        aid,
                        station,
                        "roundtable",
                        "恳谈",
                        t,
                        t + dt.timedelta(hours=2),
                        "",
                        "held",
                        "",
                        NOW,
                        NOW,
                    )
                )
                for u in rng.sample(units, min(len(units), max(1, int(100 * scale)))):
                    invs.append((len(invs) + 1, aid, u, "accepted", rng.random() < 0.8, 1, ""))
        for _ in range(max(1, int(0.004 * scale * n_units))):
            t = at()
            alerts.append(
                (
                    len(alerts) + 1,
                    f"b{len(alerts)}",
                    rng.randrange(1, n_units + 1),
                    "ash",
                    "red",
                    month,
                    "铝灰",
                    "{}",
                    "open",
                    t,
                )
            )
    tables = {
        "hz_hazards": (
            [
                "id",
                "unit_id",
                "description",
                "severity",
                "status",
                "found_at",
                "deadline",
                "verified_at",
                "escalation_level",
                "updated_at",
            ],
            hz,
        ),
        "hz_inspections": (["id", "unit_id", "kind", "inspected_at", "note", "created_at"], insp),
        "workforce_persons": (
            ["id", "id_number", "name", "phone", "birth_date", "home_region", "created_at"],
            persons,
        ),
        "workforce_employments": (
            ["id", "person_id", "unit_id", "hired_on", "dormitory", "position", "created_at"],
            emps,
        ),
        "workforce_residences": (["person_id", "status", "registered_on", "updated_at"], res),
        "activities": (
            [
                "id",
                "station_id",
                "kind",
                "title",
                "starts_at",
                "ends_at",
                "location",
                "status",
                "minutes",
                "created_at",
                "updated_at",
            ],
            acts,
        ),
        "activity_invitations": (
            ["id", "activity_id", "unit_id", "response", "attended", "attendee_count", "attendee_names"],
            invs,
        ),
        "env_alerts": (
            [
                "id",
                "fingerprint",
                "unit_id",
                "kind",
                "severity",
                "period",
                "message",
                "evidence",
                "status",
                "created_at",
            ],
            alerts,
        ),
    }
    # After the four older domains, from the same generator: their rows stay what they were.
    tables.update(plan_more(rng, months, by_station, n_units, n_stations, scale))
    return tables


def plan_more(
    rng: random.Random,
    months: list[str],
    by_station: dict[int, list[int]],
    n_units: int,
    n_stations: int,
    scale: float,
) -> dict[str, tuple[list[str], Rows]]:
    """Incidents, mediation, enterprise requests, instructions with their receipts (in foreign-key order)."""
    station_of = [0] + [unit_station(u, n_stations) for u in range(1, n_units + 1)]
    cats = list(INCIDENT_KINDS)
    cw_unit = list(itertools.accumulate(k[0] for k in INCIDENT_KINDS.values()))
    cw_street = list(itertools.accumulate(k[1] for k in INCIDENT_KINDS.values()))
    disputes = list(DISPUTE_TYPES)
    zero = Decimal("0.00")
    incidents: Rows = []
    cases: Rows = []
    requests: Rows = []
    channels: Rows = []
    messages: Rows = []
    instructions: Rows = []
    receipts: Rows = []

    # Mediation teams: three per station, and the own advisers of one unit in twenty (in-unit).
    teams: Rows = []
    community: dict[int, list[int]] = {}
    for s in range(1, n_stations + 1):
        for kind, label in (
            ("community", "人民调解委员会"),
            ("veterans", "老娘舅调解队"),
            ("lawyers", "律师调解工作室"),
        ):
            community.setdefault(s, []).append(len(teams) + 1)
            teams.append((len(teams) + 1, f"第{s}派出所{label}", kind, s, None, "", True))
    own_team: dict[int, int] = {}
    for u in sorted(rng.sample(range(1, n_units + 1), max(1, n_units // 20))):
        own_team[u] = len(teams) + 1
        teams.append(
            (len(teams) + 1, f"单位{u}内部调解员", "unit", station_of[u], u, "labor,processing_fee", True)
        )
    with_team = list(own_team)

    def new_case(
        source: str, station: int, unit: int | None, incident: int | None, dispute: str, opened: dt.datetime
    ) -> int:
        cid = len(cases) + 1
        team = own_team[unit] if unit in own_team and rng.random() < 0.6 else rng.choice(community[station])
        amount = int(rng.lognormvariate(9.6, 1.0)) * 100 if dispute in MONEY_DISPUTES else None
        ends = opened + dt.timedelta(days=0.2 + rng.expovariate(1 / 12))
        closed: dt.datetime | None = None
        outcome: str | None = None
        if ends >= NOW or rng.random() < 0.03:  # still being mediated
            status = "in_progress" if rng.random() < 0.7 else "open"
        else:
            closed = ends
            r = rng.random()
            status, outcome = "closed", "agreement" if r < 0.72 else "failed" if r < 0.86 else "referred"
        agreed = int(amount * rng.uniform(0.5, 1.0)) if amount and outcome == "agreement" else None
        recovered = 0 if not agreed else agreed if rng.random() < 0.75 else int(agreed * rng.random())
        referred_to = None
        if outcome == "referred":
            referred_to = "labour_arbitration" if dispute == "labor" else rng.choice(("court", "other"))
        cases.append(
            (
                cid,
                incident,
                source,
                station,
                unit,
                team,
                dispute,
                CASE_SUMMARY[dispute],
                amount,
                status,
                outcome,
                referred_to,
                AGREEMENT_TEXT if outcome == "agreement" else "",
                agreed,
                ("一次性支付" if recovered == agreed else "分三期支付") if agreed else "",
                recovered,
                CASE_NOTE[outcome],
                opened,
                closed,
                closed or opened,
            )
        )
        return cid

    # Enterprise requests go to the default department that takes their kind.
    department_rows: Rows = [
        (i, code, name, kinds, None, True) for i, (code, name, kinds) in enumerate(DEFAULT_DEPARTMENTS, 1)
    ]
    department_of = {k: i for i, (_, _, kinds) in enumerate(DEFAULT_DEPARTMENTS, 1) for k in kinds.split(",")}
    # Instructions: how readily each unit acknowledges (mean ~0.9), one channel per station.
    p_ack = [0.0] + [1 - 0.3 * rng.random() ** 2 for _ in range(n_units)]
    seq = dict.fromkeys(range(1, n_stations + 1), 0)
    per_station = max(1, round(4 * scale))
    for month in months:
        start, end = month_bounds(month)
        span = (end - start).total_seconds()

        def at() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.random() * span)  # noqa: B023

        n_linked, n_street = int(0.5 * scale * n_units), int(0.2 * scale * n_units)
        for k in range(n_linked + n_street):
            iid = len(incidents) + 1
            unit: int | None
            if k < n_linked:
                unit = rng.randrange(1, n_units + 1)
                station, cw = station_of[unit], cw_unit
            else:
                unit, station, cw = None, rng.randrange(1, n_stations + 1), cw_street
            category = rng.choices(cats, cum_weights=cw)[0]
            _, _, description, evidence = INCIDENT_KINDS[category]
            flipped = rng.random() < 0.03  # an officer overrode the police flag
            police = POLICE_BY_CATEGORY[category] != flipped
            r = rng.random()
            if police:
                route = "dispatch"
            elif unit is not None:
                route = "self_governance" if r < 0.55 else "mediation" if r < 0.85 else "dispatch"
            else:
                route = "mediation" if r < 0.5 else "dispatch"
            sla = DEFAULT_SLA[route]
            reported = at()
            due = reported + dt.timedelta(hours=sla)
            done = reported + dt.timedelta(hours=rng.expovariate(2.0 / sla))  # mean half the SLA
            resolved: dt.datetime | None = None
            closed: dt.datetime | None = None
            if done >= NOW or rng.random() < 0.02:  # still open
                status, step = rng.choice(OPEN_CHOICES), dt.timedelta(minutes=10)
            else:
                resolved, step = done, (done - reported) / 8
                if rng.random() < 0.7:
                    closed = resolved + dt.timedelta(days=rng.uniform(0.5, 3))
                    closed = closed if closed < NOW else None
                status = "closed" if closed else "resolved"
            level = STATUS_LEVEL[status]
            triaged = reported + step if level >= 1 else None
            assigned = reported + 2 * step if level >= 2 else None
            started = reported + 3 * step if level >= 3 else None
            flagged = due + dt.timedelta(minutes=5)  # the overdue job's run after the deadline
            late = flagged < NOW if resolved is None else resolved > flagged
            loss = recovered = None
            if category == "fraud":
                cents = int(rng.lognormvariate(9.0, 1.3) * 100)
                loss = Decimal(cents).scaleb(-2)
                recovered = (
                    Decimal(int(cents * rng.uniform(0.1, 0.8))).scaleb(-2) if rng.random() < 0.35 else zero
                )
            case_id = None
            if route == "mediation" and rng.random() < 0.3:
                opened = reported + dt.timedelta(hours=rng.uniform(1, 24))
                case_id = new_case("incident", station, unit, iid, DISPUTE_OF.get(category, "other"), opened)
            source = "import" if iid % 7 else "api"
            method, reason = LINKS[iid % 4] if unit is not None else ("none", "未能关联到单位")
            incidents.append(
                (
                    iid,
                    f"J{iid:011d}",
                    source,
                    reported,
                    station,
                    unit,
                    ADDRESSES[iid % len(ADDRESSES)],
                    30.80 + rng.random() * 0.08,
                    120.22 + rng.random() * 0.08,
                    description,
                    f"13{rng.randrange(100_000_000, 1_000_000_000)}",
                    category,
                    police,
                    round(rng.uniform(0.35, 0.98), 2),
                    evidence,
                    "2026.10-1",
                    "officer" if flipped else "import" if source == "import" else "classifier",
                    rng.choices(SEVERITIES, cum_weights=SEVERITY_CW)[0],
                    method,
                    reason,
                    route,
                    sla,
                    due,
                    flagged if late else None,
                    status,
                    case_id,
                    loss,
                    recovered,
                    triaged,
                    assigned,
                    started,
                    resolved,
                    closed,
                    0,
                    reported,
                    closed or resolved or started or assigned or triaged or reported,
                )
            )
        for _ in range(int(0.02 * scale * n_units)):  # brought by a unit or walked in
            if rng.random() < 0.6:
                source, unit = (
                    "unit",
                    rng.choice(with_team) if rng.random() < 0.5 else rng.randrange(1, n_units + 1),
                )
            else:
                source, unit = "walk_in", rng.randrange(1, n_units + 1) if rng.random() < 0.5 else None
            station = station_of[unit] if unit else rng.randrange(1, n_stations + 1)
            new_case(source, station, unit, None, rng.choice(disputes), at())

        for _ in range(int(0.05 * scale * n_units)):
            unit = rng.randrange(1, n_units + 1)
            kind = rng.choices(REQUEST_KINDS, cum_weights=REQUEST_CW)[0]
            title, body = REQUEST_TEXTS[kind]
            submitted = at()
            due = submitted + dt.timedelta(days=SLA_DAYS[kind])
            answer = submitted + dt.timedelta(days=rng.expovariate(1.0))
            done = submitted + dt.timedelta(days=rng.expovariate(1 / (0.6 * SLA_DAYS[kind])))
            done = max(done, answer + dt.timedelta(hours=1))
            replied = answer if answer < NOW else None
            resolved = done if replied and done < NOW and rng.random() >= 0.02 else None
            rating = rated = None
            if resolved is not None and rng.random() < 0.65:
                rated = resolved + dt.timedelta(days=rng.expovariate(0.5))
                if rated < NOW:
                    rating = rng.choices((1, 2, 3, 4, 5), cum_weights=RATING_CW)[0]
                else:
                    rated = None
            late = due < NOW if resolved is None else resolved > due
            requests.append(
                (
                    len(requests) + 1,
                    unit,
                    station_of[unit],
                    kind,
                    title,
                    body,
                    "resolved" if resolved else "in_progress" if replied else "submitted",
                    department_of.get(kind),
                    submitted,
                    due,
                    REQUEST_REPLY if replied else "",
                    replied,
                    REQUEST_RESOLUTION if resolved else "",
                    resolved,
                    rating,
                    "" if rating is None else "处理及时，很满意" if rating >= 4 else "希望办理再快一些",
                    rated,
                    due if late else None,
                    rated or resolved or replied or submitted,
                )
            )

        # Every unit of the station gets the instruction (one receipt each); the escalation job
        # marks what is unacknowledged a minute after the deadline. Every time here is before NOW.
        for station, units in by_station.items():
            for _ in range(per_station):
                iid = len(instructions) + 1
                created = at()
                deadline = created + dt.timedelta(hours=rng.choice((24, 48, 72, 168)))
                window = (deadline - created).total_seconds()
                escalated = deadline + dt.timedelta(minutes=1)
                delivered = created + dt.timedelta(seconds=2)
                title, body = rng.choice(INSTRUCTION_TEXTS)
                seq[station] += 1
                messages.append((iid, station, seq[station], "instruction", body, "[]", iid, created))
                instructions.append(
                    (iid, station, iid, station, title, body, deadline, len(units), escalated, created)
                )
                for u in units:
                    if rng.random() < p_ack[u]:
                        lat = (
                            rng.expovariate(1 / 1800) if rng.random() < 0.8 else rng.uniform(0, 1.3 * window)
                        )
                        ack = created + dt.timedelta(seconds=lat)
                        receipts.append(
                            (
                                iid,
                                u,
                                station,
                                deadline,
                                delivered,
                                ack,
                                ack,
                                "收到",
                                lat,
                                escalated if ack > escalated else None,
                            )
                        )
                    else:
                        receipts.append(
                            (iid, u, station, deadline, delivered, None, None, None, None, escalated)
                        )
    first = month_bounds(months[0])[0] - dt.timedelta(days=30)
    for s in range(1, n_stations + 1):
        channels.append((s, "station", f"station:{s}", f"第{s}派出所·全体单位", s, seq[s], first))
    return {
        "incidents": (
            [
                "id",
                "source_key",
                "source",
                "reported_at",
                "station_id",
                "unit_id",
                "address",
                "lat",
                "lng",
                "description",
                "caller_phone",
                "category",
                "police",
                "confidence",
                "evidence",
                "classifier_version",
                "category_source",
                "severity",
                "link_method",
                "link_reason",
                "route",
                "sla_hours",
                "due_at",
                "overdue_since",
                "status",
                "mediation_case_id",
                "fraud_loss_yuan",
                "fraud_recovered_yuan",
                "triaged_at",
                "assigned_at",
                "started_at",
                "resolved_at",
                "closed_at",
                "reopen_count",
                "created_at",
                "updated_at",
            ],
            incidents,
        ),
        "mediation_teams": (["id", "name", "kind", "station_id", "unit_id", "specialties", "active"], teams),
        "mediation_cases": (
            [
                "id",
                "incident_id",
                "source",
                "station_id",
                "unit_id",
                "team_id",
                "dispute_type",
                "summary",
                "amount_in_dispute_fen",
                "status",
                "outcome",
                "referred_to",
                "agreement_text",
                "agreement_amount_fen",
                "payment_schedule",
                "amount_recovered_fen",
                "outcome_note",
                "opened_at",
                "closed_at",
                "updated_at",
            ],
            cases,
        ),
        "request_departments": (["id", "code", "name", "kinds", "station_id", "active"], department_rows),
        "enterprise_requests": (
            [
                "id",
                "unit_id",
                "station_id",
                "kind",
                "title",
                "body",
                "status",
                "department_id",
                "submitted_at",
                "due_at",
                "reply",
                "replied_at",
                "resolution",
                "resolved_at",
                "rating",
                "rating_comment",
                "rated_at",
                "overdue_since",
                "updated_at",
            ],
            requests,
        ),
        "msg_channels": (["id", "kind", "key", "name", "station_id", "last_seq", "created_at"], channels),
        "msg_messages": (
            ["id", "channel_id", "seq", "kind", "body", "mentions", "instruction_id", "created_at"],
            messages,
        ),
        "msg_instructions": (
            [
                "id",
                "channel_id",
                "message_id",
                "station_id",
                "title",
                "body",
                "deadline",
                "total",
                "escalated_at",
                "created_at",
            ],
            instructions,
        ),
        "msg_receipts": (
            [
                "instruction_id",
                "unit_id",
                "station_id",
                "deadline",
                "delivered_at",
                "read_at",
                "acknowledged_at",
                "ack_text",
                "ack_latency_seconds",
                "escalated_at",
            ],
            receipts,
        ),
    }


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, Decimal):  # as SQLAlchemy binds Numeric on SQLite (no native decimal)
        return float(v)
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def sqlite_load(path: str, tables: dict[str, tuple[list[str], Rows]]) -> None:
    conn = sqlite3.connect(path)
    try:
        for table, (cols, rows) in tables.items():
            marks = ", ".join("?" * len(cols))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",  # noqa: S608 - our own table names
                (tuple(_sqlite_value(v) for v in r) for r in rows),
            )
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


async def base_rows(engine: AsyncEngine, n_units: int, n_stations: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as s:
        s.add_all(
            [
                UnitCategory(code=c.code, name_zh=c.name_zh, name_en=c.name_en, sort_order=i)
                for i, c in enumerate(CATEGORIES)
            ]
        )
        s.add(Bureau(id=1, code="huzhou", name="湖州市公安局"))
        await s.flush()
        s.add_all(
            [Station(id=i, bureau_id=1, code=f"s{i}", name=f"第{i}派出所") for i in range(1, n_stations + 1)]
        )
        await s.flush()
        cats = [c.code for c in CATEGORIES]
        await s.execute(
            insert(Unit),
            [
                {
                    "id": i,
                    "name": f"单位{i}",
                    "credit_code": f"B{i:017d}",
                    "category_code": cats[i % len(cats)],
                    "station_id": unit_station(i, n_stations),
                }
                for i in range(1, n_units + 1)
            ],
        )
        await s.commit()


async def vacuum(engine: AsyncEngine, table: str = "") -> None:
    """PostgreSQL's ``VACUUM (ANALYZE)`` of ``table`` (every table by default), as autovacuum
    leaves a database that has had its rows for a while: statistics, visibility map (index-only
    scans) and hint bits set, so no timed pass pays for them."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}".rstrip())


async def load(
    engine: AsyncEngine, tables: dict[str, tuple[list[str], Rows]], n_units: int, n_stations: int
) -> float:
    t0 = time.perf_counter()
    await base_rows(engine, n_units, n_stations)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            for table, (cols, rows) in tables.items():
                await raw.driver_connection.copy_records_to_table(table, records=rows, columns=cols)  # type: ignore[union-attr]
            await conn.commit()
            serial = [t for t, (cols, _) in tables.items() if "id" in cols]  # every serial id we set
            for table in (*serial, "units"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608 - our own table names
                )
            await conn.commit()
        await vacuum(engine)
    else:
        await engine.dispose()
        await asyncio.to_thread(sqlite_load, str(engine.url.database), tables)
    return time.perf_counter() - t0


class Timed(NamedTuple):
    figures: dict[str, float]
    values: dict[int, dict[str, float]]  # the last facts pass: what the honesty check reads
    clock: tuple[dt.datetime, dt.datetime]  # the clock just before and just after that pass


async def forget_month(engine: AsyncEngine) -> None:
    """Make the month one not computed yet, as the monthly job finds it: its rows deleted and, on
    PostgreSQL, vacuumed away (as autovacuum would have, long before the next month's run)."""
    async with engine.begin() as conn:
        await conn.execute(delete(SafetyIndexScore).where(SafetyIndexScore.month == LAST_MONTH))
        await conn.execute(delete(SafetyIndexRun).where(SafetyIndexRun.month == LAST_MONTH))
    if engine.dialect.name == "postgresql":
        await vacuum(engine, "safety_index_scores")


async def time_backend(
    engine: AsyncEngine, duck: Callable[[], Awaitable[float]] | None = None, repeats: int = 3
) -> Timed:
    """Best of ``repeats`` of each figure; ``duck`` (DuckDB's run, timed) just before each new
    month: the host's speed drifts within minutes, and the baseline is then the best of the same
    minutes (``duck_beside_s``)."""
    factory = make_sessionmaker(engine)
    compute, recompute, facts, beside = [], [], [], []
    units = 0
    values: dict[int, dict[str, float]] = {}
    clock = (utcnow(), utcnow())
    async with factory() as s:  # last month's index: the change from it is part of every run
        await compute_month(s, SYSTEM, shift_month(LAST_MONTH, -1), names=NAMES)
    for _ in range(repeats):
        async with factory() as s:
            before = utcnow()
            t = time.perf_counter()
            values = await unit_metrics(s, LAST_MONTH, NAMES)
            facts.append(time.perf_counter() - t)
            clock = (before, utcnow())
    for _ in range(repeats):
        await forget_month(engine)
        if duck is not None:
            beside.append(await duck())
        async with factory() as s:
            t = time.perf_counter()
            r = await compute_month(s, SYSTEM, LAST_MONTH, names=NAMES)
            compute.append(time.perf_counter() - t)
            units = r.units
    for _ in range(repeats):
        async with factory() as s:
            t = time.perf_counter()
            await compute_month(s, SYSTEM, LAST_MONTH, names=NAMES, replace=True)
            recompute.append(time.perf_counter() - t)
    await forget_month(engine)
    async with factory() as s:  # once more as the monthly job runs it: paced (PostgreSQL only)
        t = time.perf_counter()
        paced_run = await compute_month(s, SYSTEM, LAST_MONTH, names=NAMES, pace=DEFAULT_PACE)
        paced = time.perf_counter() - t
    figures = {
        "paced_s": round(paced, 3),
        "paced_paused_s": paced_run.paused,
        "compute_s": round(min(compute), 3),
        "recompute_s": round(min(recompute), 3),
        "facts_s": round(min(facts), 3),
        "units_scored": units,
        "units_with_facts": len(values),
    }
    if beside:
        figures["duck_beside_s"] = round(min(beside), 4)
    return Timed(figures, values, clock)


class DuckQuery(NamedTuple):
    """One aggregation of a facts module, in DuckDB. A row is ``keys`` group columns (station,
    unit[, more]) and one value per name of ``metrics``; a name is formatted with the row's keys
    (``incidents.cat.{2}``: the category of the row)."""

    sql: str
    metrics: tuple[str, ...]
    keys: int = 2


def _count(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# incidents.facts judges at the month's end (or now, if sooner): overdue = due by then and not
# resolved by its due time; resolved = resolved_at before then
_LATE = "i.due_at < $judged AND (i.resolved_at IS NULL OR i.resolved_at > i.due_at)"
_RESOLVED = "i.resolved_at IS NOT NULL AND i.resolved_at < $judged"
_SELF_GOV = "i.route = 'self_governance'"
_ACKED = "r.acknowledged_at IS NOT NULL AND r.acknowledged_at < $judged"  # as messaging.facts judges
_IN_UNIT = "t.unit_id = c.unit_id"  # the unit's own advisers
_SEVERE = "i.severity IN ('high', 'critical')"
_AGREED, _FAILED, _REFERRED = "c.outcome = 'agreement'", "c.outcome = 'failed'", "c.outcome = 'referred'"
DUCK_QUERIES = (
    # hazards.facts
    DuckQuery(
        "SELECT u.station_id, h.unit_id, count(*) FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
        "WHERE h.found_at >= $s AND h.found_at < $e GROUP BY 1, 2",
        ("hazards.found",),
    ),
    DuckQuery(
        # rounded per group to 4 places, as the facts module rounds each row's sum
        "SELECT u.station_id, h.unit_id, count(*), "
        "round(sum(epoch(h.verified_at - h.found_at) / 86400.0), 4) "
        "FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
        "WHERE h.verified_at >= $s AND h.verified_at < $e GROUP BY 1, 2",
        ("hazards.rectified", "hazards.rectify_days_sum"),
    ),
    DuckQuery(
        "SELECT u.station_id, h.unit_id, count(*) FROM hz_hazards h JOIN units u ON u.id = h.unit_id "
        "WHERE h.found_at < $e AND h.deadline < $e AND (h.verified_at IS NULL OR h.verified_at >= $e) "
        "GROUP BY 1, 2",
        ("hazards.overdue_open",),
    ),
    DuckQuery(
        "SELECT u.station_id, i.unit_id, count(*) FROM hz_inspections i JOIN units u ON u.id = i.unit_id "
        "WHERE i.kind = 'self_inspection' AND i.inspected_at >= $s AND i.inspected_at < $e GROUP BY 1, 2",
        ("hazards.self_inspections",),
    ),
    # workforce.facts: by the local month of hired_on; pending: unregistered, hired after today - window
    DuckQuery(
        "SELECT station_id, unit_id, hired, ok, reg - ok, hired - reg, pending FROM ("  # noqa: S608 - our own constants
        "SELECT u.station_id, e.unit_id, count(*) AS hired, "
        f"{_count('r.registered_on IS NOT NULL AND r.registered_on - e.hired_on <= $window')} AS ok, "
        f"{_count('r.registered_on IS NOT NULL')} AS reg, "
        f"{_count('r.registered_on IS NULL AND e.hired_on > $cut')} AS pending "
        "FROM workforce_employments e JOIN units u ON u.id = e.unit_id LEFT JOIN workforce_residences r "
        "ON r.person_id = e.person_id WHERE e.hired_on >= $ds AND e.hired_on < $de GROUP BY 1, 2)",
        (
            "workforce.hired",
            "workforce.registered_on_time",
            "workforce.registration_late",
            "workforce.unregistered",
            "workforce.registration_pending",
        ),
    ),
    # activities.facts
    DuckQuery(
        "SELECT u.station_id, v.unit_id, count(*), sum(CASE WHEN v.attended THEN 1 ELSE 0 END) "
        "FROM activity_invitations v "
        "JOIN activities a ON a.id = v.activity_id JOIN units u ON u.id = v.unit_id WHERE a.starts_at >= $s "
        "AND a.starts_at < $e AND a.status <> 'cancelled' GROUP BY 1, 2",
        ("activities.invited", "activities.attended"),
    ),
    # environment.facts
    DuckQuery(
        "SELECT u.station_id, x.unit_id, count(*) FROM env_alerts x LEFT JOIN units u ON u.id = x.unit_id "
        "WHERE x.created_at >= $s AND x.created_at < $e GROUP BY 1, 2",
        ("environment.alerts",),
    ),
    # incidents.facts: by reported_at, per station, unit (NULL for a street call) and category
    DuckQuery(
        "SELECT i.station_id, i.unit_id, i.category, count(*), "  # noqa: S608 - our own constants
        f"{_count('i.police IS TRUE')}, count(*) - {_count('i.police IS TRUE')}, count(*), "
        f"{_count(_SEVERE)}, {_count(_SELF_GOV)}, "
        f"{_count(f'{_SELF_GOV} AND {_RESOLVED}')}, {_count(_LATE)}, "
        "coalesce(sum(i.fraud_loss_yuan), 0), coalesce(sum(i.fraud_recovered_yuan), 0) "
        "FROM incidents i WHERE i.reported_at >= $s AND i.reported_at < $e GROUP BY 1, 2, 3",
        (
            "incidents.total",
            "incidents.police",
            "incidents.non_police",
            "incidents.cat.{2}",
            "incidents.severe",
            "incidents.self_governed",
            "incidents.self_governed_resolved",
            "incidents.overdue",
            "incidents.fraud_loss_yuan",
            "incidents.fraud_recovered_yuan",
        ),
        keys=3,
    ),
    # mediation.facts: opened in the month; outcomes of the cases closed in it
    DuckQuery(
        f"SELECT c.station_id, c.unit_id, count(*), {_count(_IN_UNIT)} "  # noqa: S608 - our own constants
        "FROM mediation_cases c LEFT JOIN mediation_teams t ON t.id = c.team_id "
        "WHERE c.opened_at >= $s AND c.opened_at < $e GROUP BY 1, 2",
        ("mediation.cases", "mediation.in_unit"),
    ),
    DuckQuery(
        f"SELECT c.station_id, c.unit_id, {_count(_AGREED)}, "  # noqa: S608 - our own constants
        f"{_count(_FAILED)}, {_count(_REFERRED)}, "
        "coalesce(sum(c.amount_recovered_fen), 0) / 100, "
        f"{_count(f'{_IN_UNIT} AND {_AGREED}')} "
        "FROM mediation_cases c LEFT JOIN mediation_teams t ON t.id = c.team_id "
        "WHERE c.status = 'closed' AND c.closed_at >= $s AND c.closed_at < $e GROUP BY 1, 2",
        (
            "mediation.success",
            "mediation.failed",
            "mediation.referred",
            "mediation.amount_recovered_yuan",
            "mediation.in_unit_success",
        ),
    ),
    # requests.facts: by the month of submission, of resolution, of the rating
    DuckQuery(
        "SELECT station_id, unit_id, count(*) FROM enterprise_requests "
        "WHERE submitted_at >= $s AND submitted_at < $e GROUP BY 1, 2",
        ("requests.submitted",),
    ),
    DuckQuery(
        "SELECT station_id, unit_id, count(*), "
        "round(sum(epoch(resolved_at - submitted_at) / 86400.0), 4) "  # rounded per group, as there
        "FROM enterprise_requests WHERE resolved_at IS NOT NULL AND resolved_at >= $s AND resolved_at < $e "
        "GROUP BY 1, 2",
        ("requests.resolved", "requests.resolve_days_sum"),
    ),
    DuckQuery(
        "SELECT station_id, unit_id, count(*), sum(rating) FROM enterprise_requests "
        "WHERE rating IS NOT NULL AND rated_at >= $s AND rated_at < $e GROUP BY 1, 2",
        ("requests.rated", "requests.rating_sum"),
    ),
    # messaging.facts: the receipts of the instructions whose deadline falls in the month (by then)
    DuckQuery(
        f"SELECT r.station_id, r.unit_id, count(*), {_count(_ACKED)}, "  # noqa: S608 - our own constants
        f"{_count(f'{_ACKED} AND r.acknowledged_at <= r.deadline')}, "
        f"sum(CASE WHEN {_ACKED} THEN r.ack_latency_seconds ELSE 0.0 END) "
        "FROM msg_receipts r WHERE r.instruction_id IN "
        "(SELECT id FROM msg_instructions WHERE deadline >= $s AND deadline < $judged) GROUP BY 1, 2",
        (
            "messaging.instructions",
            "messaging.acknowledged",
            "messaging.acknowledged_on_time",
            "messaging.ack_latency_seconds_sum",
        ),
    ),
)
DUCK_COLUMNS = {  # what the aggregations read, with DuckDB types
    "units": {"id": "INTEGER", "station_id": "INTEGER"},
    "hz_hazards": {
        "unit_id": "INTEGER",
        "found_at": "TIMESTAMP",
        "deadline": "TIMESTAMP",
        "verified_at": "TIMESTAMP",
    },
    "hz_inspections": {"unit_id": "INTEGER", "kind": "VARCHAR", "inspected_at": "TIMESTAMP"},
    "workforce_employments": {"person_id": "INTEGER", "unit_id": "INTEGER", "hired_on": "DATE"},
    "workforce_residences": {"person_id": "INTEGER", "registered_on": "DATE"},
    "activities": {"id": "INTEGER", "starts_at": "TIMESTAMP", "status": "VARCHAR"},
    "activity_invitations": {"activity_id": "INTEGER", "unit_id": "INTEGER", "attended": "BOOLEAN"},
    "env_alerts": {"unit_id": "INTEGER", "created_at": "TIMESTAMP"},
    "incidents": {
        "station_id": "INTEGER",
        "unit_id": "INTEGER",
        "category": "VARCHAR",
        "police": "BOOLEAN",
        "severity": "VARCHAR",
        "route": "VARCHAR",
        "status": "VARCHAR",
        "reported_at": "TIMESTAMP",
        "due_at": "TIMESTAMP",
        "resolved_at": "TIMESTAMP",
        "fraud_loss_yuan": "DECIMAL(14,2)",
        "fraud_recovered_yuan": "DECIMAL(14,2)",
    },
    "mediation_teams": {"id": "INTEGER", "unit_id": "INTEGER"},
    "mediation_cases": {
        "station_id": "INTEGER",
        "unit_id": "INTEGER",
        "team_id": "INTEGER",
        "status": "VARCHAR",
        "outcome": "VARCHAR",
        "amount_recovered_fen": "BIGINT",
        "opened_at": "TIMESTAMP",
        "closed_at": "TIMESTAMP",
    },
    "enterprise_requests": {
        "station_id": "INTEGER",
        "unit_id": "INTEGER",
        "submitted_at": "TIMESTAMP",
        "resolved_at": "TIMESTAMP",
        "rating": "INTEGER",
        "rated_at": "TIMESTAMP",
    },
    "msg_instructions": {"id": "INTEGER", "deadline": "TIMESTAMP"},
    "msg_receipts": {
        "instruction_id": "INTEGER",
        "unit_id": "INTEGER",
        "station_id": "INTEGER",
        "deadline": "TIMESTAMP",
        "acknowledged_at": "TIMESTAMP",
        "ack_latency_seconds": "DOUBLE",
    },
}


def duck_load(
    tables: dict[str, tuple[list[str], Rows]], n_units: int, n_stations: int, tmp: Path
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the columns the aggregations read, loaded from CSV."""
    all_tables = dict(tables)
    all_tables["units"] = (
        ["id", "station_id"],
        [(i, unit_station(i, n_stations)) for i in range(1, n_units + 1)],
    )
    con = duckdb.connect()
    for table, types in DUCK_COLUMNS.items():
        cols, rows = all_tables[table]
        idx = [cols.index(c) for c in types]
        path = tmp / f"{table}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerows(_csv_row(r, idx) for r in rows)
        spec = ", ".join(f"'{c}': '{t}'" for c, t in types.items())
        source = f"read_csv('{path}', header=false, columns={{{spec}}}, nullstr='')"
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {source}")  # noqa: S608 - our own table names
        path.unlink()
    return con


def duck_params(now: dt.datetime) -> dict[str, Any]:
    """The month's bounds (UTC, naive as stored; local dates for hires) and the facts' clock at ``now``."""
    start, end = month_bounds(LAST_MONTH)
    window = registration_window_days()
    return {
        "s": start.replace(tzinfo=None),
        "e": end.replace(tzinfo=None),
        "ds": start.astimezone(LOCAL_TZ).date(),
        "de": end.astimezone(LOCAL_TZ).date(),
        "window": window,
        # incidents' and messaging's facts: judged at the month's end, or at utcnow() if sooner
        "judged": min(now, end).astimezone(dt.UTC).replace(tzinfo=None),
        "cut": now.astimezone(LOCAL_TZ).date() - dt.timedelta(days=window),  # workforce.facts: today
    }


def duck_run(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    out = []
    for q in DUCK_QUERIES:
        used = {k: v for k, v in params.items() if f"${k}" in q.sql}
        out.append(con.execute(q.sql, used).fetchall())
    return out


def duck_time(con: duckdb.DuckDBPyConnection, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of every aggregation, with the clock read now."""
    params = duck_params(utcnow())
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        duck_run(con, params)
        best = min(best, time.perf_counter() - t)
    return round(best, 4)


def duck_totals(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> dict[str, float]:
    """Every metric summed over all units, as ``unit_metrics`` sums it (a fact without a unit drops)."""
    totals: dict[str, float] = defaultdict(float)
    for q, rows in zip(DUCK_QUERIES, duck_run(con, duck_params(now)), strict=True):
        for row in rows:
            if row[1] is None:
                continue
            for name, value in zip(q.metrics, row[q.keys :], strict=True):
                totals[name.format(*row[: q.keys])] += float(value or 0)
    return dict(totals)


class Check(NamedTuple):
    metrics: int  # compared: every metric either side has
    max_rel_diff: float  # the largest relative distance of a backend's total from DuckDB's
    mismatches: dict[
        str, list[float]
    ]  # beyond 1e-6: [backend, duckdb (at both clock readings if they differ)]


def check_totals(
    con: duckdb.DuckDBPyConnection,
    values: dict[int, dict[str, float]],
    clock: tuple[dt.datetime, dt.datetime],
) -> Check:
    """Every metric's total over all units from ``unit_metrics`` against the DuckDB queries' at the
    clock readings around that facts pass (a clock-dependent total may lie between the two). A
    metric missing on one side counts as 0 there."""
    app: dict[str, float] = defaultdict(float)
    for metrics in values.values():
        for name, value in metrics.items():
            app[name] += value
    lo, hi = duck_totals(con, clock[0]), duck_totals(con, clock[1])
    names = sorted(set(app) | set(lo) | set(hi))
    worst = 0.0
    bad: dict[str, list[float]] = {}
    for name in names:
        a, x, y = app.get(name, 0.0), lo.get(name, 0.0), hi.get(name, 0.0)
        off = max(min(x, y) - a, a - max(x, y), 0.0) / (max(abs(a), abs(x), abs(y)) or 1.0)
        worst = max(worst, off)
        if off > 1e-6:
            bad[name] = [a, x] if math.isclose(x, y, rel_tol=1e-12) else [a, x, y]
    return Check(len(names), worst, bad)


def _csv_row(r: tuple[Any, ...], idx: list[int]) -> list[Any]:
    out: list[Any] = []
    for i in idx:
        v = r[i]
        if v is None:
            out.append("")
        elif isinstance(v, dt.datetime):
            out.append(v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        else:
            out.append(v.isoformat() if isinstance(v, dt.date) else v)
    return out


def cpu_calibration() -> float:
    """How busy the machine is: a shared 2-core box can be several times slower than an idle core."""
    t = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - t, 2)


def scoring_only(n_units: int, n_stations: int) -> dict[str, float]:
    model = load_model()
    rng = random.Random(SEED)
    metrics = sorted(model.metrics)
    units = range(1, n_units + 1)
    columns = {m: [float(rng.randint(1, 5)) for _ in units] for m in metrics}
    t = time.perf_counter()
    scored = [s for part in score_slices(model, columns, n_units, SCORE_SLICE) for s in part]
    scores = [s[0] for s in scored]
    group_ranks((unit_station(u, n_stations) for u in units), scores)
    group_ranks((u % 11 for u in units), scores)
    return {"score_s": round(time.perf_counter() - t, 3), "metrics": float(len(metrics))}


async def pg_admin(url: str, sql: str) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(
        user=u.username, password=u.password, host=u.host, port=u.port or 5432, database="postgres"
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def count_rows(tables: dict[str, tuple[list[str], Rows]]) -> int:
    return sum(len(rows) for _, rows in tables.values())


async def run(quick: bool, pg_url: str | None, sqlite: bool = True, keep: bool = False) -> dict[str, Any]:
    n_units, n_stations, scale = (2_000, 8, 1.0) if quick else (20_000, 40, 1.0)
    result_cpu = cpu_calibration()
    print(
        f"cpu calibration: 10M-iteration Python loop in {result_cpu} s (idle modern core: ~0.5 s)",
        file=sys.stderr,
    )
    scoring = scoring_only(n_units, n_stations)  # first, on a small heap
    t = time.perf_counter()
    tables = plan(n_units, n_stations, scale)
    gc.freeze()  # millions of row tuples stay alive: keep the cyclic GC from walking them again and again
    rows = count_rows(tables)
    print(
        f"generated {rows:,} rows for {n_units:,} units in {time.perf_counter() - t:.1f} s", file=sys.stderr
    )
    result: dict[str, Any] = {
        "units": n_units,
        "stations": n_stations,
        "months": MONTHS,
        "rows": rows,
        "cpu_loop_s": result_cpu,
    }
    result.update(scoring)
    print(
        f"scoring alone: {n_units:,} units × {result['metrics']:.0f} metrics in {result['score_s']} s",
        file=sys.stderr,
    )
    checked: dict[str, Check] = {}
    with tempfile.TemporaryDirectory() as tmp:
        con = await asyncio.to_thread(duck_load, tables, n_units, n_stations, Path(tmp))
    try:
        result["duckdb_s"] = result["duckdb_first_s"] = await asyncio.to_thread(duck_time, con)
        print(f"duckdb: the same aggregations in {result['duckdb_s']} s", file=sys.stderr)

        async def beside_duck() -> float:
            return await asyncio.to_thread(duck_time, con, 1)

        def baseline(figures: dict[str, float]) -> None:
            # The ratios' baseline: DuckDB's best, first or beside any backend's runs.
            result["duckdb_s"] = min(result["duckdb_s"], figures.pop("duck_beside_s"))
            print(f"duckdb beside the runs: best {result['duckdb_s']} s", file=sys.stderr)

        if sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
                try:
                    loaded = await load(engine, tables, n_units, n_stations)
                    print(f"sqlite: loaded in {loaded:.1f} s", file=sys.stderr)
                    timed = await time_backend(engine, beside_duck)
                finally:
                    await engine.dispose()
            f = timed.figures
            baseline(f)
            checked["sqlite"] = await asyncio.to_thread(check_totals, con, timed.values, timed.clock)
            print(
                f"sqlite: compute {f['compute_s']} s (facts {f['facts_s']} s, "
                f"recompute {f['recompute_s']} s), "
                f"{f['units_scored']:,} units; "
                f"totals agree with duckdb: {not checked['sqlite'].mismatches}",
                file=sys.stderr,
            )
            result.update(
                {
                    "sqlite_compute_s": f["compute_s"],
                    "sqlite_recompute_s": f["recompute_s"],
                    "sqlite_facts_s": f["facts_s"],
                    "units_with_facts": f["units_with_facts"],
                }
            )
        if pg_url:
            await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
            await pg_admin(pg_url, f'CREATE DATABASE "{PG_DATABASE}"')
            url = make_url(pg_url).set(drivername="postgresql+asyncpg", database=PG_DATABASE)
            engine = make_engine(url.render_as_string(hide_password=False))
            try:
                loaded = await load(engine, tables, n_units, n_stations)
                print(f"postgresql: loaded in {loaded:.1f} s", file=sys.stderr)
                timed = await time_backend(engine, beside_duck)
            finally:
                await engine.dispose()
                if not keep:
                    await pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{PG_DATABASE}"')
            f = timed.figures
            baseline(f)
            checked["pg"] = await asyncio.to_thread(check_totals, con, timed.values, timed.clock)
            print(
                f"postgresql: compute {f['compute_s']} s (facts {f['facts_s']} s, "
                f"recompute {f['recompute_s']} s); "
                f"totals agree with duckdb: {not checked['pg'].mismatches}",
                file=sys.stderr,
            )
            result.update(
                {
                    "pg_compute_s": f["compute_s"],
                    "pg_recompute_s": f["recompute_s"],
                    "pg_facts_s": f["facts_s"],
                    "pg_paced_s": f["paced_s"],
                    "pg_paced_paused_s": f["paced_paused_s"],
                    "units_with_facts": f["units_with_facts"],
                }
            )
    finally:
        con.close()
    if checked:
        mismatches = {backend: c.mismatches for backend, c in checked.items() if c.mismatches}
        result["metrics_checked"] = max(c.metrics for c in checked.values())
        result["max_rel_diff"] = float(f"{max(c.max_rel_diff for c in checked.values()):.2g}")
        result["agree"] = not mismatches
        if mismatches:
            result["mismatches"] = mismatches
            for backend, bad in mismatches.items():
                for name, figures in bad.items():
                    print(
                        f"{backend}: {name} differs: {backend} {figures[0]}, duckdb {figures[1:]}",
                        file=sys.stderr,
                    )
    duck = max(result["duckdb_s"], 1e-4)
    for backend in ("sqlite", "pg"):
        if f"{backend}_compute_s" in result:
            result[f"{backend}_ratio_compute"] = round(result[f"{backend}_compute_s"] / duck, 1)
            result[f"{backend}_ratio_recompute"] = round(result[f"{backend}_recompute_s"] / duck, 1)
            result[f"{backend}_ratio_facts"] = round(result[f"{backend}_facts_s"] / duck, 1)
    result["targets"] = {"pg_compute_s": 10, "pg_ratio_compute": 5}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 units (~620k rows)")
    parser.add_argument("--pg", metavar="URL", help=f"also PostgreSQL (server URL; database {PG_DATABASE})")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL (and DuckDB) only")
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the PostgreSQL database {PG_DATABASE} (to profile it)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick, args.pg, sqlite=not args.no_sqlite, keep=args.keep))))


if __name__ == "__main__":
    main()
