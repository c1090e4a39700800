"""Determinism's replay of a two-stage train function: to its first fit's first epoch, or in full.

The check replays the prefix where every stage fits the same data (`check_determinism`'s
`_first_epoch_shows`), and the whole function otherwise. Both replays of the same shared run are
timed here, on the stages-fine-tune pipeline of the detection matrix (a head on a frozen base for
5 epochs, then the base unfrozen and fine-tuned for 10, 12 images in batches of 4).

Run with timing: `pytest benchmarks --benchmark-enable`. In the default run (and CI) the benchmark
plugin is disabled and each replay runs once, as a smoke test.
"""

import pytest
from broken_pipelines.stages import fine_tune_stages

from pipeline_checks.run.training import forget_shared_runs, replay, shared_run

ROUNDS = 3


@pytest.fixture(scope="module")
def two_stage_run():
    pipeline = fine_tune_stages()
    yield shared_run(pipeline, 0)
    forget_shared_runs(pipeline)


@pytest.mark.parametrize("replayed", ["first epoch", "in full"])
def test_replay_of_a_two_stage_train_function(benchmark, two_stage_run, replayed):
    epochs = 1 if replayed == "first epoch" else None
    again = benchmark.pedantic(replay, args=(two_stage_run, epochs), rounds=ROUNDS, warmup_rounds=0)
    stages = len(again.stages)
    assert stages == (1 if epochs == 1 else 2)  # the prefix stops inside the first fit
    benchmark.extra_info.update(replayed=replayed, stages_replayed=stages, steps=len(again.batch_losses))
