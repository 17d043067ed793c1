"""Plane geometry in image pixels (origin top-left, y down) for validating lines and regions and for the
simulator's reference counts. Pure functions; the counting itself runs in SQL (services/counting.py) with the
same conventions."""

import math
from collections.abc import Sequence

__all__ = [
    "Point",
    "point_in_polygon",
    "polygon_area",
    "polygon_literal",
    "polygon_self_intersects",
    "segments_cross",
    "side_right",
]

Point = tuple[float, float]


def side_right(a: Point, b: Point, p: Point) -> bool:
    """True when p lies to the right of a -> b as seen on the image (cross product > 0 with y down);
    a point exactly on the line counts as left, as in the SQL."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) > 0


def segments_cross(a: Point, b: Point, p: Point, c: Point) -> bool:
    """The step p -> c crosses segment a-b: p and c on different sides of ab, a and b on different sides of pc."""
    return side_right(a, b, p) != side_right(a, b, c) and side_right(p, c, a) != side_right(p, c, b)


def _orientation(p: Point, q: Point, r: Point) -> int:
    value = (q[1] - p[1]) * (r[0] - q[0]) - (q[0] - p[0]) * (r[1] - q[1])
    return 0 if abs(value) < 1e-12 else (1 if value > 0 else 2)


def _on_segment(p: Point, q: Point, r: Point) -> bool:
    return min(p[0], r[0]) <= q[0] <= max(p[0], r[0]) and min(p[1], r[1]) <= q[1] <= max(p[1], r[1])


def _segments_intersect(p1: Point, q1: Point, p2: Point, q2: Point) -> bool:
    """Closed segments p1q1 and p2q2 share at least one point (touching counts)."""
    o1, o2, o3, o4 = (_orientation(p1, q1, p2), _orientation(p1, q1, q2), _orientation(p2, q2, p1),
                      _orientation(p2, q2, q1))  # fmt: skip
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(p1, p2, q1))
        or (o2 == 0 and _on_segment(p1, q2, q1))
        or (o3 == 0 and _on_segment(p2, p1, q2))
        or (o4 == 0 and _on_segment(p2, q1, q2))
    )


def polygon_self_intersects(points: Sequence[Point]) -> bool:
    """Two non-adjacent edges meet, or adjacent edges fold back over each other."""
    count = len(points)
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            adjacent = j == i + 1 or (i == 0 and j == count - 1)
            a, b = edges[i]
            c, d = edges[j]
            if adjacent:
                shared = b if j == i + 1 else a
                other_i = a if shared == b else b
                other_j = d if shared == c else c
                # Collinear and overlapping: the polygon folds back on itself.
                if _orientation(other_i, shared, other_j) == 0 and _on_segment(shared, other_j, other_i):
                    return True
                if _orientation(other_i, shared, other_j) == 0 and _on_segment(shared, other_i, other_j):
                    return True
                continue
            if _segments_intersect(a, b, c, d):
                return True
    return False


def polygon_area(points: Sequence[Point]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True))) / 2


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd rule (strict interior; the simulator keeps its points off region borders)."""
    x, y = point
    inside = False
    count = len(polygon)
    for i in range(count):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % count]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def polygon_literal(points: Sequence[Point]) -> str:
    """PostgreSQL's polygon literal: ((x1,y1),(x2,y2),...)."""
    return "(" + ",".join(f"({float(x)!r},{float(y)!r})" for x, y in points) + ")"


def finite(*values: float) -> bool:
    return all(isinstance(value, int | float) and math.isfinite(value) for value in values)
