"""A latency histogram with about 1 % resolution from 1 µs to minutes (Locust's own rounds to whole ms)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

GROWTH = 1.02  # each bucket is 2 % wider than the one before: percentiles are within 1 % of the truth
SMALLEST = 1_000  # ns: faster is counted as 1 µs


class Histogram:
    """Counts of latencies (in ns) in logarithmic buckets; cheap to record, to merge and to ship as JSON."""

    def __init__(self, buckets: Mapping[int, int] | None = None) -> None:
        self.buckets: Counter[int] = Counter(buckets or {})

    def record(self, ns: int) -> None:
        self.buckets[bucket(ns)] += 1

    def merge(self, others: Iterable[Histogram]) -> Histogram:
        for other in others:
            self.buckets.update(other.buckets)
        return self

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def percentile(self, p: float) -> float:
        """The latency (ms) below which ``p`` % of those recorded fall; NaN when nothing was recorded."""
        total = self.count
        if total == 0:
            return math.nan
        rank = max(1, math.ceil(total * p / 100))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return middle(index) / 1e6
        raise AssertionError("unreachable")

    def to_json(self) -> dict[str, int]:
        return {str(index): count for index, count in sorted(self.buckets.items())}

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> Histogram:
        return cls({int(index): count for index, count in data.items()})


def bucket(ns: int) -> int:
    return int(math.log(max(ns, SMALLEST) / SMALLEST, GROWTH))


def middle(index: int) -> float:
    """The middle of a bucket, in ns."""
    return float(SMALLEST * GROWTH ** (index + 0.5))
