"""False-alarm measurement: every correct pipeline of the detection matrix, at several seeds, through all nine checks.

A pre-merge gate that fails a correct pipeline gets switched off, so the number that matters
is how many (pipeline, seed) runs fail any check. The matrix tests every row at seed 0; this
script widens the sample to other seeds (each seed changes the initial weights and fit's
shuffling) and, with --broken, measures whether each broken row's owning checks still catch
it at every seed. Not a test and not timed: it takes minutes per seed.

    python benchmarks/false_alarms.py                     # correct rows, seeds 0-4
    python benchmarks/false_alarms.py --seeds 0 1 --broken --out false-alarms.md
    python benchmarks/false_alarms.py --seeds 0 1 --baselines   # also: does a rerun match its own baseline?
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def run_row(case, seed: int, figures: list | None = None) -> dict:
    """Check name -> 'passed', 'FAILED: summary' or 'RAISED: error', for one row at one seed.

    With `figures` (a list), the run's baseline fingerprint is appended to it.
    """
    from pipeline_checks.checks import all_checks
    from pipeline_checks.errors import PipelineRunError
    from pipeline_checks.model import compat
    from pipeline_checks.run.training import forget_shared_runs

    pipeline = case.pipeline()
    verdicts, numbers = {}, {}
    try:
        for name, check in all_checks().items():
            try:
                result = check(pipeline, seed)
                verdicts[name] = "passed" if result.passed else f"FAILED: {result.summary}"
                numbers[name] = result.to_dict()["numbers"]
            except PipelineRunError as error:
                verdicts[name] = f"RAISED: {error}"
        if figures is not None:
            from pipeline_checks.baselines.fingerprint import fingerprint
            from pipeline_checks.run.training import shared_run

            figures.append(fingerprint(shared_run(pipeline, seed), numbers))
    finally:
        forget_shared_runs(pipeline)
        compat.keras().backend.clear_session()
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--broken", action="store_true", help="also run the broken rows and count misses")
    parser.add_argument(
        "--baselines", action="store_true", help="run each row twice; the second run must match the first's baseline"
    )
    parser.add_argument(
        "-k", dest="keywords", action="append", help="only rows whose id contains this text (repeat for several)"
    )
    parser.add_argument("--out", type=Path, help="write the Markdown table here too")
    args = parser.parse_args(argv)

    from test_detection_matrix import CASES

    rows = [c for c in CASES if (args.broken or not c.caught_by) and not c.raises]
    rows = [c for c in rows if not args.keywords or any(keyword in c.id for keyword in args.keywords)]
    lines = ["| row | expected to fail | " + " | ".join(f"seed {s}" for s in args.seeds) + " |"]
    lines.append("| --- | --- | " + " | ".join("---" for _ in args.seeds) + " |")
    false_alarms = misses = runs = 0
    notes = []
    for case in rows:
        cells = []
        for seed in args.seeds:
            started = time.perf_counter()
            figures: list | None = [] if args.baselines else None
            verdicts = run_row(case, seed, figures)
            if args.baselines:
                run_row(case, seed, figures)  # the rerun, as CI reruns main's pipeline: it must match
                verdicts["baseline"] = _baseline_verdict(*figures)
            runs += 1
            failing = {name for name, verdict in verdicts.items() if verdict != "passed"}
            wrong = failing - case.caught_by
            missed = case.caught_by - failing
            false_alarms += bool(wrong)
            misses += bool(missed)
            cell = (
                "ok"
                if not (wrong or missed)
                else " ".join([*(f"+{name}" for name in sorted(wrong)), *(f"-{name}" for name in sorted(missed))])
            )
            cells.append(f"{cell} ({time.perf_counter() - started:.0f} s)")
            for name in sorted(wrong):
                notes.append(f"- {case.id} seed {seed}: {name} {verdicts[name]}")
            print(f"{case.id} seed {seed}: {cells[-1]}", flush=True)
        expected = ", ".join(sorted(case.caught_by)) or "none (correct)"
        lines.append(f"| {case.id} | {expected} | " + " | ".join(cells) + " |")
    correct_runs = sum(1 for c in rows if not c.caught_by) * len(args.seeds)
    summary = (
        f"{runs} runs ({correct_runs} of correct rows): {false_alarms} with a check failing that should pass "
        f"(+name), {misses} with an owning check missing its bug (-name)."
    )
    table = "\n".join([*lines, "", summary, *([""] + notes if notes else [])])
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 1 if false_alarms or misses else 0


def _baseline_verdict(recorded: dict, again: dict) -> str:
    from pipeline_checks.baselines.tolerances import compare

    moved = [d.figure for d in compare(recorded, again) if d.moved]
    return f"FAILED: {len(moved)} figures moved: {', '.join(moved[:5])}" if moved else "passed"


if __name__ == "__main__":
    sys.exit(main())
