"""Fault injection: a baseline update killed with SIGKILL leaves the old file or the new one, never a prefix.

Each update runs in a child process that the test kills (a handful of kills, each under a
timeout, so the test ends whatever the child does). The child writes through the same
`Baseline.write` that `--pc-update-baselines` calls; it imports no TensorFlow.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or sys.platform == "win32", reason="SIGKILL is POSIX")

TIMEOUT = 30  # seconds for any one child: it never waits on the test for longer

# What the child and the test both build: two baselines of the same pipeline (old, new), ~100 kB
# each, so that writing one takes long enough for a kill to land inside it.
BASELINES = """
from pipeline_checks.baselines.files import Baseline


def baseline(version):
    figures = {f"checks.family.figure_{i}": version + i / 7 for i in range(3000)}
    return Baseline("cnn", "tensorflow2.21-keras3", 0, figures, {"keras": "3"}, "this machine")
"""

# Writes the old baseline, says "ready", then rewrites new and old in turn until killed (or TIMEOUT).
REWRITING = (
    BASELINES
    + """
import sys, time
from pathlib import Path

path = Path(sys.argv[1])
old, new = baseline(0), baseline(1)
texts = {0: old.to_yaml(), 1: new.to_yaml()}
# The writes take the time, not YAML:
Baseline.to_yaml = lambda self: texts[int(self.figures["checks.family.figure_0"])]
old.write(path)
print("ready", flush=True)
deadline = time.monotonic() + {timeout}
while time.monotonic() < deadline:
    new.write(path)
    old.write(path)
"""
)

# Writes the old baseline under the file's lock, then the new one, killing itself at `point`.
KILLED_AT = (
    BASELINES
    + """
import os, signal, sys
from pathlib import Path
from pipeline_checks.baselines.writing import FileLock

path, point = Path(sys.argv[1]), sys.argv[2]
old, new = baseline(0), baseline(1)
FileLock(path).acquire()
old.write(path)


def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)


real_write, real_replace = os.write, os.replace
if point == "inside the temporary file":
    os.write = lambda descriptor, data: (real_write(descriptor, data[: len(data) // 2]), killed())
elif point == "before the flush to disk":
    os.fsync = killed
elif point == "before the replace":
    os.replace = killed
elif point == "after the replace":
    os.replace = lambda *args: (real_replace(*args), killed())
new.write(path)
"""
)


def expected_texts():
    namespace = {}
    exec(BASELINES, namespace)
    return namespace["baseline"](0).to_yaml(), namespace["baseline"](1).to_yaml()


def child(script, path, **options):
    """The child runs in the file's folder, so it imports pipeline_checks as installed (or from PYTHONPATH)."""
    return subprocess.Popen([sys.executable, "-c", script, str(path)], env=os.environ, cwd=path.parent, **options)


def state(text, old, new):
    """'old', 'new', or what else the file holds (a prefix of one, described)."""
    if text == old:
        return "old"
    if text == new:
        return "new"
    return f"{len(text)} of {len(new)} characters, a prefix: {new.startswith(text) or old.startswith(text)}"


def test_an_update_killed_at_any_moment_leaves_the_old_or_the_new_file(tmp_path):
    path = tmp_path / "cnn.tensorflow2.21-keras3.yml"
    old, new = expected_texts()
    found = []
    for delay in (0.0, 0.003, 0.01, 0.02, 0.05, 0.1):  # six kills, each at another moment of the rewriting
        process = child(REWRITING.replace("{timeout}", str(TIMEOUT)), path, stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=TIMEOUT)
        finally:
            process.kill()
            process.stdout.close()
        found.append(state(path.read_text(), old, new))
    assert set(found) <= {"old", "new"}, found


@pytest.mark.parametrize(
    ("point", "left"),
    [
        ("inside the temporary file", "old"),
        ("before the flush to disk", "old"),
        ("before the replace", "old"),
        ("after the replace", "new"),
    ],
)
def test_an_update_killed_at_each_step_of_the_write_leaves_a_whole_file(tmp_path, point, left):
    from pipeline_checks.baselines.writing import FileLock, remove_leftovers

    path = tmp_path / "cnn.tensorflow2.21-keras3.yml"
    old, new = expected_texts()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT, path, point], env=os.environ, cwd=tmp_path, timeout=TIMEOUT
    )
    assert killed.returncode == -signal.SIGKILL  # it reached the point
    assert state(path.read_text(), old, new) == left
    # The next update goes through: the kill released the lock, and the temporary file goes.
    lock = FileLock(path)
    lock.acquire()
    remove_leftovers(path)
    lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_full_disk_keeps_the_old_file_and_says_so_in_one_line(tmp_path):
    """The new file does not fit (RLIMIT_FSIZE stands in for a full disk): the old one stays whole."""
    path = tmp_path / "cnn.tensorflow2.21-keras3.yml"
    old, new = expected_texts()
    script = BASELINES + textwrap.dedent("""
        import resource, signal, sys
        from pathlib import Path

        path = Path(sys.argv[1])
        baseline(0).write(path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size // 2, resource.RLIM_INFINITY))
        try:
            baseline(1).write(path)
        except ValueError as error:
            print(error)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, path],
        env=os.environ,
        cwd=tmp_path,
        timeout=TIMEOUT,
        capture_output=True,
        text=True,
    )
    assert state(path.read_text(), old, new) == "old", done.stderr[-2000:]
    assert done.stdout.startswith(f"Cannot write the baseline {path}: File too large") and done.stdout.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


HOLDING = """
import sys
from pipeline_checks.baselines.writing import FileLock

FileLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes it, or kills this process
"""


@pytest.mark.parametrize("ending", ["finishes", "is killed"])
def test_a_second_writer_is_refused_while_another_holds_the_file_then_takes_it(tmp_path, ending):
    from pipeline_checks.baselines.writing import FileLock

    path = tmp_path / "cnn.tensorflow2.21-keras3.yml"
    process = child(HOLDING, path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        with pytest.raises(ValueError) as refused:
            FileLock(path).acquire()
        assert str(refused.value).startswith(f"Cannot write the baseline {path}: another run (pid {process.pid} on ")
        assert "holds its lock .cnn.tensorflow2.21-keras3.yml.lock until that session ends" in str(refused.value)
        process.stdin.close() if ending == "finishes" else process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
        process.stdout.close()
    lock = FileLock(path)
    lock.acquire()  # a killed holder leaves no lock behind
    assert lock.held
    lock.release()
    assert not lock.lock_path.exists()
