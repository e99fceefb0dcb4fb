"""Benchmarks run only when asked: every test under tests/bench is skipped unless ``--benchmark-enable`` is passed
or ``POWERSHARE_BENCH=1`` is set (they measure, they do not prove; the suite's run time stays the tests'). Also
collects the timings the allocation benchmarks measured and prints medians, p99 and speed-up at the end."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def benchmarks_wanted(config: pytest.Config) -> bool:
    return bool(os.environ.get("POWERSHARE_BENCH")) or bool(config.getoption("benchmark_enable", default=False))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if benchmarks_wanted(config):
        return
    skip = pytest.mark.skip(reason="benchmark: pass --benchmark-enable or set POWERSHARE_BENCH=1")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


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
