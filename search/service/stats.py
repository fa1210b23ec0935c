"""Request counts and latency percentiles for ``GET /stats``."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

RECENT_REQUESTS = 10_000  # latencies kept per route: percentiles describe recent traffic, in bounded memory


class RequestStats:
    """Thread-safe counters: requests by route and status, and recent latencies by route."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._latencies: dict[str, deque[float]] = {}

    def record(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counts[(route, status)] += 1
            self._latencies.setdefault(route, deque(maxlen=RECENT_REQUESTS)).append(seconds)

    def snapshot(self) -> dict:
        """``{"uptime_seconds", "requests": {route: {"count", "by_status", "latency_ms": {p50, p95, p99}}}}``.

        Example:
            >>> stats = RequestStats()
            >>> stats.record("GET /search", 200, 0.010)
            >>> stats.snapshot()["requests"]["GET /search"]["latency_ms"]["p50"]
            10.0
        """
        with self._lock:
            counts, latencies = dict(self._counts), {route: np.array(kept) for route, kept in self._latencies.items()}
        requests: dict[str, dict] = {}
        for (route, status), count in sorted(counts.items()):
            entry = requests.setdefault(route, {"count": 0, "by_status": {}})
            entry["count"] += count
            entry["by_status"][str(status)] = count
        for route, values in latencies.items():
            p50, p95, p99 = np.percentile(values * 1000, [50, 95, 99])
            requests[route]["latency_ms"] = {
                "p50": round(float(p50), 3),
                "p95": round(float(p95), 3),
                "p99": round(float(p99), 3),
            }
        return {"uptime_seconds": round(time.time() - self.started, 3), "requests": requests}
