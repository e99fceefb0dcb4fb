"""A realistic, reproducible allocation instance and a timer for it, used by the benchmarks and ``powershare bench``.

The instance is what a large depot looks like on a bad evening: a three-level circuit tree (site → feeders →
boards, about ten chargers per board and ten boards per feeder), a mix of 3-phase, 2-phase (a 3-phase unit with a
car that draws on two) and 1-phase chargers spread over all three site phases, caps from 6 to 48 A (some vehicles
learned below 6 A, so never admitted), some weighted and prioritised units, and limits tight enough that boards,
feeders and the site all bind somewhere and some cars have to wait. Seeded, so every run on every machine sees the
same instance.
"""

from __future__ import annotations

import random
import statistics
import time

from gateway.core.allocation import NodePhase, Request, allocate

SITE = "site"
_STANDARD_CAPS_A = (6.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0, 40.0, 48.0)
_PHASE_SETS = ((0, 1, 2),) * 6 + ((0, 1), (1, 2), (2, 0)) + ((0,), (1,), (2,)) * 2
_SQUEEZE = {"board": (0.15, 0.8), "feeder": (0.5, 0.8), SITE: (0.85, 0.9)}
"""Each node's limit per phase, as a random fraction of what its children could draw (boards: of the caps)."""


def build_instance(n_chargers: int, seed: int = 0) -> tuple[list[Request], dict[NodePhase, float]]:
    """``n_chargers`` requests and a capacity for every (node, phase) they touch; same seed, same instance."""
    rng = random.Random(seed)
    n_boards = max(1, round(n_chargers / 10))
    n_feeders = max(1, round(n_boards / 10))
    parent = {f"board{b}": f"feeder{b % n_feeders}" for b in range(n_boards)}
    parent.update({f"feeder{f}": SITE for f in range(n_feeders)})
    requests: list[Request] = []
    for i in range(n_chargers):
        board = f"board{rng.randrange(n_boards)}"
        cap = rng.choice(_STANDARD_CAPS_A) if rng.random() < 0.7 else round(rng.uniform(4.0, 48.0), 1)
        requests.append(Request(
            charger_id=f"c{i:05d}",
            nodes=(board, parent[board], SITE),
            phases=rng.choice(_PHASE_SETS),
            cap_a=cap,
            weight=rng.choice((1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.5, 1.5)),
            rank=(rng.choice((0, 1, 1, 1, 1, 2)), round(rng.random(), 3)),
        ))
    below: dict[NodePhase, float] = {}
    for r in requests:
        for phase in r.phases:
            below[r.nodes[0], phase] = below.get((r.nodes[0], phase), 0.0) + r.cap_a
    capacity: dict[NodePhase, float] = {}
    for level in ("board", "feeder", SITE):
        for (node, phase), wanted in sorted(below.items()):
            if node.startswith(level):
                limit = capacity[node, phase] = round(wanted * rng.uniform(*_SQUEEZE[level]))
                if node in parent:
                    below[parent[node], phase] = below.get((parent[node], phase), 0.0) + limit
    return requests, capacity


def measure(n_chargers: int, repeats: int = 200, seed: int = 0) -> dict[str, float]:
    """Median and 99th-percentile wall time of one ``allocate`` call on ``build_instance(n_chargers, seed)``."""
    requests, capacity = build_instance(n_chargers, seed)
    allocate(requests, capacity)
    samples_ms: list[float] = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter_ns()
        allocate(requests, capacity)
        samples_ms.append((time.perf_counter_ns() - start) / 1e6)
    samples_ms.sort()
    return {
        "chargers": float(n_chargers),
        "runs": float(len(samples_ms)),
        "median_ms": statistics.median(samples_ms),
        "p99_ms": samples_ms[min(len(samples_ms) - 1, round(0.99 * (len(samples_ms) - 1)))],
    }
