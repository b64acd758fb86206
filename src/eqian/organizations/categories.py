"""The 11 unit categories of "平安织里自家人" (织北派出所: 11类179家单位)."""

from __future__ import annotations

from typing import NamedTuple


class CategoryDef(NamedTuple):
    code: str
    name_zh: str
    name_en: str


CATEGORIES: tuple[CategoryDef, ...] = (
    CategoryDef("garment", "童装企业", "Children's-wear enterprise"),
    CategoryDef("property", "物业小区", "Residential property"),
    CategoryDef("market", "商场市场", "Mall / market"),
    CategoryDef("hazchem", "危化单位", "Hazardous-chemicals unit"),
    CategoryDef("finance", "金融网点", "Bank / financial outlet"),
    CategoryDef("education", "学校幼儿园", "School / kindergarten"),
    CategoryDef("medical", "医疗机构", "Hospital / clinic"),
    CategoryDef("lodging", "旅馆民宿", "Hotel / guesthouse"),
    CategoryDef("logistics", "物流快递", "Logistics / courier"),
    CategoryDef("entertainment", "餐饮娱乐", "Catering / entertainment venue"),
    CategoryDef("transport", "交通运输", "Transport / fuel station"),
)

UNIT_STATUSES = ("active", "suspended", "closed")
STATUS_LABELS_ZH = {"active": "在营", "suspended": "停业整顿", "closed": "注销"}
CONTACT_ROLES = {"security_head": "安保负责人", "safety_advisor": "安全顾问"}
