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
    return compiled_as_the_example(keras.Sequential(layers), learning_rate)


def compiled_as_the_example(model, learning_rate=1e-2):
    """Adam, binary cross-entropy and the example's confusion-count metrics."""
    from pipeline_checks.model import compat

    keras = compat.keras()
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


# Weights that never learn, runs that differ, a file that does not load, frozen statistics that move --


def _hidden(x, batchnorm=None, stop_gradient_after=None):
    """The example's hidden layers on `x`: Dense(256, relu) three times, Dropout(0.3) after the second
    and the third; with `batchnorm`, that layer between each Dense and its ReLU; with
    `stop_gradient_after`, a StopGradient layer after that hidden layer (0-based)."""
    from broken_pipelines.training import _custom
    from pipeline_checks.model import compat

    layers = compat.keras().layers
    for index in range(3):
        if batchnorm is None:
            x = layers.Dense(256, activation="relu")(x)
        else:
            x = layers.ReLU()(batchnorm()(layers.Dense(256)(x)))
        if index:
            x = layers.Dropout(0.3)(x)
        if index == stop_gradient_after:
            x = _custom().StopGradient()(x)
    return x


def _mlp_with_stop_gradient():
    from pipeline_checks.model import compat

    keras = compat.keras()
    inputs = keras.Input((FEATURES,))
    outputs = keras.layers.Dense(1, activation="sigmoid")(_hidden(inputs, stop_gradient_after=0))
    return compiled_as_the_example(keras.Model(inputs, outputs))


def stop_gradient_after_first_dense():
    """The MLP with a stop_gradient after its first hidden layer: the first Dense(256) gets no gradient
    and keeps its initial weights. A variation of the example; the Lambda(K.stop_gradient) that
    keras-team/keras#11460 suggests to keep one branch's gradient from another, put on the main path."""
    return fraud_pipeline("tabular-stop-gradient-after-first-dense", build_model=_mlp_with_stop_gradient)


def _mlp_with_zeroed_wide_branch():
    """A "wide and deep" variation: a linear wide branch on the raw features added to the deep MLP's
    logit with weight 0 (the term switched off, its Dense still built and trainable)."""
    from pipeline_checks.model import compat

    keras = compat.keras()
    layers = keras.layers
    inputs = keras.Input((FEATURES,))
    deep = layers.Dense(1, name="deep_logit")(_hidden(inputs))
    wide = layers.Rescaling(0.0, name="wide_weight")(layers.Dense(1, name="wide_logit")(inputs))
    outputs = layers.Activation("sigmoid")(layers.Add()([deep, wide]))
    return compiled_as_the_example(keras.Model(inputs, outputs))


def zeroed_wide_branch():
    return fraud_pipeline("tabular-wide-branch-weight-0", build_model=_mlp_with_zeroed_wide_branch)


def unseeded_row_shuffle():
    """The loader shuffles the rows with np.random.default_rng() and no seed, which
    keras.utils.set_random_seed does not reach (keras-team/keras#19322, "keras.utils.set_random_seed
    does not set seeds": fchollet answers that np.random.seed does not affect default_rng())."""

    def read():
        order = np.random.default_rng().permutation(len(ROWS))  # the bug: no seed
        return ROWS[order], LABELS[order], NAMES

    return fraud_pipeline("tabular-unseeded-row-shuffle", data=read)


@functools.cache
def _standardize_layer():
    """A standardization layer of the repository's own, never registered with keras.saving."""
    from pipeline_checks.model import compat

    keras = compat.keras()

    class Standardize(keras.layers.Layer):
        def __init__(self, mean=0.0, std=1.0, **kwargs):
            super().__init__(**kwargs)
            self.mean = [float(value) for value in np.ravel(mean)]
            self.std = [float(value) for value in np.ravel(std)]

        def call(self, inputs):
            return (inputs - np.asarray(self.mean, "float32")) / np.asarray(self.std, "float32")

        def get_config(self):
            return {**super().get_config(), "mean": self.mean, "std": self.std}

    return Standardize


def _mlp_behind_unregistered_standardize():
    from pipeline_checks.model import compat

    keras = compat.keras()
    inputs = keras.Input((FEATURES,))
    x = _standardize_layer()(MEAN, STD)(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(_hidden(x))
    return compiled_as_the_example(keras.Model(inputs, outputs))


def unregistered_standardize_layer():
    """The example's normalization moved into the model as a custom layer holding the training mean
    and std, never registered: the .keras file does not load ("ValueError: Unknown layer: MyLayer"
    from load_model, keras-team/keras#7585)."""
    return fraud_pipeline(
        "tabular-unregistered-standardize-layer",
        build_model=_mlp_behind_unregistered_standardize,
        preprocess_train=raw_rows,
    )


def _frozen_ported_trunk():
    """A "pretrained" trunk of the example's hidden layers whose BatchNormalization was ported from
    tf.compat.v1 code, warmed up on the rows (5 full-batch epochs), its moving statistics then set to
    the rows' own (converged, as pretraining leaves them), frozen under its head and compiled again:
    in training mode the ported layer still normalizes with the batch's statistics and moves its
    moving ones, trainable=False or not."""
    from broken_pipelines.training import _custom
    from pipeline_checks.model import compat

    keras = compat.keras()
    trunk_inputs = keras.Input((FEATURES,))
    trunk = keras.Model(trunk_inputs, _hidden(trunk_inputs, batchnorm=_custom().PortedBatchNorm), name="trunk")
    inputs = keras.Input((FEATURES,))
    model = compiled_as_the_example(keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(trunk(inputs))))
    rows = normalized(ROWS)
    model.fit(rows, LABELS, epochs=5, batch_size=2048, class_weight=class_weight(LABELS), verbose=0)
    for layer in trunk.layers:
        if hasattr(layer, "moving_mean"):  # the ported layers: their statistics of the rows, in inference mode
            seen = keras.Model(trunk.inputs, layer.input).predict(rows, batch_size=2048, verbose=0)
            layer.moving_mean.assign(seen.mean(axis=0))
            layer.moving_variance.assign(seen.var(axis=0))
    trunk.trainable = False
    return compiled_as_the_example(model)


def frozen_ported_batchnorm():
    """keras-team/keras#7085 ("Freezing a BatchNormalization layer by setting trainable = false does not
    work"), keras-team/keras#4762 (the moving mean and variance are updated whatever `trainable`): a
    frozen layer that still runs on batch statistics and moves its moving ones."""
    return fraud_pipeline("tabular-frozen-ported-batchnorm", build_model=_frozen_ported_trunk)


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
    broken(learning_rate_too_low, "learning rate 1e-5 on the MLP", overfit=r"below the target 1(.|\n)*moved by").on(
        "torch",
        "on torch, seed 0's initial weights and Dropout masks come from torch's own generator and leave the barely "
        "trained MLP's outputs at the threshold: fit's last epoch (its own Dropout masks, before the epoch's one "
        "update) counted 123 true negatives, evaluate 53 (70 of 1024 samples), a gap agreement gates; TensorFlow "
        "shows the same gap at seeds 1, 2 and 4, not at 0",
        overfit=r"below the target 1(.|\n)*moved by",
        agreement=r"Gap: evaluate vs fit: (fp|tn) ",
    ),
    broken(
        nan_in_a_column,
        "one NaN in a feature column",
        numerics=r"inputs went non-finite first",
        agreement=r"Not finite",
        labels=r"loss at initialization nan",
        overfit=r"the loss is nan after fit",
    ).on(
        "torch",
        "Keras on torch computes binary_crossentropy with torch.nn.functional.binary_cross_entropy, which refuses "
        "a prediction outside [0, 1]: the NaN row's sigmoid output is NaN, so the first training-mode pass raises "
        "RuntimeError before any step, and every check that trains says so (preprocessing, which does not train, "
        "notes the NaN and passes)",
        raises=r"raised RuntimeError: all elements of input should be between 0 and 1",
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
    broken(
        stop_gradient_after_first_dense,
        "stop_gradient after the MLP's first hidden layer",
        variables_change=r"(?s)2 of 8 trainable weights never changed.*stop_gradient",
    ),
    broken(
        zeroed_wide_branch,
        "a wide linear branch added to the MLP's logit with weight 0",
        variables_change=r"(?s)2 of 10 trainable weights never changed.*\(wide_logit/kernel, wide_logit/bias\)",
    ),
    broken(
        unseeded_row_shuffle,
        "loader shuffles the rows with an unseeded generator",
        determinism=r"`data` returned different images or another order",
    ),
    broken(
        unregistered_standardize_layer,
        "standardization layer of its own, not registered as serializable",
        save_load=r"(?s)the custom class 'Standardize' is not registered.*register_keras_serializable",
    ),
    broken(
        frozen_ported_batchnorm,
        "frozen trunk with a ported BatchNormalization that updates in training mode",
        frozen_layers=r"(?s)frozen BN moving statistics moved.*PortedBatchNorm updates its statistics",
    ),
]
