"""Models from specs: shapes, per-layer activations, norms, dropout; activations and output
activations against their formulas (numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from optimlab.models import (
    CNN,
    MLP,
    available,
    build_model,
    make_activation,
    n_outputs,
    normalize_spec,
    output_activation,
    task_defaults,
)


def _types(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_mlp_shapes_and_structure():
    net = build_model({"type": "mlp", "hidden": [32, 16]}, 20, 3, seed=0)
    assert isinstance(net, MLP)
    assert net(torch.randn(5, 20)).shape == (5, 3)
    widths = [(m.in_features, m.out_features) for m in _types(net, nn.Linear)]
    assert widths == [(20, 32), (32, 16), (16, 3)]
    assert isinstance(net[-1], nn.Linear)  # logits: no output activation


def test_mlp_flattens_image_inputs():
    net = build_model("mlp", (1, 8, 8), 10, seed=0)
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert net(torch.randn(4, 64)).shape == (4, 10)


def test_linear_model_is_one_layer():
    net = build_model("linear", 5, 1, task="binary")
    assert [type(m) for m in net.children()] == [nn.Flatten, nn.Linear]


def test_per_layer_activations():
    spec = {"hidden": [8, 8, 8], "activation": ["tanh", "leaky_relu:0.1", {"name": "elu"}]}
    net = build_model(spec, 4, 2)
    acts = [net.act0, net.act1, net.act2]
    assert [type(a) for a in acts] == [nn.Tanh, nn.LeakyReLU, nn.ELU]
    assert net.act1.negative_slope == 0.1
    one = build_model({"hidden": [8, 8], "activation": "swish"}, 4, 2)
    assert [type(m) for m in (one.act0, one.act1)] == [nn.SiLU, nn.SiLU]


@pytest.mark.parametrize(
    ("norm", "kind"), [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm), ("group", nn.GroupNorm)]
)
def test_mlp_norm_layers(norm, kind):
    net = build_model({"hidden": [16, 8], "norm": norm, "groups": 4}, 6, 2)
    found = _types(net, kind)
    assert len(found) == 2
    if norm == "group":
        assert [g.num_groups for g in found] == [4, 4]
    assert net(torch.randn(3, 6)).shape == (3, 2)
    assert not _types(build_model({"hidden": [16], "norm": "none"}, 6, 2), kind)


def test_cnn_norm_layers():
    spec = {"type": "cnn", "channels": [8, 16], "hidden": [32]}
    assert len(_types(build_model({**spec, "norm": "batch"}, (1, 8, 8), 3), nn.BatchNorm2d)) == 2
    layer = _types(build_model({**spec, "norm": "layer"}, (1, 8, 8), 3).features, nn.GroupNorm)
    assert [g.num_groups for g in layer] == [1, 1]  # LayerNorm over C×H×W


@pytest.mark.parametrize(
    ("shape", "x_shape"),
    [((1, 28, 28), (2, 1, 28, 28)), ((3, 32, 32), (2, 3, 32, 32)), ((1, 8, 8), (2, 64)),
     ((8, 8), (2, 8, 8))],
)
def test_cnn_forward_shapes(shape, x_shape):
    net = build_model({"type": "cnn", "channels": [4, 8], "hidden": [16]}, shape, 10, seed=0)
    assert isinstance(net, CNN)
    assert net(torch.randn(*x_shape)).shape == (2, 10)


def test_cnn_head_width_and_options():
    net = build_model({"type": "cnn", "channels": [4, 8]}, (3, 32, 32), 10)
    assert net.head.linear0.in_features == 8 * 8 * 8  # 32 → 16 → 8
    deep = build_model({"type": "cnn", "channels": [4, 4, 4, 4], "hidden": []}, (1, 8, 8), 10)
    assert deep.head.output.in_features == 4 * 1 * 1  # pools stop once a side is 1
    assert deep(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    gp = build_model({"type": "cnn", "channels": [4, 6], "global_pool": True}, (3, 32, 32), 5)
    assert gp.head.linear0.in_features == 6
    for k in (4, 5):
        net = build_model({"type": "cnn", "channels": [3], "kernel_size": k}, (1, 9, 9), 2)
        assert net(torch.randn(2, 1, 9, 9)).shape == (2, 2)


def test_module_passes_through():
    net = nn.Linear(3, 2)
    assert build_model(net, 99, 7, task="multiclass", seed=1) is net


def test_dropout_train_vs_eval_keeps_expected_activation():
    # Every hidden unit is relu(0·x + 1) = 1 before dropout.
    p, width = 0.3, 20000
    net = build_model(
        {"hidden": [width], "dropout": p, "init": "zeros", "bias_init": 1.0}, 3, 1, seed=0
    )
    hidden = net[:-1]  # everything up to the output layer (after drop0)
    x = torch.randn(4, 3)
    net.train()
    h = hidden(x)
    zero_frac = (h == 0).float().mean().item()
    assert zero_frac == pytest.approx(p, abs=0.01)
    assert torch.allclose(h[h != 0], torch.tensor(1 / (1 - p)))  # inverted dropout scaling
    assert h.mean().item() == pytest.approx(1.0, abs=0.02)  # expectation kept
    assert not torch.equal(hidden(x), h)  # a fresh mask each pass
    net.eval()
    assert torch.equal(hidden(x), torch.ones(4, width))


def test_cnn_dropout_layers():
    spec = {"type": "cnn", "channels": [4], "conv_dropout": 0.2, "hidden": [8], "dropout": 0.5}
    net = build_model(spec, (1, 8, 8), 2)
    assert len(_types(net, nn.Dropout2d)) == 1
    assert [d.p for d in _types(net.head, nn.Dropout)] == [0.5]


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACT_REFS = {
    "identity": lambda x: x,
    "sigmoid": _np_sigmoid,
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "relu": lambda x: np.maximum(0, x),
    "leaky_relu:0.2": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "gelu": lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "silu": lambda x: x * _np_sigmoid(x),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True),
}


@pytest.mark.parametrize("name", list(ACT_REFS))
def test_activation_formulas(name):
    x = np.linspace(-4, 4, 24).reshape(3, 8)
    got = make_activation(name)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, ACT_REFS[name](x), rtol=1e-6, atol=1e-9)


def test_output_activation():
    z = np.array([[2.0, 1.0, 0.1]])
    probs = output_activation("multiclass")(torch.tensor(z)).numpy()
    np.testing.assert_allclose(probs, np.exp(z) / np.exp(z).sum(), rtol=1e-12)
    # the notes' worked example, rounded to two places: [0.66, 0.24, 0.10]
    np.testing.assert_allclose(probs.round(2), [[0.66, 0.24, 0.10]])
    zb = np.array([[-1.0], [0.0], [3.0]])
    np.testing.assert_allclose(output_activation("binary")(torch.tensor(zb)).numpy(),
                               _np_sigmoid(zb))
    t = torch.randn(4, 2)
    assert torch.equal(output_activation("regression")(t), t)


def test_task_defaults_follow_the_notes_table():
    assert task_defaults("binary")["output_activation"] == "sigmoid"
    assert task_defaults("binary")["loss"] == "bce"
    assert task_defaults("multiclass")["output_activation"] == "softmax"
    assert task_defaults("multiclass")["loss"] == "ce"
    assert task_defaults("regression")["output_activation"] == "identity"
    assert task_defaults("regression")["loss"] == "mse"
    assert "metrics" not in task_defaults("multiclass")  # metrics live in optimlab.train


def test_normalize_spec_and_available():
    s = normalize_spec({"hidden": [4, 5], "activation": ["relu", "leaky_relu:0.1"],
                        "dropout": [0.0, 0.5], "norm": "none", "init": "glorot_uniform",
                        "bias_init": "default"})
    assert s["activation"] == ["relu", {"name": "leaky_relu", "alpha": 0.1}]
    assert s["dropout"] == [0.0, 0.5] and s["norm"] is None and s["bias_init"] is None
    assert s["init"] == {"name": "xavier_uniform", "gain": 1.0}
    assert normalize_spec("mlp")["hidden"] == [128, 64]
    a = available()
    assert {"mlp", "cnn", "linear"} <= set(a["models"])
    assert "leaky_relu" in a["activations"] and "he_normal" in a["inits"]
    assert a["losses"]["ce"]["tasks"] == ["multiclass"]


@pytest.mark.parametrize("task, n_classes, target_shape, want", [
    ("binary", 2, (50,), 1), ("binary", None, (50, 1), 1),
    ("multiclass", 10, (50,), 10), ("multilabel", 4, (50, 4), 4),
    ("regression", None, (50,), 1), ("regression", None, (50, 1), 1),
    ("regression", None, (50, 3), 3)])
def test_n_outputs_follows_the_task_table(task, n_classes, target_shape, want):
    assert n_outputs(task, n_classes, target_shape) == want


def test_n_outputs_needs_classes_and_a_known_task():
    with pytest.raises(ValueError, match="number of classes"):
        n_outputs("multiclass")
    with pytest.raises(ValueError, match="unknown"):
        n_outputs("ranking", 3)
