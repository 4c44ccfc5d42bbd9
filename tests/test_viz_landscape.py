"""Loss landscapes (optimlab.train.landscape, drawn by optimlab.viz.landscape): line, 2-D slice
(vectorized vs a naive loop), filter normalization, path PCA, the sharpness proxy, the figures
and ``optimlab landscape``."""

from __future__ import annotations

import copy
import json
import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import vector_to_parameters

from optimlab.cli import main
from optimlab.models import build_model
from optimlab.train.landscape import (
    TrajectoryRecorder,
    flatten_params,
    line_loss,
    random_directions,
    sharpness,
    slice_2d,
    trajectory_pca,
    unflatten,
)
from optimlab.viz.landscape import plot_line, plot_slice


def tiny_mlp(seed: int = 0, **spec: object) -> nn.Module:
    return build_model({"type": "mlp", "hidden": [8], **spec}, 5, 3, task="multiclass",
                       seed=seed)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)


_COPIES: dict[int, tuple[nn.Module, nn.Module]] = {}   # id → (model kept alive, its copy)


def reference_loss(model: nn.Module, theta: torch.Tensor, X: torch.Tensor,
                   y: torch.Tensor) -> float:
    """Independent reference: load the weights into a copy of the model (its own buffers),
    eval mode, one plain forward pass over all samples."""
    if id(model) not in _COPIES:
        _COPIES[id(model)] = (model, copy.deepcopy(model))
    net = _COPIES[id(model)][1]
    vector_to_parameters(theta, net.parameters())
    net.eval()
    with torch.no_grad():
        return float(F.cross_entropy(net(X), y))


def bn_dropout_mlp(X: torch.Tensor) -> nn.Module:
    """A BatchNorm + dropout MLP with non-trivial running statistics, left in train mode."""
    net = build_model({"type": "mlp", "hidden": [8, 6], "norm": "batch", "dropout": 0.3}, 5, 3,
                      task="multiclass", seed=3)
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(X * 2 + 1)
    return net


# -- line ----------------------------------------------------------------------------------
def test_line_loss_endpoints_equal_the_loaded_models(data):
    X, y = data
    model = tiny_mlp(0)
    theta0, theta1 = flatten_params(tiny_mlp(1)), flatten_params(model)
    alphas, losses = line_loss(model, F.cross_entropy, X, y, theta0, theta1)
    assert len(alphas) == len(losses) == 51
    assert alphas[0] == pytest.approx(-0.25) and alphas[-1] == pytest.approx(1.25)
    for alpha, theta in ((0.0, theta0), (1.0, theta1)):
        got = float(losses[alphas == alpha][0])
        assert got == pytest.approx(reference_loss(model, theta, X, y), abs=1e-6)
    _, mid = line_loss(model, F.cross_entropy, X, y, theta0, theta1, points=5, extend=(0, 1))
    assert float(mid[2]) == pytest.approx(reference_loss(model, (theta0 + theta1) / 2, X, y),
                                          abs=1e-6)


def test_line_loss_accepts_state_dicts_and_checks_sizes(data):
    X, y = data
    model = tiny_mlp(0)
    _, l1 = line_loss(model, F.cross_entropy, X, y, tiny_mlp(1).state_dict(), model, points=7)
    _, l2 = line_loss(model, F.cross_entropy, X, y, flatten_params(tiny_mlp(1)),
                       flatten_params(model), points=7)
    torch.testing.assert_close(l1, l2)
    with pytest.raises(ValueError, match="shape"):
        line_loss(model, F.cross_entropy, X, y, torch.zeros(3), flatten_params(model))
    with pytest.raises(ValueError, match="extend"):
        line_loss(model, F.cross_entropy, X, y, model, model, extend=(1.0, 0.0))


# -- 2-D slice -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp-batchnorm-dropout", "cnn-batchnorm"])
def test_vectorized_slice_equals_naive_loop(data, kind):
    X, y = data
    if kind.startswith("mlp"):
        model = bn_dropout_mlp(X)
    else:
        X = torch.cat([X, X[:, :4] ** 2], dim=1)[:, :9]          # 40 images of 1 × 3 × 3
        model = build_model({"type": "cnn", "channels": [3], "hidden": [5], "norm": "batch"},
                            (1, 3, 3), 3, task="multiclass", seed=0)
        with torch.no_grad():
            model(X * 3 - 1)                                       # running statistics ≠ 0, 1
    before = flatten_params(model)
    d1, d2 = random_directions(model, seed=1)
    a, b, L = slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=7, span=0.8)
    assert L.shape == (7, 7)
    expect = torch.empty(7, 7, dtype=torch.float64)
    for i in range(7):
        for j in range(7):
            expect[i, j] = reference_loss(model, before + float(a[j]) * d1 + float(b[i]) * d2,
                                          X, y)
    torch.testing.assert_close(L, expect, atol=1e-5, rtol=0)
    assert model.training, "the model's mode is restored"
    torch.testing.assert_close(flatten_params(model), before)   # weights untouched
    # uneven chunks of grid points, batches of samples and the one-point-at-a-time path agree
    for kwargs in ({"chunk_size": 5}, {"batch_size": 16}, {"vectorize": False}):
        _, _, L2 = slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=7, span=0.8, **kwargs)
        torch.testing.assert_close(L2, expect, atol=1e-5, rtol=0)


def test_slice_box_and_bad_arguments(data):
    X, y = data
    model = tiny_mlp(0)
    d1, d2 = random_directions(model, seed=0)
    a, b, L = slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=3, span=(-1.0, 2.0, 0.0, 0.5))
    assert a.tolist() == [-1.0, 0.5, 2.0] and b.tolist() == [0.0, 0.25, 0.5]
    assert float(L[0, 1]) == pytest.approx(
        reference_loss(model, flatten_params(model) + 0.5 * d1, X, y), abs=1e-6)
    with pytest.raises(ValueError, match="grid"):
        slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=1)
    with pytest.raises(ValueError, match="span"):
        slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=3, span=0.0)


# -- filter normalization --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_filter_normalization_matches_each_filter_norm(kind):
    if kind == "mlp":
        model = bn_dropout_mlp(torch.randn(8, 5))
    else:
        model = build_model({"type": "cnn", "channels": [4], "hidden": [6], "norm": "batch"},
                            (1, 6, 6), 3, task="multiclass", seed=0)
    weights = dict(model.named_parameters())
    d1, d2 = random_directions(model, seed=0)
    assert not torch.equal(d1, d2)
    for d in (d1, d2):
        for name, part in unflatten(model, d).items():
            w = weights[name].detach()
            if w.ndim >= 2:   # Linear rows / Conv filters: one norm per output unit / channel
                torch.testing.assert_close(
                    torch.linalg.vector_norm(part.reshape(len(part), -1), dim=1),
                    torch.linalg.vector_norm(w.reshape(len(w), -1), dim=1), rtol=1e-5, atol=0)
            else:             # biases and BatchNorm scale / shift are not perturbed
                assert torch.count_nonzero(part) == 0, name
    again, _ = random_directions(model, seed=0)
    torch.testing.assert_close(again, d1)
    copied, _ = random_directions(model, seed=0, bias_bn="weights")
    for name, part in unflatten(model, copied).items():
        if part.ndim <= 1:
            torch.testing.assert_close(part, weights[name].detach())
    raw, _ = random_directions(model, seed=0, filter_norm=False)
    assert torch.count_nonzero(raw) == raw.numel()


# -- trajectory PCA --------------------------------------------------------------------------
def test_trajectory_pca_of_a_planar_path():
    g = torch.Generator().manual_seed(0)
    final = torch.randn(50, generator=g)
    u, v = torch.randn(50, generator=g), torch.randn(50, generator=g)   # not orthonormal
    t = torch.linspace(1, 0, 30)
    c1, c2 = 3 * t, torch.sin(4 * t) * t                                 # ends at (0, 0)
    path = final + c1[:, None] * u + c2[:, None] * v
    coords, dirs, explained = trajectory_pca(list(path))
    assert coords.shape == (30, 2) and dirs.shape == (2, 50) and explained.shape == (2,)
    assert float(explained.sum()) == pytest.approx(1.0, abs=1e-6)
    assert explained[0] >= explained[1] > 0
    torch.testing.assert_close(dirs @ dirs.T, torch.eye(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(final + coords @ dirs, path, atol=1e-4, rtol=0)
    torch.testing.assert_close(coords[-1], torch.zeros(2), atol=1e-5, rtol=0)  # final = origin
    assert (coords[0] <= 0).all()
    coords_m, dirs_m, _ = trajectory_pca(path, center="mean")
    torch.testing.assert_close(path.mean(0) + coords_m @ dirs_m, path, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="T ≥ 2"):
        trajectory_pca(path[:1])


def test_recorder_keeps_start_and_end_and_path_lies_on_the_slice(data):
    from optimlab.data import Dataset
    from optimlab.train import Trainer

    X, y = data
    model = tiny_mlp(0)
    start = flatten_params(model)
    rec = TrajectoryRecorder(every=3)
    trainer = Trainer(model, optimizer="sgd", lr=0.1, callbacks=[rec], seed=0, progress=False)
    trainer.fit(Dataset(X, y, task="multiclass", n_classes=3), epochs=2, batch_size=8)
    assert rec.steps == [0, 3, 6, 9, 10]
    torch.testing.assert_close(rec.weights[0], start)
    torch.testing.assert_close(rec.weights[-1], flatten_params(model))
    coords, dirs, _ = trajectory_pca(rec.weights)
    _, _, L = slice_2d(model, F.cross_entropy, X, y, dirs[0], dirs[1], grid=3,
                       span=(float(coords[0, 0]), 0.0, float(coords[0, 1]), 0.0))
    assert float(L[-1, -1]) == pytest.approx(reference_loss(model, rec.weights[-1], X, y),
                                             abs=1e-6)   # the end of the path is the origin
    projected_start = rec.weights[-1] + coords[0] @ dirs
    assert float(L[0, 0]) == pytest.approx(reference_loss(model, projected_start, X, y),
                                           abs=1e-5)


# -- sharpness -------------------------------------------------------------------------------
def _linear_minimum() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X, w = torch.randn(64, 4, generator=g), torch.randn(1, 4, generator=g)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(w)
        model.bias.zero_()
    return model, X, X @ w.T   # the weights sit exactly at the minimum (loss 0)


def test_sharper_minimum_has_larger_sharpness():
    model, X, y = _linear_minimum()
    flat = sharpness(model, F.mse_loss, X, y, radius=0.1, n_directions=6)
    sharp = sharpness(model, lambda o, t: 10 * F.mse_loss(o, t), X, y, radius=0.1,
                      n_directions=6)
    assert flat["loss"] == pytest.approx(0.0, abs=1e-10)
    assert flat["sharpness"] > 0
    assert sharp["sharpness"] == pytest.approx(10 * flat["sharpness"], rel=1e-5)
    wider = sharpness(model, F.mse_loss, X, y, radius=0.2, n_directions=6)
    assert wider["sharpness"] == pytest.approx(4 * flat["sharpness"], rel=1e-4)  # quadratic: r²


def test_filter_normalized_sharpness_ignores_a_function_preserving_rescale(data):
    X, y = data
    model = tiny_mlp(0)
    scaled = copy.deepcopy(model)
    with torch.no_grad():   # ReLU: c·W₁, c·b₁ and W₂/c compute the same function
        scaled.linear0.weight.mul_(4.0)
        scaled.linear0.bias.mul_(4.0)
        scaled.output.weight.div_(4.0)
    torch.testing.assert_close(scaled(X), model(X), atol=1e-5, rtol=1e-5)
    s1 = sharpness(model, F.cross_entropy, X, y, radius=0.3)["sharpness"]
    s2 = sharpness(scaled, F.cross_entropy, X, y, radius=0.3)["sharpness"]
    assert s2 == pytest.approx(s1, rel=1e-4)


# -- plots -----------------------------------------------------------------------------------
def test_plots_have_labels(data):
    import matplotlib.pyplot as plt

    X, y = data
    model = tiny_mlp(0)
    d1, d2 = random_directions(model, seed=0)
    a, b, L = slice_2d(model, F.cross_entropy, X, y, d1, d2, grid=5)
    fig = plot_slice(a, b, L, path=torch.tensor([[-0.5, -0.5], [-0.2, 0.1], [0.0, 0.0]]))
    ax, cbar = fig.axes
    assert "direction 1" in ax.get_xlabel() and "direction 2" in ax.get_ylabel()
    assert cbar.get_ylabel().startswith("loss")
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"training path",
                                                                 "start (init)"}
    plt.close(fig)
    alphas, losses = line_loss(model, F.cross_entropy, X, y, tiny_mlp(1), model, points=9)
    fig = plot_line(alphas, {"train": losses})
    assert fig.axes[0].get_ylabel().startswith("loss") and fig.axes[0].get_title()
    plt.close(fig)


# -- CLI -------------------------------------------------------------------------------------
def test_cli_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "figs"
    code = main(["landscape", "--grid", "5", "--epochs", "1", "--out", str(out),
                 "--batch-size", "64", "--compare-batch-sizes", "64", "512", "--json"])
    assert code == 0
    for name in ("landscape_line.png", "landscape_slice.png", "sharp_vs_flat.png"):
        assert (out / name).stat().st_size > 10_000, name
    report = json.loads(capsys.readouterr().out)
    nums = report["numbers"]
    assert math.isfinite(nums["loss_center"]) and math.isfinite(nums["sharpness"])
    assert nums["compare_small"]["batch_size"] == 64
    assert nums["compare_large"]["batch_size"] == 512


def test_cli_checkpoint_draws_only_the_slice(tmp_path, capsys, digits_split):
    from optimlab.train import Trainer
    from optimlab.train.callbacks import ModelCheckpoint

    split = digits_split
    Trainer({"type": "mlp", "hidden": [16]}, callbacks=[ModelCheckpoint(tmp_path / "ck")],
            seed=0, progress=False).fit(split.train, split.val, epochs=1)
    out = tmp_path / "figs"
    code = main(["landscape", "--checkpoint", str(tmp_path / "ck" / "last.pt"), "--grid", "4",
                 "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["landscape_slice.png"]
    assert "landscape_slice.png" in capsys.readouterr().out
    assert main(["landscape", "--checkpoint", str(tmp_path / "ck" / "last.pt"), "--model",
                 '{"type": "mlp", "hidden": [7]}', "--grid", "4", "--out", str(out)]) == 2


@pytest.mark.parametrize("argv, words", [
    (["--grid", "0"], "--grid"),
    (["--span", "-1"], "--span"),
    (["--compare-batch-sizes", "64", "64"], "--compare-batch-sizes"),
    (["--checkpoint", "/nonexistent/last.pt"], "no checkpoint"),
    (["--dataset", "nope"], "unknown dataset"),
])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, argv, words):
    assert main(["landscape", "--out", str(tmp_path), *argv]) == 2
    assert words in capsys.readouterr().err


# -- timing (not run by default) -----------------------------------------------------------
@pytest.mark.slow
def test_51x51_digits_slice_is_fast():
    from optimlab.data import load

    ds = load("digits")
    X = (ds.X - ds.X.mean(0)) / ds.X.std(0).clamp_min(1e-6)
    model = build_model({"type": "mlp", "hidden": [128]}, 64, 10, task="multiclass", seed=0)
    d1, d2 = random_directions(model, seed=0)
    start = time.perf_counter()
    _, _, L = slice_2d(model, F.cross_entropy, X, ds.y, d1, d2, grid=51, span=1.0)
    seconds = time.perf_counter() - start
    print(f"51×51 slice, digits MLP 64-128-10, {len(X)} samples: {seconds:.2f} s")
    assert L.shape == (51, 51) and torch.isfinite(L).all()
    assert seconds < 60


def test_a_trial_from_a_study_is_trained_again_to_the_same_weights(tmp_path, capsys) -> None:
    from optimlab.lab.replay import replay_trial
    from optimlab.lab.runner import run_study
    from optimlab.lab.spec import parse_spec
    from optimlab.lab.store import Store
    from optimlab.viz.landscape import trial_landscape

    spec = parse_spec({"name": "land", "seeds": 1, "data": {"dataset": "iris", "val": 0.2},
                       "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 3,
                                 "batch_size": 16, "lr": 0.05},
                       "axes": {"optimizer": ["sgd", "adam"]}})
    run_study(spec, tmp_path / "s.db")
    with Store(tmp_path / "s.db", create=False) as store:
        rec = TrajectoryRecorder()
        replay = replay_trial(store, "land", "adam", 0, [rec])
        assert replay.reproduces and replay.stored == replay.replayed
        assert replay.row.label == "adam" and len(rec.weights) == replay.trainer.state.step + 1
        result = trial_landscape(store, None, "adam", 0, grid=5)
        assert result.numbers["reproduces_store"] is True
        assert result.numbers["study_trial"] == "adam (seed 0)"
        assert sorted(result.figures) == ["landscape_line", "landscape_slice"]
        result.close()
        with pytest.raises(ValueError, match="no finished trial 'nadam'"):
            replay_trial(store, None, "nadam", 0)
    code = main(["landscape", "--db", str(tmp_path / "s.db"), "--config", "adam", "--grid", "5",
                 "--out", str(tmp_path / "out"), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["numbers"]["reproduces_store"]
    assert (tmp_path / "out" / "landscape_slice.png").stat().st_size > 0
