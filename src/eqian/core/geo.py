"""Small plane geometry on WGS-84 coordinates, enough for a district: distances, polygons, areas."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8
Point = tuple[float, float]  # (lat, lng)


def haversine_m(a: Point, b: Point) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Ray casting; a point on an edge may fall either way, which a district boundary tolerates."""
    lat, lng = point
    inside = False
    n = len(polygon)
    for i in range(n):
        lat1, lng1 = polygon[i]
        lat2, lng2 = polygon[(i + 1) % n]
        if (lng1 > lng) != (lng2 > lng):
            cross = lat1 + (lng - lng1) * (lat2 - lat1) / (lng2 - lng1)
            if lat < cross:
                inside = not inside
    return inside


def polygon_area_km2(polygon: Sequence[Point]) -> float:
    """Shoelace formula on a local equirectangular projection (error well under 1 % at 10 km)."""
    if len(polygon) < 3:
        return 0.0
    lat0 = math.radians(sum(p[0] for p in polygon) / len(polygon))
    xs = [math.radians(p[1]) * math.cos(lat0) * EARTH_RADIUS_M for p in polygon]
    ys = [math.radians(p[0]) * EARTH_RADIUS_M for p in polygon]
    twice = sum(xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs)))
    return abs(twice) / 2 / 1_000_000
