"""A reusable authorization check for a scoped endpoint family (list / detail / create), every role.

A domain declares what each role should see and may create; ``check_scoped_endpoints`` asserts
exactly that: the list's ids and total, 200 for each visible object's detail and 404 (never its
data) for every other one, and the create status per role with nothing written when refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ScopedEndpoints:
    list_url: str
    detail_url: Callable[[int], str]
    all_ids: set[int]
    visible: Mapping[str, set[int]]  # role/username -> ids it must see, no more and no fewer
    create_url: str | None = None
    create_body: Callable[[str], dict[str, Any]] | None = None  # username -> body
    create_status: Mapping[str, int] | None = None  # username -> expected status
    count: Callable[[], Awaitable[int]] | None = None  # rows in the table, to prove refusals wrote nothing


async def check_scoped_endpoints(
    client: httpx.AsyncClient, headers: Mapping[str, Mapping[str, str]], spec: ScopedEndpoints
) -> None:
    for who, expected in spec.visible.items():
        h = dict(headers[who])
        listing = await client.get(spec.list_url, params={"limit": 500}, headers=h)
        assert listing.status_code == 200, (who, listing.text)
        body = listing.json()
        got = {item["id"] for item in body["items"]}
        assert got == expected, f"{who} list: expected {sorted(expected)}, got {sorted(got)}"
        assert body["total"] == len(expected), (who, body["total"])
        for obj_id in sorted(spec.all_ids):
            resp = await client.get(spec.detail_url(obj_id), headers=h)
            if obj_id in expected:
                assert resp.status_code == 200, (who, obj_id, resp.text)
            else:
                assert resp.status_code == 404, (who, obj_id, resp.status_code)
                assert resp.json()["error"]["code"] == "not_found"
                assert str(obj_id) not in resp.json()["error"]["message"]
    if spec.create_url and spec.create_body and spec.create_status:
        for who, status in spec.create_status.items():
            before = await spec.count() if spec.count else None
            resp = await client.post(spec.create_url, json=spec.create_body(who), headers=dict(headers[who]))
            assert resp.status_code == status, (who, resp.status_code, resp.text)
            if spec.count is not None and before is not None:
                after = await spec.count()
                assert after == before + (1 if status in (200, 201) else 0), (who, before, after)
