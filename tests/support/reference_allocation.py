"""The first, obviously correct allocator, kept as the oracle the fast one in ``gateway.core.allocation`` must match.

It follows the module docstring of ``gateway.core.allocation`` literally: admission in rank order, then progressive
filling in rounds, where each round raises every active request by the largest common step (in proportion to its
weight) that no constraint or cap forbids, and freezes whatever bound. Each round costs a pass over every
constraint, and there is a round per distinct freezing level, which is why it is slow: that is the point of
keeping it simple.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.core.allocation import NodePhase, Request

EPS = 1e-9


def reference_allocate(requests: Sequence[Request], capacity: Mapping[NodePhase, float]) -> dict[str, float]:
    room = {key: max(0.0, value) for key, value in capacity.items()}
    grant = {r.charger_id: 0.0 for r in requests}
    admitted: list[Request] = []
    order = sorted(range(len(requests)), key=lambda i: (requests[i].rank, i))
    for i in order:
        r = requests[i]
        if r.cap_a + EPS < r.min_a or r.cap_a <= 0:
            continue
        keys = r.constraints()
        if all(room[k] + EPS >= r.min_a for k in keys):
            for k in keys:
                room[k] -= r.min_a
            grant[r.charger_id] = r.min_a
            admitted.append(r)
    _fill(admitted, room, grant)
    return grant


def _fill(admitted: list[Request], room: dict[NodePhase, float], grant: dict[str, float]) -> None:
    active = [r for r in admitted if r.cap_a - grant[r.charger_id] > EPS]
    members: dict[NodePhase, list[Request]] = {}
    for r in active:
        for k in r.constraints():
            members.setdefault(k, []).append(r)
    while active:
        live = {r.charger_id for r in active}
        weight_on = {k: sum(r.weight for r in rs if r.charger_id in live) for k, rs in members.items()}
        step = min((r.cap_a - grant[r.charger_id]) / r.weight for r in active)
        for k, w in weight_on.items():
            if w > 0:
                step = min(step, room[k] / w)
        step = max(step, 0.0)
        for r in active:
            grant[r.charger_id] += step * r.weight
        for k, w in weight_on.items():
            room[k] -= step * w
        saturated = {k for k, w in weight_on.items() if w > 0 and room[k] <= EPS}
        active = [r for r in active if r.cap_a - grant[r.charger_id] > EPS
                  and not any(k in saturated for k in r.constraints())]
