"""Three keras.io examples as their authors wrote them, on tiny data, declared as pipelines.

Each keeps its example's loader, model, compile and fit arguments; only the data (a few
generated images written where the example reads its own) and the model's width are small.
tests/test_keras_io_adoption.py copies this file into a project's root and runs the gate on it.

- mnist_convnet (keras.io/examples/vision/mnist_convnet): arrays scaled by 255, labels through
  `to_categorical`, `fit(batch_size=128, epochs=15, validation_split=0.1)`.
- image_classification_from_scratch (keras.io/examples/vision/image_classification_from_scratch):
  `image_dataset_from_directory(validation_split=0.2, subset="both", seed=1337)`, augmentation
  layers made once at module level and mapped over the training dataset with AUTOTUNE, the
  model's own Rescaling, one logit under `BinaryCrossentropy(from_logits=True)`.
- transfer_learning (keras.io/guides/transfer_learning): a base frozen under a new head, trained,
  then unfrozen, recompiled at 1e-5 and fine-tuned; `fit(..., validation_data=validation_ds)` in
  both stages, `Resizing` mapped over both datasets, the model's own `Rescaling(1 / 127.5, -1)`.
"""

import tempfile
from pathlib import Path

import keras
import numpy as np
from keras import layers
from tensorflow import data as tf_data

from pipeline_checks import Pipeline, make_tiny_images

# -- mnist_convnet ---------------------------------------------------------------------------

num_classes = 3
input_shape = (16, 16, 1)


def mnist_model():
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def mnist_convnet():
    digits = make_tiny_images(classes=num_classes, per_class=8, size=16, channels=1)
    order = np.random.default_rng(0).permutation(len(digits.labels))  # mnist's arrays come shuffled
    return Pipeline(
        name="mnist_convnet",
        build_model=mnist_model,
        data=(digits.images[order], digits.labels[order], digits.class_names),
        preprocess_train=lambda x_train: x_train.astype("float32") / 255,
        label_encoding="one_hot",  # y_train = keras.utils.to_categorical(y_train, num_classes)
        fit_kwargs={"batch_size": 128, "epochs": 15, "validation_split": 0.1},
    )


# -- image_classification_from_scratch -------------------------------------------------------

image_size = (32, 32)
batch_size = 128

data_augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1),
]


def data_augmentation(images):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images


def pet_images() -> Path:
    """Where the example reads kagglecatsanddogs: a folder per class (here 12 generated images each)."""
    root = Path(tempfile.mkdtemp(prefix="PetImages-"))
    pets = make_tiny_images(classes=2, per_class=12, size=image_size[0], kind="photos")
    pets.to_directory(root)
    return root


def from_scratch_datasets(folder: Path):
    return keras.utils.image_dataset_from_directory(
        str(folder),
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=image_size,
        batch_size=batch_size,
    )


def augmented(train_ds):
    train_ds = train_ds.map(
        lambda img, label: (data_augmentation(img), label),
        num_parallel_calls=tf_data.AUTOTUNE,
    )
    return train_ds.prefetch(tf_data.AUTOTUNE)


def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [32, 64]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(128, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)


def compiled_from_scratch():
    model = make_model(input_shape=image_size + (3,), num_classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    return model


def served(images):
    """The examples' inference cell: `img_to_array(load_img(path))` into the model, whose own Rescaling scales it."""
    return np.asarray(images, dtype="float32")


def image_classification_from_scratch():
    folder = pet_images()
    return Pipeline(
        name="image_classification_from_scratch",
        build_model=compiled_from_scratch,
        data=lambda: from_scratch_datasets(folder),
        train_dataset=augmented,
        preprocess_infer=served,
        fit_kwargs={"epochs": 25, "batch_size": batch_size},
    )


# -- transfer_learning -----------------------------------------------------------------------

resize_fn = keras.layers.Resizing(32, 32)
augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1),
]


def transfer_augmentation(x):
    for layer in augmentation_layers:
        x = layer(x)
    return x


def cats_vs_dogs():
    """tfds.load("cats_vs_dogs", split=["train[:40%]", "train[40%:50%]"], as_supervised=True), resized."""
    pets = make_tiny_images(classes=2, per_class=10, size=40, kind="photos", seed=3)
    held_out = np.arange(len(pets.labels)) % 5 == 0  # every fifth image: 4 of 20
    train_ds, validation_ds = (
        tf_data.Dataset.from_tensor_slices((pets.images[part], pets.labels[part])) for part in (~held_out, held_out)
    )
    return tuple(ds.map(lambda x, y: (resize_fn(x), y)) for ds in (train_ds, validation_ds))


def augmented_batches(train_ds):
    train_ds = train_ds.map(lambda x, y: (transfer_augmentation(x), y))
    return train_ds.batch(batch_size=8, drop_remainder=False).prefetch(tf_data.AUTOTUNE).cache()


def base_model():
    """Xception(weights="imagenet", include_top=False) in the guide: a small conv base here (no download)."""
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, strides=2, activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    return keras.Model(inputs, x, name="base")


def transfer_model():
    base = base_model()
    base.trainable = False
    inputs = keras.Input(shape=(32, 32, 3))
    scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
    x = scale_layer(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    return model


def fine_tune(model, train_ds, validation_ds):
    epochs = 2
    model.fit(train_ds, epochs=epochs, validation_data=validation_ds)
    model.get_layer("base").trainable = True
    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    epochs = 1
    model.fit(train_ds, epochs=epochs, validation_data=validation_ds)


def transfer_learning():
    return Pipeline(
        name="transfer_learning",
        build_model=transfer_model,
        data=cats_vs_dogs,
        train_dataset=augmented_batches,
        preprocess_infer=served,  # the guide evaluates test_ds resized, without augmentation
        train=fine_tune,
        fit_kwargs={"batch_size": 8, "epochs": 3},
    )


def examples():
    return [mnist_convnet(), image_classification_from_scratch(), transfer_learning()]
