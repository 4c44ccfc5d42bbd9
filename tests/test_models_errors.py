"""Invalid specs and mismatched losses: ValueError naming the field path, value and choices."""

from __future__ import annotations

import re

import pytest

from optimlab.models import build_model, get_loss, initialize

MLP = {"type": "mlp", "hidden": [16, 8]}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({**MLP, "activation": "relu6"},
         "model.activation='relu6' is unknown; choose one of identity, sigmoid, tanh, relu"),
        ({**MLP, "activation": ["relu", "bogus"]}, "model.activation[1]='bogus' is unknown"),
        ({**MLP, "activation": ["relu"]}, "model.activation has 1 entries but there are 2"),
        ({**MLP, "activation": "leaky_relu:abc"}, "'abc' is not a number"),
        ({**MLP, "activation": "relu:0.1"}, "relu takes no parameter"),
        ({**MLP, "activation": {"name": "leaky_relu", "beta": 1}},
         "model.activation.beta is not a parameter of activation 'leaky_relu'; its parameters: "
         "alpha"),
        ({**MLP, "activation": {"name": "gelu", "approximate": "fast"}},
         "model.activation.approximate='fast' is not allowed"),
        ({**MLP, "init": "he_wrong"}, "model.init='he_wrong' is unknown; choose one of auto"),
        ({**MLP, "init": "normal:-1"}, "model.init.std=-1.0 is out of range"),
        ({**MLP, "init": {"name": "he_normal", "mode": "fan_avg"}}, "model.init.mode='fan_avg'"),
        ({"type": "mlp", "hidden": [16, -4]}, "model.hidden[1]=-4: must be a positive integer"),
        ({"type": "mlp", "hidden": [2.5]}, "model.hidden[0]=2.5: must be a positive integer"),
        ({"type": "mlp", "hidden": "64"}, "model.hidden='64': must be a list"),
        ({**MLP, "dropout": 1.0}, "model.dropout=1.0 is out of range; expected a value in [0, 1)"),
        ({**MLP, "dropout": [0.1, 0.2, 0.3]}, "model.dropout has 3 entries but there are 2"),
        ({**MLP, "dropout": [0.1, -0.2]}, "model.dropout[1]=-0.2"),
        ({**MLP, "norm": "instance"},
         "model.norm='instance' is unknown; choose one of none, batch, layer, group"),
        ({"hidden": [30], "norm": "group"}, "model.groups=8 does not divide model.hidden[0]=30"),
        ({**MLP, "bias_init": "small"}, "model.bias_init='small' is not a number"),
        ({**MLP, "hiden": [3]}, "model.hiden is not a field of a 'mlp' model; its fields: type"),
        ({"type": "rnn"}, "model.type='rnn' is unknown; choose one of mlp, cnn, linear"),
        ({"type": "linear", "hidden": [3]}, "model.hidden is not a field of a 'linear' model"),
        ({"type": "cnn", "channels": [0]}, "model.channels[0]=0: must be a positive integer"),
        ({"type": "cnn", "pool": "median"}, "model.pool='median' is unknown"),
        ({"type": "cnn", "kernel_size": -3}, "model.kernel_size=-3"),
        (42, "model=42 must be a model type"),
    ],
)
def test_invalid_spec(spec, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        build_model(spec, (1, 8, 8), 3)


def test_path_prefix_is_configurable():
    with pytest.raises(ValueError, match=re.escape("trial.model.hidden[0]=-1")):
        build_model({"hidden": [-1]}, 4, 2, path="trial.model")


def test_bad_inputs_and_outputs():
    with pytest.raises(ValueError, match=r"a cnn needs the image shape \(C, H, W\)"):
        build_model("cnn", 64, 10)
    with pytest.raises(ValueError, match="in_features=0: must be a positive integer"):
        build_model("mlp", 0, 10)
    with pytest.raises(ValueError, match="n_outputs=3 but a binary model gives 1 logit"):
        build_model("mlp", 4, 3, task="binary")
    with pytest.raises(ValueError, match="n_outputs=1 but a multiclass model"):
        build_model("mlp", 4, 1, task="multiclass")
    with pytest.raises(ValueError, match="task='ranking' is unknown"):
        build_model("mlp", 4, 1, task="ranking")
    with pytest.raises(ValueError, match="seed=-1"):
        build_model("mlp", 4, 1, seed=-1)


def test_initialize_errors():
    import torch

    with pytest.raises(ValueError, match="init='glorot' is unknown"):
        initialize(torch.nn.Linear(2, 2), "glorot")
    with pytest.raises(ValueError, match="bias_init='x' is not a number"):
        initialize(torch.nn.Linear(2, 2), "zeros", bias_init="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "task", "fits"),
    [
        ("ce", "regression", "losses that fit regression: mse, mae, huber, cosine"),
        ("mse", "multiclass", "losses that fit multiclass: ce, kl_div"),
        ("mse", "binary", "losses that fit binary: bce, hinge"),
        ("hinge", "regression", "losses that fit regression"),
        ("kl_div", "binary", "losses that fit binary"),
    ],
)
def test_loss_does_not_fit_task(name, task, fits):
    with pytest.raises(ValueError) as err:
        get_loss(name, task)
    msg = str(err.value)
    assert f"loss={name!r}" in msg and f"task {task!r}" in msg and fits in msg


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss='focal' is unknown; choose one of mse, mae"):
        get_loss("focal", "binary")
    with pytest.raises(ValueError, match=re.escape("loss.delta=0 is out of range; expected a")):
        get_loss({"name": "huber", "delta": 0}, "regression")
    with pytest.raises(ValueError, match=re.escape("train.loss='nope'")):
        get_loss("nope", "binary", path="train.loss")
