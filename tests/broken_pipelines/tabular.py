"""Classification pipelines whose inputs are not images: tabular rows (N, features) and sequences
(N, steps, features), declared as arrays `(inputs, labels, class_names)`.

The correct row is keras.io's "Imbalanced classification: credit card fraud detection"
(keras-team/keras-io, examples/structured_data/imbalanced_classification.py, by fchollet): float32
features normalized with the training set's mean and standard deviation, an MLP of three
Dense(256, relu) layers with Dropout(0.3) and one sigmoid unit, Adam(1e-2), binary cross-entropy,
`class_weight` from the class counts, one batch per epoch (batch_size 2048). Its data here are
synthetic rows with the credit card file's 30 columns: a time in seconds and an amount on raw
scales, 28 principal components; the positives are a shifted cluster. The example has no
BatchNormalization; its twin with BatchNormalization after each hidden Dense is a correct row too,
and the broken rows vary one or the other.
"""

import functools

import numpy as np

from broken_pipelines.common import broken, correct, recalibrate_after_fit
from pipeline_checks.pipelines.pipeline import Pipeline

FEATURES = 30  # Time, V1..V28, Amount


def transactions(count=1024, positives=256, seed=0):
    """Rows like the credit card file's: Time (seconds, up to two days), V1..V28, Amount (dollars)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(count, dtype=np.int64)
    labels[rng.choice(count, positives, replace=False)] = 1
    components = rng.normal(0.0, 1.0, (count, FEATURES - 2))
    components[labels == 1, :6] += 2.5  # a fraud cluster, as the principal components separate it
    time = rng.uniform(0, 172_792, count)
    amount = rng.gamma(1.0, 88.0, count) + 150.0 * labels
    rows = np.column_stack([time, components, amount]).astype(np.float32)
    return rows, labels, ("legitimate", "fraud")


ROWS, LABELS, NAMES = transactions()
MEAN, STD = ROWS.mean(axis=0), ROWS.std(axis=0)


def normalized(rows):
    """The example's normalization, with the training set's statistics."""
    return (np.asarray(rows, dtype=np.float32) - MEAN) / STD


def class_weight(labels):
    counts = np.bincount(labels)
    return {0: 1.0 / counts[0], 1: 1.0 / counts[1]}


def fraud_mlp(batchnorm=False, learning_rate=1e-2, normalizer=False):
    """The example's model, compiled as it compiles (its metrics, no accuracy); with `batchnorm`, a
    BatchNormalization after each hidden Dense; with `normalizer`, one in front, normalizing the raw
    rows itself (in place of the example's mean and std)."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = [keras.Input(shape=(FEATURES,))]
    if normalizer:
        layers.append(keras.layers.BatchNormalization())
    for index in range(3):
        layers.append(keras.layers.Dense(256, activation="relu"))
        if batchnorm:
            layers.append(keras.layers.BatchNormalization())
        if index:
            layers.append(keras.layers.Dropout(0.3))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    metrics = [
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.FalsePositives(name="fp"),
        keras.metrics.TrueNegatives(name="tn"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=metrics)
    return model


def fraud_pipeline(name="tabular-fraud-mlp", rows=ROWS, labels=LABELS, **changes):
    fit_kwargs = {"epochs": 30, "batch_size": 2048, "class_weight": class_weight(LABELS)}
    pipeline = dict(
        name=name,
        build_model=fraud_mlp,
        data=(rows, labels, NAMES),
        preprocess_train=normalized,
        fit_kwargs=fit_kwargs,
    )
    return Pipeline(**{**pipeline, **changes})


def fraud_mlp_batchnorm():
    return fraud_pipeline("tabular-fraud-mlp-batchnorm", build_model=functools.partial(fraud_mlp, batchnorm=True))


def fraud_mlp_tf_data():
    """The same rows as a batched tf.data.Dataset of (normalized features, label), as a repository that
    reads its CSV with tf.data gives them."""

    def dataset():
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices((normalized(ROWS), LABELS)).batch(2048)

    fit_kwargs = {"epochs": 30, "class_weight": class_weight(LABELS)}
    return Pipeline("tabular-fraud-mlp-tf-data", build_model=fraud_mlp, data=dataset, fit_kwargs=fit_kwargs)


def served_raw():
    """Normalized with the training statistics at fit, served the raw rows: the scaler left out of serving."""
    return fraud_pipeline("tabular-served-unnormalized", preprocess_infer=lambda rows: np.asarray(rows, np.float32))


def learning_rate_too_low():
    return fraud_pipeline("tabular-learning-rate-1e-5", build_model=functools.partial(fraud_mlp, learning_rate=1e-5))


def raw_rows(rows):
    return np.asarray(rows, dtype=np.float32)


def batchnorm_normalizer(name="tabular-batchnorm-normalizer-recalibrated", **changes):
    """The raw rows normalized by a BatchNormalization in front of the MLP, its moving statistics
    recalibrated after fit (30 steps at momentum 0.99 leave them 26% of the way from 0 and 1)."""
    build = functools.partial(fraud_mlp, normalizer=True)
    return fraud_pipeline(
        name, **{"build_model": build, "preprocess_train": raw_rows, "after_fit": recalibrate_after_fit, **changes}
    )


def stale_batchnorm_normalizer():
    """The same without the recalibration: inference normalizes a time of about 86,000 seconds with a
    moving mean of about 22,000."""
    return batchnorm_normalizer("tabular-batchnorm-normalizer-stale", after_fit=None)


def never_normalized():
    """The rows fed raw to the MLP, the example's normalization left out: a time up to 172,792 seconds."""
    return fraud_pipeline("tabular-never-normalized", preprocess_train=raw_rows)


def nan_in_a_column():
    rows = ROWS.copy()
    rows[5, 3] = np.nan  # one missing value, read from the file as NaN
    return fraud_pipeline("tabular-nan-in-a-feature", rows=rows)


def sequence_classifier():
    """keras.io's "Timeseries classification from scratch" model (keras-team/keras-io,
    examples/timeseries/timeseries_classification_from_scratch.py): three Conv1D(64, 3, padding="same")
    each with BatchNormalization and ReLU, global average pooling, a softmax, compiled with "adam",
    sparse categorical cross-entropy and accuracy, as it compiles."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    inputs = keras.layers.Input((STEPS, 1))
    x = inputs
    for _ in range(3):
        x = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.models.Model(inputs=inputs, outputs=keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


STEPS = 50  # the example's FordA series are 500 steps of one channel


def sequences(count=64, seed=0):
    """Noisy sine waves of one channel, two frequencies, standing in for FordA's engine noise recordings."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    t = np.linspace(0, 1, STEPS)[None, :, None]
    waves = np.sin(2 * np.pi * (2 + 3 * labels[:, None, None]) * t + rng.uniform(0, 6.3, (count, 1, 1)))
    return (waves + rng.normal(0, 0.3, waves.shape)).astype(np.float32), labels, ("normal", "fault")


def sequence_pipeline():
    """The example's batch size; its BatchNorm statistics recalibrated after fit, as the image rows'."""
    return Pipeline(
        name="sequence-conv1d-fcn",
        build_model=sequence_classifier,
        data=sequences(),
        fit_kwargs={"epochs": 20, "batch_size": 32},
        after_fit=recalibrate_after_fit,
    )


CASES = [
    correct(fraud_pipeline, "none (keras.io's credit card fraud MLP, as written)"),
    correct(fraud_mlp_batchnorm, "none (the same MLP with BatchNormalization after each hidden Dense)"),
    correct(fraud_mlp_tf_data, "none (the same MLP, its rows a batched tf.data.Dataset)"),
    broken(
        served_raw,
        "features standardized with the training statistics at fit, served raw",
        preprocessing=r"preprocess_train and preprocess_infer give different inputs for the same 64 examples",
        agreement=r"Gap: evaluate vs fit",
        overfit=r"the model gives all 1024 examples the same output",
    ),
    broken(learning_rate_too_low, "learning rate 1e-5 on the MLP", overfit=r"below the target 1(.|\n)*moved by"),
    broken(
        nan_in_a_column,
        "one NaN in a feature column",
        numerics=r"inputs went non-finite first",
        agreement=r"Not finite",
        labels=r"loss at initialization nan",
        overfit=r"the loss is nan after fit",
    ),
    broken(
        never_normalized,
        "raw features (a time up to 172,792 s) into the MLP, never normalized",
        labels=r"large features reach its last layer(.|\n)*standardize the features",
        overfit=r"below the target 1",
    ),
    correct(batchnorm_normalizer, "none (a BatchNormalization normalizes the raw rows, recalibrated after fit)"),
    broken(
        stale_batchnorm_normalizer,
        "BN normalizing the raw rows, moving statistics stale after 30 steps",
        agreement=r"Gap: evaluate vs train-mode(.|\n)*Cause: stale BatchNormalization moving statistics",
    ),
    correct(sequence_pipeline, "none (sequences (N, 50, 1) through keras.io's Conv1D-BN classifier)"),
]
