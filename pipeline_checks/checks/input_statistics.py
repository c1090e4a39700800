"""What augmentation keeps of a batch of model inputs, and two batches compared by it.

The preprocessing check compares its paths' inputs value by value first; where they differ,
it compares what augmentation keeps: the per-channel mean and standard deviation over all
images and each image's channel balance, as fractions of the reference's value range. The
same statistics name a path's convention ("pixels / 255, in [0, 1]") when they match one.

NaN and Inf are no difference between two paths that both give them at the same places
(NaN != NaN would make a deterministic path look random): values compare with NaN equal
to NaN, and the statistics are those of the finite values, with the non-finite ones counted.
Where they come from is the numerics check's finding.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pipeline_checks.pipelines.input_kind import are_images, word_for_rank

SAME = 1e-5  # values closer than this fraction of the range are equal: float32 rounding, not a difference
LOOKS_LIKE = 0.02  # statistics this close to a known convention's name the convention


@dataclass(frozen=True)
class InputStatistics:
    """What augmentation keeps of a batch of inputs, compared instead of the values themselves.

    `balance` is each image's channel means less their average: brightness jitter keeps it,
    swapping RGB and BGR does not. Without a channel axis (fewer than 3 dimensions) the
    inputs count as one channel.
    """

    shape: tuple
    mean: np.ndarray  # per channel, over all images and positions
    std: np.ndarray
    balance: np.ndarray | None  # (images, channels)
    low: float
    high: float
    non_finite: int = 0  # values that are NaN or Inf, left out of the statistics
    images_non_finite: int = 0  # images holding any

    @property
    def scale(self) -> float:
        width = self.high - self.low
        if not np.isfinite(width):  # no finite value at all
            return 1.0
        return width if width > 0 else max(abs(self.low), abs(self.high), 1.0)

    @property
    def value_range(self) -> str:
        return f"[{self.low:.4g}, {self.high:.4g}]"

    def pooled(self) -> tuple[float, float]:
        """Mean and std over all channels together."""
        mean = float(self.mean.mean())
        return mean, float(np.sqrt(max((self.std**2 + self.mean**2).mean() - mean**2, 0.0)))

    def reversed_channels(self) -> InputStatistics:
        balance = None if self.balance is None else self.balance[:, ::-1]
        return InputStatistics(
            self.shape,
            self.mean[::-1],
            self.std[::-1],
            balance,
            self.low,
            self.high,
            self.non_finite,
            self.images_non_finite,
        )

    def non_finite_text(self) -> str:
        """'768 values NaN or Inf, in 1 of 12 images' ('' where all are finite)."""
        if not self.non_finite:
            return ""
        rows = f"{word_for_rank(len(self.shape))}s"
        return f"{self.non_finite:,} values NaN or Inf, in {self.images_non_finite} of {self.shape[0]} {rows}"


def statistics(inputs) -> InputStatistics:
    x = np.asarray(inputs, dtype=np.float64)
    finite = np.isfinite(x)
    counts = {}
    if not finite.all():
        counts = {
            "non_finite": int((~finite).sum()),
            "images_non_finite": int((~finite).reshape(len(x), -1).any(axis=1).sum()) if x.ndim else 1,
        }
        x = np.where(finite, x, np.nan)
    with warnings.catch_warnings():  # a channel with no finite value has NaN statistics, said by `non_finite`
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = float(np.nanmin(x)) if finite.any() else np.nan, float(np.nanmax(x)) if finite.any() else np.nan
        if x.ndim < 3:
            flat = x.reshape(-1, 1)
            return InputStatistics(
                x.shape, np.nanmean(flat, axis=0), np.nanstd(flat, axis=0), None, low, high, **counts
            )
        means = np.nanmean(x.reshape(len(x), -1, x.shape[-1]), axis=1)
        flat = x.reshape(-1, x.shape[-1])
        balance = means - np.nanmean(means, axis=1, keepdims=True)
        return InputStatistics(x.shape, np.nanmean(flat, axis=0), np.nanstd(flat, axis=0), balance, low, high, **counts)


def equal_values(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Element by element: equal, NaN equal to NaN (and Inf to an Inf of its sign)."""
    first, second = np.asarray(first), np.asarray(second)
    same = first == second
    if first.dtype.kind in "fc" and second.dtype.kind in "fc":
        same |= np.isnan(first) & np.isnan(second)
    return same


def same_values(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two batches hold the same values, NaN equal to NaN."""
    first, second = np.asarray(first), np.asarray(second)
    return first.shape == second.shape and bool(equal_values(first, second).all())


def gaps(ours: InputStatistics, reference: InputStatistics) -> tuple[float, float, float]:
    """Largest gaps of mean, std and balance, as fractions of the reference's range."""
    scale = reference.scale
    if ours.balance is None or reference.balance is None or ours.mean.shape != reference.mean.shape:
        (ours_mean, ours_std), (reference_mean, reference_std) = ours.pooled(), reference.pooled()
        return abs(ours_mean - reference_mean) / scale, abs(ours_std - reference_std) / scale, 0.0
    balance, reference_balance = ours.balance, reference.balance
    if len(balance) % len(reference_balance) == 0:  # several draws of the same images
        reference_balance = np.tile(reference_balance, (len(balance) // len(reference_balance), 1))
    count = min(len(balance), len(reference_balance))
    balance_gap = np.abs(balance[:count] - reference_balance[:count]).max(axis=1).mean()
    return (
        float(np.abs(ours.mean - reference.mean).max() / scale),
        float(np.abs(ours.std - reference.std).max() / scale),
        float(balance_gap / scale),
    )


@dataclass(frozen=True)
class Comparison:
    """Inputs of the checked path (`ours`) against a reference, from the same raw images.

    Values equal to float32 rounding agree. Otherwise the statistics must: their gaps are
    fractions of the reference's value range, within `tolerance` plus, for a random path,
    `allowance`: what the statistics move between its two draws, augmentation's own
    spread, measured rather than guessed.
    """

    ours: InputStatistics
    reference: InputStatistics
    max_abs_difference: float | None  # None: the shapes differ, only statistics compare
    images_differing: int | None
    values_differing: int | None
    gaps: tuple[float, float, float]  # mean, std, balance
    shape_mismatch: bool
    tolerance: float
    allowance: float = 0.0
    non_finite_in_one: bool = False  # a value NaN or Inf in one batch where the other's is finite

    @property
    def identical(self) -> bool:
        return self.values_differing == 0

    @property
    def statistics_gap(self) -> float:
        return max(self.gaps)

    @property
    def agrees(self) -> bool:
        if self.identical:
            return True
        return (
            not (self.shape_mismatch or self.non_finite_in_one)
            and self.statistics_gap <= self.tolerance + self.allowance
        )

    @property
    def channels_reversed(self) -> bool:
        """Whether the inputs agree once their channel order is reversed (RGB against BGR)."""
        ours, reference = self.ours, self.reference
        if ours.balance is None or len(ours.mean) < 2 or ours.mean.shape != reference.mean.shape:
            return False
        return max(gaps(ours.reversed_channels(), reference)) <= self.tolerance + self.allowance

    def differences(self) -> str:
        row = word_for_rank(len(self.reference.shape))
        if self.max_abs_difference is None:
            return f"shapes {self.ours.shape[1:]} and {self.reference.shape[1:]} per {row}"
        images, values, total = self.images_differing, self.values_differing, int(np.prod(self.reference.shape))
        return (
            f"max abs difference {self.max_abs_difference:.4g} ({images} of {self.reference.shape[0]} {row}s, "
            f"{values:,} of {total:,} values, {values / total:.1%})"
        )

    def explained(self) -> str:
        allowed = f"tolerance {self.tolerance:g}"
        if self.allowance:
            allowed += f" + {self.allowance:.2g} that augmentation moves them between two draws"
        mean, std, balance = self.gaps
        return (
            f"per-channel mean differs by {mean:.3g}, std by {std:.3g} and channel balance by {balance:.3g} "
            f"of the range {self.reference.scale:.4g} ({allowed})"
        )


def compare(draws, reference, tolerance: float, same_shape: bool) -> Comparison:
    """Compare one or two draws of a path's inputs with the reference inputs."""
    first, reference = np.asarray(draws[0]), np.asarray(reference)
    ours = statistics(np.concatenate(draws) if len({np.shape(d) for d in draws}) == 1 else first)
    expected = statistics(reference)
    max_abs = images = values = None
    unbounded = False
    if first.shape == reference.shape:
        with np.errstate(invalid="ignore"):  # inf - inf: a NaN that equal_values accounts for
            difference = np.abs(first.astype(np.float64) - reference)
        differs = ~((difference <= SAME * expected.scale) | equal_values(first, reference))
        finite = difference[np.isfinite(difference)]
        # A value non-finite in one path only differs without bound.
        unbounded = bool((differs & ~np.isfinite(difference)).any())
        max_abs = np.inf if unbounded else float(finite.max()) if finite.size else 0.0
        values = int(differs.sum())
        images = int(differs.reshape(len(differs), -1).any(axis=1).sum())
    allowance = 0.0
    if len(draws) == 2 and np.shape(draws[0]) == np.shape(draws[1]):
        allowance = max(gaps(statistics(draws[0]), statistics(draws[1])))
        allowance *= statistics(draws[1]).scale / expected.scale
    return Comparison(
        ours=ours,
        reference=expected,
        max_abs_difference=max_abs,
        images_differing=images,
        values_differing=values,
        gaps=gaps(ours, expected),
        shape_mismatch=(same_shape and first.shape[1:] != reference.shape[1:]) or first.ndim != reference.ndim,
        tolerance=tolerance,
        allowance=allowance,
        non_finite_in_one=unbounded,
    )


def unchanged(received: np.ndarray, inputs: np.ndarray) -> bool:
    """Whether `received` equals `inputs` to float32 rounding."""
    if received.shape != inputs.shape:
        return False
    return bool(np.abs(received - inputs.astype(np.float64)).max() <= SAME * statistics(inputs).scale)


# -- naming what a path does ---------------------------------------------------------------


def conventions(images: np.ndarray) -> dict[str, InputStatistics]:
    """The statistics of the usual preprocessings of the raw images, to name what a path does; none for
    inputs that are not images (tabular rows, sequences), which have no pixel conventions."""
    from pipeline_checks.model.applications import preprocess_input_for

    if not are_images(images):
        return {}

    pixels = np.asarray(images, dtype=np.float32)
    found = {
        "raw pixels 0..255": statistics(pixels),
        "pixels / 255, in [0, 1] (rescale=1/255)": statistics(pixels / 255.0),
        "pixels / 127.5 - 1, in [-1, 1] ('tf' mode)": statistics(pixels / 127.5 - 1.0),
    }
    if pixels.shape[-1] == 3:
        caffe = statistics(preprocess_input_for("ResNet50")(pixels.copy()))  # caffe mode writes in place
        found["BGR with the ImageNet means subtracted ('caffe' mode)"] = caffe
        found["RGB with the ImageNet means subtracted (caffe mode without the swap to BGR)"] = caffe.reversed_channels()
        found["ImageNet mean and std normalization ('torch' mode)"] = statistics(
            preprocess_input_for("DenseNet121")(pixels.copy())
        )
    return found


def looks_like(inputs: InputStatistics, known: dict[str, InputStatistics]) -> str | None:
    """The convention in `known` whose statistics `inputs` match, or None."""
    if not known or inputs.balance is None or inputs.mean.shape != next(iter(known.values())).mean.shape:
        return None
    found = {name: max(gaps(inputs, candidate)) for name, candidate in known.items()}
    best = min(found, key=found.get)
    return best if found[best] <= LOOKS_LIKE else None


def described(label: str, inputs: InputStatistics, known: dict[str, InputStatistics]) -> str:
    """'label: range [a, b], per-channel mean ...; looks like <convention>'."""
    looks = looks_like(inputs, known)
    mean = ""
    if inputs.balance is not None and len(inputs.mean) <= 4:
        mean = ", per-channel mean " + " ".join(f"{m:.3g}" for m in inputs.mean)
    non_finite = f"; {inputs.non_finite_text()}" if inputs.non_finite else ""
    return f"{label}: range {inputs.value_range}{mean}{non_finite}{f'; looks like {looks}' if looks else ''}"
