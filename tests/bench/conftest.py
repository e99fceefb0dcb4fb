"""Collects the timings the allocation benchmarks measured and prints medians, p99 and speed-up at the end."""

from __future__ import annotations

import statistics

import pytest

SPEED = pytest.StashKey[dict[tuple[str, int], list[float]]]()
"""Per (implementation, chargers): seconds per call, one entry per measured round."""


@pytest.fixture
def speed_log(request: pytest.FixtureRequest) -> dict[tuple[str, int], list[float]]:
    return request.config.stash.setdefault(SPEED, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    timings = config.stash.get(SPEED, {})
    if not timings:
        return
    terminalreporter.section("allocation speed (ms per call)")
    terminalreporter.write_line(f"{'chargers':>8}  {'allocate median':>15}  {'p99':>8}  {'reference median':>16}  "
                                f"{'p99':>9}  {'speed-up':>8}")
    for n in sorted({n for _, n in timings}):
        fast, slow = _figures(timings.get(("allocate", n))), _figures(timings.get(("reference", n)))
        ratio = f"x{slow[0] / fast[0]:7.1f}" if fast and slow else "-"
        terminalreporter.write_line(f"{n:>8}  {_ms(fast, 0):>15}  {_ms(fast, 1):>8}  {_ms(slow, 0):>16}  "
                                    f"{_ms(slow, 1):>9}  {ratio:>8}")


def _figures(seconds: list[float] | None) -> tuple[float, float] | None:
    """Median and 99th percentile (nearest rank) in ms."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3


def _ms(figures: tuple[float, float] | None, index: int) -> str:
    return "-" if figures is None else f"{figures[index]:.3f}"
