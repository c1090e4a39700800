"""Whether validation numbers the classes as training does, read from what the trained model predicts.

Class names settle it only where they exist: an integer-labelled `tf.data` dataset's are '0',
'1', '2' on both splits, so a validation split labelled from a reversed class list lists the
same names in the same order. The trained model still tells: it predicts label k for the
training images of label k, and, where validation's labels mean other classes, label k for
validation images labelled j, consistently.

A model that generalizes badly must not be blamed on the labels, so validation is judged
only where the model fits the training images, each judged label has images enough and one
prediction for most of them, and the moved labels form a consistent one-to-one mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_checks.model import compat

MIN_IMAGES = 2  # a label's validation images a prediction is read from
FIT_SHARE = 0.8  # training images the model must predict as their own label before validation is judged
MAJORITY = 2 / 3  # a label's images that must get the same prediction for it to be the label's


@dataclass(frozen=True)
class Majority:
    """What the model predicts most on the images of one label."""

    label: int
    predicted: int
    count: int  # the images predicted as `predicted`
    images: int  # the images of `label`

    @property
    def consistent(self) -> bool:
        return self.images >= MIN_IMAGES and self.count >= MAJORITY * self.images

    def seen(self, split: str) -> str:
        return f"{split} label {self.label} as {self.predicted} on {self.count} of {self.images} images"


@dataclass(frozen=True)
class LabelComparison:
    """The trained model's majority prediction for each label of the training and the validation images."""

    training: dict[int, Majority]
    validation: dict[int, Majority]
    fitted: int  # training images predicted as their own label
    images: int  # training images

    @property
    def model_fits(self) -> bool:
        """Whether the model predicts its own label for most training images and of every training label."""
        return self.fitted >= FIT_SHARE * self.images and all(m.predicted == m.label for m in self.training.values())

    @property
    def judged(self) -> dict[int, Majority]:
        """The validation labels that training has too, with images enough and one prediction for most."""
        return {j: m for j, m in self.validation.items() if j in self.training and m.consistent}

    @property
    def moved(self) -> dict[int, int]:
        """Validation label -> the other label the model predicts for it, where the model fits the training
        images and the judged labels map one to one, at least two of them and at least half move; {} otherwise
        (chance, a model that generalizes badly, or labels that agree)."""
        if not self.model_fits:
            return {}
        mapping = {j: m.predicted for j, m in self.judged.items()}
        moved = {j: k for j, k in mapping.items() if k != j}
        one_to_one = len(set(mapping.values())) == len(mapping)
        if not one_to_one or len(moved) < 2 or 2 * len(moved) < len(mapping):
            return {}
        return moved

    @property
    def agrees(self) -> bool:
        """Whether the model predicts every judged validation label mostly as itself."""
        return all(m.predicted == m.label for m in self.judged.values())

    @property
    def permutation(self) -> bool:
        """Whether the moved labels trade places among themselves (else they shift onto others)."""
        return set(self.moved) == set(self.moved.values())

    def numbers(self) -> dict:
        """The majorities by split, as {label: (predicted, count, images)}: not scalars, so no fingerprint figure."""
        return {
            split: {m.label: (m.predicted, m.count, m.images) for m in majorities.values()}
            for split, majorities in (("training", self.training), ("validation", self.validation))
        }


def compare(model, x_train, train_labels, x_validation, validation_labels, batch_size: int, threshold: float):
    """The `LabelComparison` of the trained `model`'s predictions on both splits.

    `threshold` reads one output as class 1 above it (0.5 for a probability, 0 for a logit);
    wider outputs are read by their argmax.
    """
    train_predicted = predicted_classes(model, x_train, batch_size, threshold)
    validation_predicted = predicted_classes(model, x_validation, batch_size, threshold)
    return comparison_of(train_labels, train_predicted, validation_labels, validation_predicted)


def comparison_of(train_labels, train_predicted, validation_labels, validation_predicted) -> LabelComparison:
    """The `LabelComparison` of the classes predicted for each split's labels."""
    train_labels, train_predicted = np.asarray(train_labels), np.asarray(train_predicted)
    validation_labels, validation_predicted = np.asarray(validation_labels), np.asarray(validation_predicted)
    return LabelComparison(
        majorities(train_labels, train_predicted),
        majorities(validation_labels, validation_predicted),
        int((train_predicted == train_labels).sum()),
        len(train_labels),
    )


def predicted_classes(model, x, batch_size: int, threshold: float) -> np.ndarray:
    outputs = np.asarray(compat.to_numpy(model.predict(x, batch_size=batch_size, verbose=0)), dtype=np.float64)
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > threshold).astype(np.int64)
    return outputs.argmax(axis=1)


def majorities(labels: np.ndarray, predicted: np.ndarray) -> dict[int, Majority]:
    """Label -> the `Majority` of the predictions on its images (the lowest class on a tie)."""
    found = {}
    for label in sorted({int(v) for v in labels}):
        values, counts = np.unique(predicted[labels == label], return_counts=True)
        best = int(np.argmax(counts))
        found[label] = Majority(label, int(values[best]), int(counts[best]), int(counts.sum()))
    return found


def generated_names(names) -> bool:
    """Whether class names are only the indices ('0', '1', ...), as a source without names gets them."""
    return tuple(names) == tuple(str(i) for i in range(len(names)))
