"""count_flops against published model sizes, hand-computed layers, nested models and bad input."""

import dataclasses
import functools

import pytest

from pipeline_checks import build_application
from pipeline_checks.model import compat
from pipeline_checks.model.flops import FlopCount, count_flops


@functools.cache
def application_count(name: str, side: int) -> FlopCount:
    model, _ = build_application(name, classes=1000, input_shape=side)
    return count_flops(model)


# Published forward multiply-accumulates per image at 1000 classes.
# ResNet50: He et al. 2015, Table 1, "3.8 x 10^9 FLOPs" (multiply-adds) for ResNet-50 v1,
# which is what keras.applications builds (stride 2 in the first 1x1 convolution of a
# downsampling block). torchvision's 4.09 GMACs is ResNet-50 v1.5 (stride in the 3x3), a
# different network: see test_resnet50_is_v1_to_the_multiply_accumulate.
# MobileNetV2: Sandler et al. 2018, Table 3, 300M multiply-adds at alpha 1.0, 224.
# InceptionV3: torchvision's model table, 5.71 GMACs at 299.
PUBLISHED = [
    pytest.param("ResNet50", 224, 3.8, id="ResNet50-paper-3.8"),
    pytest.param("MobileNetV2", 224, 0.300, id="MobileNetV2-paper-0.300"),
    pytest.param("InceptionV3", 299, 5.71, id="InceptionV3-torchvision-5.71"),
]


@pytest.mark.parametrize("name, side, published_gmacs", PUBLISHED)
def test_applications_match_their_published_counts(name, side, published_gmacs):
    count = application_count(name, side)
    assert count.gmacs == pytest.approx(published_gmacs, rel=0.03)
    assert count.ignored == ()
    assert count.flops == 2 * count.macs and count.training_step_flops == 6 * count.macs


def test_input_shape_recounts_a_built_network_at_another_size():
    # tensorflow/models slim MobileNetV2 table: mobilenet_v2_1.0_160, 154M MACs.
    model, _ = build_application("MobileNetV2", classes=1000, input_shape=224)
    at_160 = count_flops(model, input_shape=(160, 160, 3))
    assert at_160.gmacs == pytest.approx(0.154, rel=0.03)
    assert at_160 == application_count("MobileNetV2", 160)  # as if built at 160


def resnet50_macs(stride_in_3x3: bool) -> int:
    """ResNet-50 at 224 and 1000 classes, by hand: v1 (stride in the 1x1) or v1.5 (in the 3x3)."""
    macs = 112 * 112 * 64 * (7 * 7 * 3)  # conv1
    side, channels = 56, 64
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            out = side // stride
            reduce_side = side if stride_in_3x3 else out
            macs += reduce_side**2 * width * channels  # 1x1 reduce
            macs += out**2 * width * width * 9  # 3x3
            macs += out**2 * 4 * width * width  # 1x1 expand
            if block == 0:
                macs += out**2 * 4 * width * channels  # projection shortcut
            side, channels = out, 4 * width
    return macs + 2048 * 1000


def test_resnet50_is_v1_to_the_multiply_accumulate():
    count = application_count("ResNet50", 224)
    assert count.macs == resnet50_macs(stride_in_3x3=False) == 3_857_973_248
    assert resnet50_macs(stride_in_3x3=True) == 4_089_184_256  # torchvision's 4.09: not this network


def test_a_tiny_model_by_hand():
    keras = compat.keras()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)  # 6x6x4 outputs, 3x3x3 each
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))  # 144 -> 5
    count = count_flops(keras.Model(inputs, outputs))
    conv, dense = 6 * 6 * 4 * (3 * 3 * 3), 144 * 5
    assert count == FlopCount(
        macs=conv + dense,
        by_layer_type={"Conv2D": conv, "Dense": dense, "BatchNormalization": 0, "Flatten": 0},
        ignored=(),
    )
    assert (count.flops, count.training_step_flops) == (2 * (conv + dense), 6 * (conv + dense))
    assert count.gmacs == pytest.approx((conv + dense) / 1e9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        count.macs = 0


# (layer from `keras.layers`, input shape without batch, MACs by hand: positions x per-position work)
LAYER_RULES = [
    pytest.param(
        lambda L: L.Conv2D(8, 3, strides=2, padding="same"), (9, 9, 4), 5 * 5 * 8 * 9 * 4, id="conv2d-stride-same"
    ),
    pytest.param(lambda L: L.Conv2D(8, 3, groups=2), (6, 6, 4), 4 * 4 * 8 * 9 * 2, id="conv2d-groups"),
    pytest.param(lambda L: L.Conv2D(2, 3, dilation_rate=2), (7, 7, 3), 3 * 3 * 2 * 9 * 3, id="conv2d-dilation"),
    pytest.param(
        lambda L: L.Conv2D(8, 1, data_format="channels_first"), (4, 5, 5), 5 * 5 * 8 * 4, id="conv2d-channels-first"
    ),
    pytest.param(lambda L: L.Conv1D(6, 5), (20, 2), 16 * 6 * 5 * 2, id="conv1d"),
    pytest.param(lambda L: L.Conv3D(2, 2), (3, 3, 3, 5), 2 * 2 * 2 * 2 * 8 * 5, id="conv3d"),
    pytest.param(lambda L: L.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 3), 3 * 3 * 6 * 9, id="depthwise-x2"),
    pytest.param(
        lambda L: L.SeparableConv2D(7, 3, strides=2), (7, 7, 4), 3 * 3 * 4 * 9 + 3 * 3 * 4 * 7, id="separable"
    ),
    pytest.param(lambda L: L.Conv2DTranspose(3, 3, strides=2), (4, 4, 5), 4 * 4 * 5 * 9 * 3, id="conv2d-transpose"),
    pytest.param(lambda L: L.Dense(7), (10, 6), 10 * 6 * 7, id="dense-on-a-sequence"),
]


@pytest.mark.parametrize("make_layer, input_shape, expected", LAYER_RULES)
def test_each_counted_layer_by_hand(make_layer, input_shape, expected):
    keras = compat.keras()
    layer = make_layer(keras.layers)
    inputs = keras.Input(input_shape)
    count = count_flops(keras.Model(inputs, layer(inputs)))
    assert count.by_layer_type == {type(layer).__name__: expected}
    assert count.macs == expected


def test_nested_and_shared_models_are_walked_and_counted_per_call():
    keras = compat.keras()
    block_in = keras.Input((None, None, 3))  # sizes come from the outer model
    block = keras.Model(block_in, keras.layers.Conv2D(4, 1)(block_in), name="block")
    head = keras.Sequential(
        [keras.Input((None, None, 4)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)], name="head"
    )
    inputs = keras.Input((10, 10, 3))
    small = keras.layers.MaxPooling2D(2)(inputs)
    features = keras.layers.Concatenate()([head(block(inputs)), head(block(small))])
    count = count_flops(keras.Model(inputs, features))
    conv = (10 * 10 + 5 * 5) * 4 * 3  # the shared block, once per call
    assert count.by_layer_type == {
        "Conv2D": conv,
        "Dense": 2 * 4 * 2,
        "Concatenate": 0,
        "GlobalAveragePooling2D": 0,
        "MaxPooling2D": 0,
    }
    assert count.macs == conv + 16 and count.ignored == ()


def test_layers_of_unknown_cost_are_listed_not_dropped():
    keras = compat.keras()

    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],))

        def call(self, x):
            return x * self.scale

    inputs = keras.Input((4, 6))
    x = keras.layers.Dense(6)(inputs)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    x = keras.layers.Lambda(lambda t: t * 2.0)(Scale()(keras.layers.LayerNormalization()(x)))
    count = count_flops(keras.Model(inputs, x))
    assert count.ignored == ("Lambda", "MultiHeadAttention", "Scale")
    assert count.by_layer_type == {"Dense": 4 * 6 * 6, "LayerNormalization": 0}
    assert count.macs == 4 * 6 * 6


def test_input_shape_sizes_a_model_of_unknown_size():
    keras = compat.keras()
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    with pytest.raises(ValueError, match=r"unknown size.*input_shape=\(224, 224, 3\).*received: input_shape=None"):
        count_flops(model)
    assert count_flops(model, input_shape=(32, 48, 3)).macs == 32 * 48 * 2 * 9 * 3
    assert count_flops(model, input_shape=[16, 16, 3]).macs == 16 * 16 * 2 * 9 * 3


def test_an_unbuilt_sequential_model_counts_at_the_given_input_shape():
    keras = compat.keras()
    model = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"is not built.*received: input_shape=None"):
        count_flops(model)
    assert count_flops(model, input_shape=(5, 5, 2)).macs == 3 * 3 * 4 * 9 * 2 + 36 * 3


def test_several_inputs_take_a_list_of_shapes():
    keras = compat.keras()
    a, b = keras.Input((None, 3)), keras.Input((None, 4))
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    assert count_flops(model, input_shape=[(5, 3), (5, 4)]).macs == 5 * 7 * 2


def conv_model(keras):
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))


def subclassed_model(keras):
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    return Subclassed()


INVALID = [
    pytest.param(subclassed_model, None, r"needs a Functional or Sequential.*received: model=", id="subclassed-model"),
    pytest.param(
        lambda k: k.layers.Dense(2), (3,), r"needs a Functional or Sequential.*received: model=", id="a-layer"
    ),
    pytest.param(
        conv_model,
        (8, 8),
        r"must match the model's 1 input\(s\) of shape \(8, 8, 3\).*received: input_shape=\(8, 8\)",
        id="rank-mismatch",
    ),
    pytest.param(conv_model, (0, 8, 3), r"received: input_shape=\(0, 8, 3\)", id="zero-size"),
    pytest.param(conv_model, "224", r"must be the shape of one input.*received: input_shape='224'", id="not-a-shape"),
    pytest.param(conv_model, (None, 8, 8, 3), r"received: input_shape=\(None, 8, 8, 3\)", id="batch-included"),
    pytest.param(conv_model, (True, 8, 3), r"received: input_shape=\(True, 8, 3\)", id="bool-size"),
]


@pytest.mark.parametrize("make_model, input_shape, message", INVALID)
def test_invalid_arguments(make_model, input_shape, message):
    with pytest.raises(ValueError, match=message):
        count_flops(make_model(compat.keras()), input_shape=input_shape)
