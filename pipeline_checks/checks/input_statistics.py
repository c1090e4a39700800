"""What augmentation keeps of a batch of model inputs, and two batches compared by it.

The preprocessing check compares its paths' inputs value by value first; where they differ,
it compares what augmentation keeps: the per-channel mean and standard deviation over all
images and each image's channel balance, as fractions of the reference's value range. The
same statistics name a path's convention ("pixels / 255, in [0, 1]") when they match one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    @property
    def scale(self) -> float:
        width = self.high - self.low
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
        return InputStatistics(self.shape, self.mean[::-1], self.std[::-1], balance, self.low, self.high)


def statistics(inputs) -> InputStatistics:
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim < 3:
        flat = x.reshape(-1, 1)
        return InputStatistics(x.shape, flat.mean(axis=0), flat.std(axis=0), None, float(x.min()), float(x.max()))
    means = x.reshape(len(x), -1, x.shape[-1]).mean(axis=1)
    flat = x.reshape(-1, x.shape[-1])
    balance = means - means.mean(axis=1, keepdims=True)
    return InputStatistics(x.shape, flat.mean(axis=0), flat.std(axis=0), balance, float(x.min()), float(x.max()))


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

    @property
    def identical(self) -> bool:
        return self.values_differing == 0

    @property
    def statistics_gap(self) -> float:
        return max(self.gaps)

    @property
    def agrees(self) -> bool:
        return self.identical or (not self.shape_mismatch and self.statistics_gap <= self.tolerance + self.allowance)

    @property
    def channels_reversed(self) -> bool:
        """Whether the inputs agree once their channel order is reversed (RGB against BGR)."""
        ours, reference = self.ours, self.reference
        if ours.balance is None or len(ours.mean) < 2 or ours.mean.shape != reference.mean.shape:
            return False
        return max(gaps(ours.reversed_channels(), reference)) <= self.tolerance + self.allowance

    def differences(self) -> str:
        if self.max_abs_difference is None:
            return f"shapes {self.ours.shape[1:]} and {self.reference.shape[1:]} per image"
        images, values, total = self.images_differing, self.values_differing, int(np.prod(self.reference.shape))
        return (
            f"max abs difference {self.max_abs_difference:.4g} ({images} of {self.reference.shape[0]} images, "
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
    if first.shape == reference.shape:
        difference = np.abs(first.astype(np.float64) - reference)
        differs = difference > SAME * expected.scale
        max_abs, values = float(difference.max()), int(differs.sum())
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
    )


def unchanged(received: np.ndarray, inputs: np.ndarray) -> bool:
    """Whether `received` equals `inputs` to float32 rounding."""
    if received.shape != inputs.shape:
        return False
    return bool(np.abs(received - inputs.astype(np.float64)).max() <= SAME * statistics(inputs).scale)


# -- naming what a path does ---------------------------------------------------------------


def conventions(images: np.ndarray) -> dict[str, InputStatistics]:
    """The statistics of the usual preprocessings of the raw images, to name what a path does."""
    from pipeline_checks.model.applications import preprocess_input_for

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
    if inputs.balance is None or inputs.mean.shape != next(iter(known.values())).mean.shape:
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
    return f"{label}: range {inputs.value_range}{mean}{f'; looks like {looks}' if looks else ''}"
