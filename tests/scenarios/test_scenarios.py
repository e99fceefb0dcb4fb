"""Golden scenarios: each file in tests/scenarios/ is a small spec of how current must be shared.

A failure prints what differed, then the whole scenario and a second-by-second timeline of setpoints and measured
currents, so the behaviour can be read without a debugger.
"""

from pathlib import Path

import pytest
import yaml
from support.scenario_site import run

SCENARIOS = sorted(Path(__file__).parent.glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    scenario = yaml.safe_load(path.read_text())
    result = run(scenario)
    problems = [f"t={v.at:g}: SAFETY: {v.what}" for v in result.violations] + result.mismatches
    if problems:
        pytest.fail("\n".join([f"{path.name}: {scenario.get('description', '').strip()}", "", *problems, "",
                               "scenario:", path.read_text(), "timeline:", *result.timeline]), pytrace=False)


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 10
