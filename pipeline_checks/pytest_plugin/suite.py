"""Every check family as a test, parametrized over the declared pipelines.

Collected by `pytest --pipeline-checks`; the `pipeline` fixture gives each declared
pipeline in turn (or the built-in ones), and `pc_check` runs a check on it, records the
result for the terminal summary and the report, and fails the test when the check fails.
All checks of one pipeline share one training run; test_baseline comes last, as its
fingerprint includes the other checks' numbers.
"""


def test_agreement(pipeline, pc_check):
    pc_check("agreement", pipeline)


def test_frozen_layers(pipeline, pc_check):
    pc_check("frozen_layers", pipeline)


def test_preprocessing(pipeline, pc_check):
    pc_check("preprocessing", pipeline)


def test_labels(pipeline, pc_check):
    pc_check("labels", pipeline)


def test_overfit(pipeline, pc_check):
    pc_check("overfit", pipeline)


def test_numerics(pipeline, pc_check):
    pc_check("numerics", pipeline)


def test_variables_change(pipeline, pc_check):
    pc_check("variables_change", pipeline)


def test_determinism(pipeline, pc_check):
    pc_check("determinism", pipeline)


def test_save_load(pipeline, pc_check):
    pc_check("save_load", pipeline)


def test_baseline(pipeline, pc_baseline):
    pc_baseline(pipeline)
