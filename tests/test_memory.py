"""Memory the checks freed goes back to the operating system (run/memory.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline_checks.run.memory import _malloc_trim, release_freed_memory

# Run in a fresh process, whose heap starts as glibc leaves it. A freed 8 MB mapping raises the
# mmap threshold: later arrays of that size come from the heap, and with smaller objects still
# alive above them (as a model's other state is), their pages stay with the process when they
# are freed, as a run's snapshots do.
FREED_SNAPSHOTS = """
import json, numpy as np
from pipeline_checks.run.memory import release_freed_memory

def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

np.ones(2_000_000, np.float32)
snapshots, alive = [], []
for _ in range(40):  # 320 MB
    snapshots.append(np.ones(2_000_000, np.float32))
    alive.append(np.ones(1_000, np.float32))
holding = resident_mb()
del snapshots
freed = resident_mb()
release_freed_memory()
print(json.dumps({"holding": holding, "freed": freed, "released": resident_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_weight_sized_arrays_leave_the_process_once_released():
    output = subprocess.run([sys.executable, "-c", FREED_SNAPSHOTS], capture_output=True, text=True, check=True).stdout
    rss = json.loads(output.strip().splitlines()[-1])
    assert rss["holding"] - rss["freed"] < 100, f"glibc returned the arrays by itself, nothing to test: {rss}"
    assert rss["freed"] - rss["released"] > 250, rss


def test_releasing_changes_no_live_object():
    weights = [np.arange(10.0), {"kernel": np.ones((3, 3))}]
    release_freed_memory()
    assert weights[0].tolist() == list(range(10)) and weights[1]["kernel"].sum() == 9
