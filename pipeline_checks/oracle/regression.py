"""What the agreement oracle measures on a regression: the R² of the predictions, and each metric's scale.

An accuracy read from one linear unit against float targets is 0.0 in every mode, and an absolute
tolerance means nothing without the targets' scale (0.05 miles per gallon, or 0.05 of a value in
[0, 1]). So on float targets that are values (`are_values`), every mode gets `OWN_R2`, the R² of its
predictions (1 - SSE/SST per output, averaged over the outputs: keras.metrics.R2Score's
definition), and each gap is divided by the unit of its metric: the targets' standard deviation
for mae and rmse, their variance for mse, 1 for R² (already a share of the variance). A mode
worse than predicting the targets' mean is judged on its own error (`ValueScale.unit_at`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OWN_R2 = "predicted_r2"  # the agreement's own measure of a regression, in every mode

# Compiled metric names (Keras 2 and 3 spell them both ways) -> what their gap is divided by.
_BY_STD = ("mae", "mean_absolute_error", "rmse", "root_mean_squared_error")
_BY_VARIANCE = ("mse", "mean_squared_error")
_UNITLESS = (OWN_R2, "r2_score", "r2")
_PERCENT = ("mape", "mean_absolute_percentage_error")
_HIGHER_IS_BETTER = (*_UNITLESS, "cosine_similarity")


@dataclass(frozen=True)
class ValueScale:
    """How a gap on one regression metric is judged: divided by `unit`, in the direction that is worse.

    Attributes:
        unit: what the gap is divided by before it meets the tolerance.
        of: what the unit is, for messages: "the targets' std", "the targets' variance", "" for R².
        higher_is_better: True for R²; False for errors (mae, mse, the loss).
        mean_level: about what predicting the targets' mean scores (R² 0, mse the variance, mae and rmse
            the std); a reference worse than it is judged on its own error (`unit_at`). None: not known.
    """

    unit: float
    of: str
    higher_is_better: bool
    mean_level: float | None = None

    def unit_at(self, reference: float) -> tuple[float, str]:
        """The unit of a gap from `reference`, and what it is for messages. Where the reference is worse than
        predicting the targets' mean (R² below 0, an error above the targets' std or variance), its error
        is the unit: a head that explains nothing (R² -5) moves by 0.06 when its error changes by 1%, which
        is no disagreement between modes. Elsewhere the unit is `unit`."""
        if self.mean_level is not None and self.higher_is_better and reference < self.mean_level:
            return 1.0 - reference, f"the error there (1 - R² = {1.0 - reference:.4g})"  # R²: the error's share
        if self.mean_level is not None and not self.higher_is_better and reference > self.mean_level:
            return reference, f"the error there ({reference:.4g}, above {self.of} {self.unit:.4g})"
        return self.unit, f"{self.of} {self.unit:.4g}" if self.of else ""


@dataclass(frozen=True)
class TargetSpread:
    """The targets' spread: `variance` averaged over the outputs, `std` its square root."""

    variance: float
    outputs: int

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))


def regression_targets(targets) -> bool:
    """Whether target batches are values to regress (float, not class indices or one-hot rows)."""
    from pipeline_checks.pipelines.sources import are_values

    parts = targets if isinstance(targets, (list, tuple)) else [targets]
    joined = np.concatenate([np.asarray(t).reshape(len(t), -1) for t in parts])
    return are_values(joined[:, 0] if joined.shape[1] == 1 else joined)


def spread_of(targets) -> TargetSpread:
    columns = _columns(targets)
    return TargetSpread(float(np.var(columns, axis=0).mean()), columns.shape[1])


def r_squared(targets, outputs) -> float | None:
    """1 - SSE/SST of each output column, averaged over the columns whose targets vary (R2Score's
    uniform average); None where no column varies or the outputs do not match the targets."""
    y, predicted = _columns(targets), _columns(outputs)
    if predicted.shape != y.shape:
        return None
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    varies = total > 0
    if not varies.any():
        return None
    residual = ((y - predicted) ** 2).sum(axis=0)
    return float(np.mean(1 - residual[varies] / total[varies]))


def value_scales(metrics, loss_name: str, spread: TargetSpread) -> dict[str, ValueScale]:
    """The `ValueScale` of each metric whose unit is known; others (msle, Huber...) keep a relative gap."""
    std, variance = max(spread.std, 1e-12), max(spread.variance, 1e-24)
    scales = {}
    for metric in metrics:
        name = loss_name if metric == "loss" else metric
        if name in _BY_STD:
            scales[metric] = ValueScale(std, "the targets' std", False, mean_level=std)
        elif name in _BY_VARIANCE:
            scales[metric] = ValueScale(variance, "the targets' variance", False, mean_level=variance)
        elif name in _PERCENT:
            scales[metric] = ValueScale(100.0, "100%", False)
        elif name in _UNITLESS or name == "cosine_similarity":
            scales[metric] = ValueScale(
                1.0, "", name in _HIGHER_IS_BETTER, mean_level=0.0 if name in _UNITLESS else None
            )
    return scales


def fit_r_squared(fit: dict[str, float], loss_name: str, spread: TargetSpread, regularized: bool) -> float | None:
    """The R² fit reported, where its logs give it: its compiled R2Score, or 1 - MSE / variance from
    its mse metric or (without regularization losses) its MSE loss, for one output."""
    for name in ("r2_score", "r2"):
        if name in fit:
            return fit[name]
    if spread.outputs != 1 or spread.variance <= 0:
        return None
    mse = next((fit[name] for name in _BY_VARIANCE if name in fit), None)
    if mse is None and loss_name in _BY_VARIANCE and not regularized and "loss" in fit:
        mse = fit["loss"]
    return None if mse is None else 1 - mse / spread.variance


def loss_name_of(model) -> str:
    """The compiled loss's name as `value_scales` reads it ("mse" for mean_squared_error...)."""
    from pipeline_checks.model.losses import loss_facts

    name = loss_facts(getattr(model, "loss", None)).name.lower()
    return {"mean_squared_error": "mse", "mean_absolute_error": "mae"}.get(name, name)


def _columns(values) -> np.ndarray:
    """Batches (a list of arrays) or one array, as float64 rows of one column per output."""
    if isinstance(values, (list, tuple)):
        values = np.concatenate([np.asarray(v).reshape(len(v), -1) for v in values])
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(len(values), -1)
