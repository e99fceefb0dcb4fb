"""Decode cost of one poll block, printed (run with -s to see it); no timing is asserted.

Baseline in the same run: rebuilding each point's format for every decode, which is what a driver would pay
without the profile's cached formats.
"""

import timeit

from drivers.codec import decode
from drivers.profile import ProfileRegistry


def test_print_decode_cost_of_a_poll_block() -> None:
    profile = ProfileRegistry.shipped().charger("powershare-sim")
    block = max(profile.read_plan(), key=lambda b: b.count)
    values = [0] * block.count
    points = profile.all_points()

    def rebuilt() -> dict[str, object]:
        return {n: decode(block.slice(points[n], values), points[n].format()) for n in block.points}

    cached = profile.decode_block(block, values)
    assert set(cached) == set(rebuilt()) == set(block.points)
    runs = 500
    fast = timeit.timeit(lambda: profile.decode_block(block, values), number=runs) / runs
    slow = timeit.timeit(rebuilt, number=runs) / runs
    print(f"\ndecode {len(block.points)} points ({block.count} registers): {fast * 1e6:.1f} us cached formats, "
          f"{slow * 1e6:.1f} us rebuilding formats (baseline), ratio {slow / fast:.1f}x")
