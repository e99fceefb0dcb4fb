"""A gateway killed in the middle of an atomic write leaves its temporary file; the next start removes it.

The kill is real: a child process saves the settings store with ``os.replace`` turned into SIGKILL, which is the
instant between the fsync of the temporary file and the rename, the window the issue's kill -9 runs hit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from gateway.cli.run import locked_state_dir
from gateway.site.store import JsonStore

_KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
from gateway.site.store import JsonStore
store = JsonStore(Path(sys.argv[1]))
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
store.save({"version": 1, "network_limit_a": 99})
"""


def _kill_during_write(path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(path)], capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()


def _temporaries(directory: Path) -> list[Path]:
    return sorted(directory.rglob(".*.tmp"))


def test_a_write_killed_before_its_rename_leaves_a_temporary_that_the_next_start_removes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "ocpp").mkdir(parents=True)
    settings = JsonStore(state / "settings.json")
    settings.save({"version": 1, "network_limit_a": 40})
    _kill_during_write(state / "settings.json")
    _kill_during_write(state / "ocpp" / "charge-point.json")
    left = _temporaries(state)
    assert len(left) == 2 and all(p.name.startswith((".settings.json.", ".charge-point.json.")) for p in left)
    unrelated = state / ".hidden-note.tmp"  # not a name write_atomically makes: left alone
    unrelated.write_text("keep")

    with locked_state_dir(state):
        assert _temporaries(state) == [unrelated]
        assert json.loads((state / "settings.json").read_text()) == {"version": 1, "network_limit_a": 40}
