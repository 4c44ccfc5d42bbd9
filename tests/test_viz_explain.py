"""optimlab explain: every topic's key numbers against references computed here by hand
(plain-Python recurrences, closed forms, torch's own schedulers), and the CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optimlab.cli import main
from optimlab.viz import explain
from optimlab.viz.explain.base import NotesCheck, TopicResult, printed_tolerance

PNG = b"\x89PNG\r\n\x1a\n"


class _Results:
    """Each topic computed once per test module (the slow part), lazily."""

    def __init__(self, out: Path) -> None:
        self.out, self.cache = out, {}

    def __getitem__(self, name: str) -> TopicResult:
        if name not in self.cache:
            self.cache[name] = explain.run(name, self.out)
        return self.cache[name]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> _Results:
    return _Results(tmp_path_factory.mktemp("explain"))


def _common(r: TopicResult, name: str) -> None:
    assert r.name == name and r.title and r.rows and r.columns
    assert all(len(row) == len(r.columns) for row in r.rows)
    for t in r.extra_tables:
        assert all(len(row) == len(t.columns) for row in t.rows)
    assert r.figures and all(p.suffix == ".png" and p.read_bytes()[:8] == PNG
                             for p in r.figures)
    json.dumps(r.to_dict())  # JSON-ready


# -- helpers --------------------------------------------------------------------------------------
def _ewa(xs: list[float], beta: float) -> list[float]:
    v, out = 0.0, []
    for x in xs:
        v = beta * v + (1 - beta) * x
        out.append(v)
    return out


def test_printed_tolerance_and_check() -> None:
    assert printed_tolerance("9.40701") == pytest.approx(1e-5)
    assert printed_tolerance("4.4e-6") == pytest.approx(1e-7)
    assert printed_tolerance("1000") == 1.0 and printed_tolerance("0") == 0.0
    c = NotesCheck("src")
    assert c.series("x", ["a", "b"], [1.8, 3.92], ["1.8", "3.92"])
    assert not c.series("y", ["a"], [9.207012], ["9.40701"])
    assert c.differences == ["src — y: a notes 9.40701, computed 9.207012"]
    assert not c.value("z", 0.0005, "0")


def test_registry_lists_every_topic_and_rejects_unknown(tmp_path: Path) -> None:
    assert list(explain.available()) == ["ewa", "momentum", "rmsprop", "adam", "minibatch",
                                         "schedules", "init", "dropout", "batchnorm",
                                         "lr-find"]
    with pytest.raises(ValueError, match=r"unknown topic 'nope'.*ewa.*batchnorm"):
        explain.run("nope", tmp_path)


# -- ewa ------------------------------------------------------------------------------------------
THETA = [18, 23, 19, 20, 17, 21, 19, 18, 22, 20]


def test_ewa(results: _Results) -> None:
    r = results["ewa"]
    _common(r, "ewa")
    k = r.key_numbers
    assert k["v_beta_0.9"][:5] == pytest.approx([1.8, 3.92, 5.428, 6.8852, 7.89668], rel=1e-12)
    for beta in (0.9, 0.98):
        hand = _ewa(THETA, beta)
        assert k[f"v_beta_{beta}"] == pytest.approx(hand, rel=1e-12)
        assert k[f"v_hat_beta_{beta}"] == pytest.approx(
            [v / (1 - beta**t) for t, v in enumerate(hand, 1)], rel=1e-12)
    assert k["v_hat_beta_0.9"][0] == 18.0  # exactly
    assert k["running_mean"][-1] == pytest.approx(19.7)
    for beta, rule in k["rule_of_thumb"].items():
        b, n = float(beta), rule["n"]
        assert n == round(1 / (1 - b))
        assert rule["weight_last_n"] == pytest.approx(1 - b**n, abs=1e-9)
        assert rule["weight_last_n"] == pytest.approx(1 - 1 / math.e, abs=0.02)
    assert k["correction_factors"]["0.999"][3] == pytest.approx(1 / (1 - 0.999**100))
    # the notes' β = 0.9 table goes wrong at day 6 (9.40701 printed, 9.207012 computed)
    assert any("9.40701" in d and "9.207012" in d for d in r.notes_differences)


# -- momentum -----------------------------------------------------------------------------------
G = [0.08, 0.09, 0.07, 0.10, -0.02, 0.08, 0.09, 0.08, 0.11, 0.07]


def _momentum(lr: float, beta: float, ewa_form: bool) -> tuple[list[float], list[float]]:
    w, v, ws, vs = 0.5, 0.0, [], []
    for g in G:
        v = beta * v + ((1 - beta) * g if ewa_form else g)
        w -= lr * v
        ws.append(w)
        vs.append(v)
    return ws, vs


def test_momentum(results: _Results) -> None:
    r = results["momentum"]
    _common(r, "momentum")
    k = r.key_numbers
    gd = list(np.cumsum([-0.1 * g for g in G]) + 0.5)
    assert k["gd_path"] == pytest.approx(gd, abs=1e-15)
    ewa_w, ewa_v = _momentum(0.1, 0.9, True)
    hb_w, hb_v = _momentum(0.1, 0.9, False)
    assert k["ewa_path"] == pytest.approx(ewa_w, abs=1e-15)
    assert k["ewa_velocity"] == pytest.approx(ewa_v, abs=1e-15)
    assert k["heavy_ball_path"] == pytest.approx(hb_w, abs=1e-15)
    assert k["heavy_ball_velocity"] == pytest.approx(hb_v, abs=1e-15)
    # heavy ball with α·(1−β) is the EWA path with α
    assert k["heavy_ball_scaled_path"] == pytest.approx(ewa_w, abs=1e-15)
    assert k["max_diff_heavy_ball_scaled_vs_ewa"] < 1e-15
    assert hb_w[-1] == pytest.approx(0.19680389, abs=1e-8)
    # the notes' ravine: constant gradient 0.01, 100 steps, α = 1
    far = sum(0.01 * (1 - 0.9**t) / 0.1 for t in range(1, 101))
    assert k["notes_ravine_w1_moved"]["heavy_ball"] == pytest.approx(far, rel=1e-12)
    assert k["notes_ravine_w1_moved"]["gd"] == pytest.approx(1.0, rel=1e-12)
    final = {name: np.linalg.norm(w) for name, w in k["ravine_final"].items()}
    gd_name = next(n for n in final if n.startswith("GD"))
    assert all(final[n] < final[gd_name] / 10 for n in final if n != gd_name)


# -- rmsprop ------------------------------------------------------------------------------------
G1 = [0.002, 0.0018, 0.0021, 0.0019, 0.0020, 0.0022, 0.0018, 0.0019, 0.0021, 0.0020]
G2 = [0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0]


def _rmsprop(grads: list[float], inside: bool, corrected: bool, lr: float = 1e-3,
             beta: float = 0.999, eps: float = 1e-8) -> tuple[list[float], list[float]]:
    s, w, effs, ws = 0.0, 0.5, [], []
    for t, g in enumerate(grads, 1):
        s = beta * s + (1 - beta) * g * g
        sh = s / (1 - beta**t) if corrected else s
        eff = lr / (math.sqrt(sh + eps) if inside else math.sqrt(sh) + eps)
        w -= eff * g
        effs.append(eff)
        ws.append(w)
    return effs, ws


def test_rmsprop(results: _Results) -> None:
    r = results["rmsprop"]
    _common(r, "rmsprop")
    k = r.key_numbers
    for key, inside, corrected in (("outside", False, False), ("inside", True, False),
                                   ("corrected", False, True)):
        for i, grads in enumerate((G1, G2)):
            effs, ws = _rmsprop(grads, inside, corrected)
            assert k[f"{key}_eff"][i] == pytest.approx(effs, rel=1e-9)
            assert k[f"{key}_w"][i] == pytest.approx(ws, rel=1e-12)
    # small steady gradients get a large rate, rare large ones a small rate
    assert k["outside_eff"][0][2] > 500 * k["outside_eff"][1][2]
    # ε inside vs outside at batch 1
    assert k["outside_eff"][0][0] == pytest.approx(1e-3 / (math.sqrt(4e-9) + 1e-8))
    assert k["inside_eff"][0][0] == pytest.approx(1e-3 / math.sqrt(4e-9 + 1e-8))
    assert k["outside_eff"][1][0] == pytest.approx(1e5) and k["inside_eff"][1][0] == 10.0
    first = k["first_example_beta_0.9"]
    assert first["w1"] == pytest.approx(0.5 - 0.1 / (math.sqrt(4e-7) + 1e-8) * 0.002)


# -- adam -----------------------------------------------------------------------------------------
def _adam(grads: list[float], b1: float = 0.9, b2: float = 0.999, lr: float = 1e-3,
          eps: float = 1e-8) -> dict[str, list[float]]:
    m = v = 0.0
    w = 0.5
    out: dict[str, list[float]] = {k: [] for k in ("m", "v", "m_hat", "v_hat", "step", "w")}
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = m / (1 - b1**t), v / (1 - b2**t)
        step = lr * mh / (math.sqrt(vh) + eps)
        w -= step
        for key, val in zip(out, (m, v, mh, vh, step, w), strict=True):
            out[key].append(val)
    return out


def test_adam(results: _Results) -> None:
    r = results["adam"]
    _common(r, "adam")
    k = r.key_numbers
    for i, grads in enumerate((G1, G2)):
        hand = _adam(grads)
        for key in ("m", "v", "m_hat", "v_hat", "w"):
            assert k[key][i] == pytest.approx(hand[key], rel=1e-9, abs=1e-15)
        assert k["step"][i] == pytest.approx(hand["step"], rel=1e-6, abs=1e-15)
    assert k["first_step"] == pytest.approx(1e-3, rel=1e-5)  # ≈ α
    # without bias correction: α·m₁/(√v₁ + ε), m₁ = (1−β₁)g, v₁ = (1−β₂)g² — about 3.16·α
    g = 0.002
    assert k["first_step_no_bias_correction"] == pytest.approx(
        1e-3 * 0.1 * g / (math.sqrt(1e-3) * g + 1e-8), rel=1e-9)
    assert all(s > 3e-4 for s in k["step"][1][2:])  # w₂ moves at every batch after the spike
    assert k["final_w"]["adam"][1] == pytest.approx(0.495986, abs=1e-6)


# -- minibatch ---------------------------------------------------------------------------------
def test_minibatch(results: _Results) -> None:
    r = results["minibatch"]
    _common(r, "minibatch")
    k = r.key_numbers
    n, s2 = k["n"], k["sigma2"]
    sizes = k["batch_sizes"]
    assert sizes[0] == 1 and sizes[-1] == n == 1797
    for b, meas, meas_r in zip(sizes, k["measured_without_replacement"],
                               k["measured_with_replacement"], strict=True):
        fpc = s2 / b * (n - b) / (n - 1)
        if b < n:
            assert meas == pytest.approx(fpc, rel=0.1), b
        else:
            assert meas < 1e-20  # the full batch has no noise
        assert meas_r == pytest.approx(s2 / b, rel=0.1), b
    assert k["follows"] == "σ²/B·(N−B)/(N−1)"
    assert k["per_sample_mean_vs_autograd"] < 1e-12


def test_minibatch_per_sample_gradients_match_a_plain_loop() -> None:
    from optimlab.data import load
    from optimlab.models import build_model
    from optimlab.viz.explain.minibatch import per_sample_gradients

    g, full, _ = per_sample_gradients()
    ds = load("digits")
    model = build_model({"type": "mlp", "hidden": [16], "activation": "tanh"}, 64, 10,
                        seed=0).double()
    for i in (0, 17, 1796):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model((ds.X[i:i + 1] / 16).double()),
                                          ds.y[i:i + 1].long()).backward()
        row = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.allclose(g[i], row, atol=1e-12)
    assert torch.allclose(g.mean(0), full, atol=1e-12)


# -- schedules -----------------------------------------------------------------------------------
def _torch_lrs(make: Any, epochs: int = 100) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = make(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules(results: _Results) -> None:
    r = results["schedules"]
    _common(r, "schedules")
    lr = r.key_numbers["lr"]
    e = np.arange(100)
    a0, amin = 1e-3, 1e-6
    expected = {
        "inverse time α₀/(1+0.1·e)": a0 / (1 + 0.1 * e),
        "exponential α₀·0.95^e": a0 * 0.95**e,
        "step ×0.1 every 30": a0 * 0.1 ** (e // 30),
        "cosine (T = 100)": amin + (a0 - amin) * (1 + np.cos(np.pi * e / 100)) / 2,
    }

    def notes_get_lr(epoch: int, total: int = 100, warm: int = 10) -> float:  # the notes' code
        if epoch < warm:
            return 0.001 * (epoch + 1) / warm
        progress = (epoch - warm) / (total - warm)
        return 1e-6 + (0.001 - 1e-6) * 0.5 * (1 + math.cos(math.pi * progress))

    expected["warmup 10 + cosine (notes' get_lr)"] = np.array([notes_get_lr(i) for i in e])
    lrs = torch.optim.lr_scheduler
    expected["SGDR (T₀ = 10, ×2)"] = np.array(_torch_lrs(
        lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-6)))
    expected["one-cycle (30 % up)"] = np.array(_torch_lrs(
        lambda o: lrs.OneCycleLR(o, max_lr=1e-3, total_steps=100, cycle_momentum=False)))
    assert set(lr) == set(expected)
    for name, want in expected.items():
        assert lr[name] == pytest.approx(list(want), rel=1e-9, abs=1e-15), name
    assert any("1.25e-06" in d for d in r.notes_differences)  # cosine at e = 99, not 1e-6


# -- init -----------------------------------------------------------------------------------------
def test_init(results: _Results) -> None:
    r = results["init"]
    _common(r, "init")
    std, grad = r.key_numbers["act_std"], r.key_numbers["grad_norm"]
    he = np.array(std["relu"]["He (normal)"])
    assert 0.5 < he[-1] / he[0] < 2 and np.all((he > he[0] / 2) & (he < he[0] * 2))
    small = np.array(std["sigmoid"]["small normal N(0, 0.01²)"])
    assert small[-1] < 0.6 * small[0]
    g = np.array(grad["sigmoid"]["small normal N(0, 0.01²)"])
    assert g[0] < 1e-6 * g[-1] and np.all(np.diff(g) > 0)  # vanishing toward the input
    assert np.array(std["tanh"]["small normal N(0, 0.01²)"])[-1] < 1e-6
    assert np.array(std["relu"]["large normal N(0, 1)"])[-1] > 1e6  # exploding
    for act in ("sigmoid", "tanh", "relu"):
        assert not any(std[act]["zeros"]) and not any(grad[act]["zeros"])
    assert r.key_numbers["he_weight_std"] == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    assert r.key_numbers["xavier_weight_std"] == pytest.approx(math.sqrt(2 / 512), rel=0.02)


# -- dropout ------------------------------------------------------------------------------------
def test_dropout(results: _Results) -> None:
    r = results["dropout"]
    _common(r, "dropout")
    for p, m in r.key_numbers["per_rate"].items():
        p = float(p)
        mean = m["mean_no_dropout"]
        assert m["mean_train"] == pytest.approx(mean, rel=0.01)
        assert m["mean_train_notes"] == pytest.approx(mean, rel=0.01)
        assert m["mean_train_plain"] == pytest.approx((1 - p) * mean, rel=0.01)
        assert m["mean_eval"] == mean and m["eval_equals_no_dropout"]
        assert m["fraction_dropped"] == pytest.approx(p, abs=0.005)
        assert m["second_moment_train"] == pytest.approx(m["second_moment_predicted"], rel=0.02)


def test_notes_dropout_layer_keeps_the_mean() -> None:
    from optimlab.viz.explain.dropout import notes_dropout

    x = torch.full((200_000,), 2.0)
    gen = torch.Generator().manual_seed(0)
    y = notes_dropout(x, 0.3, generator=gen)
    assert float((y == 0).float().mean()) == pytest.approx(0.3, abs=0.005)
    assert float(y.mean()) == pytest.approx(2.0, rel=0.01)
    assert torch.equal(notes_dropout(x, 0.3, training=False), x)


# -- batchnorm ----------------------------------------------------------------------------------
def test_batchnorm(results: _Results) -> None:
    r = results["batchnorm"]
    _common(r, "batchnorm")
    st = r.key_numbers["stats"]
    sizes = r.key_numbers["sizes"]
    n = 1797
    errs = [st[str(b)]["mean_err"] for b in sizes]
    assert all(a > b for a, b in itertools.pairwise(errs))  # shrinks with B
    for b in sizes:
        s = st[str(b)]
        assert s["mean_err"] == pytest.approx(math.sqrt((n - b) / (b * (n - 1))), rel=0.1)
        assert s["var_ratio"] == pytest.approx((b - 1) / b * n / (n - 1), rel=0.05)
        assert s["running_mean_err"] < s["mean_err"]
        assert s["spread_ln"] == 0.0 and s["spread_gn"] == 0.0
    spreads = [st[str(b)]["spread_bn"] for b in sizes]
    assert all(a > b for a, b in itertools.pairwise(spreads))
    one = r.key_numbers["batch_of_one"]
    assert one["batchnorm"].startswith("ValueError") and one["layernorm_ok"]
    typical = r.key_numbers["typical_standard_normal"]
    assert typical["2"]["sigma"] == pytest.approx(1 / math.sqrt(math.pi))
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((200_000, 32))
    assert typical["32"]["sigma"] == pytest.approx(sample.std(axis=1).mean(), rel=0.005)
    assert typical["32"]["abs_mean"] == pytest.approx(np.abs(sample.mean(axis=1)).mean(),
                                                      rel=0.01)


# -- the CLI -----------------------------------------------------------------------------------
# -- lr-find ------------------------------------------------------------------------------------
def test_lr_find(results: _Results) -> None:
    r = results["lr-find"]
    _common(r, "lr-find")
    k = r.key_numbers
    beta, lrs, losses = k["beta"], k["lrs"], k["losses"]
    assert lrs[0] == pytest.approx(1e-7) and lrs[1] / lrs[0] == pytest.approx(1e8 ** (1 / 99))
    v, hand, hat = 0.0, [], []
    for t, x in enumerate(losses, 1):  # the recurrence and its bias correction, by hand
        v = beta * v + (1 - beta) * x
        hand.append(v)
        hat.append(v / (1 - beta**t))
    assert k["uncorrected"] == pytest.approx(hand, rel=1e-9)
    assert k["smoothed"] == pytest.approx(hat, rel=1e-9)
    assert k["smoothed"][0] == pytest.approx(losses[0], rel=1e-12)  # not (1 − β)·ℓ₀
    skip = 10
    if k["diverged"] and "passed" in k["stop_reason"]:
        assert hat[-1] > k["diverge"] * min(hat[skip:])
    assert all(hat[i] <= k["diverge"] * min(hat[skip:i + 1]) for i in range(skip, len(hat) - 1))
    assert k["restored"] is True
    assert k["suggestions"]["minimum"] == pytest.approx(lrs[skip + int(np.argmin(hat[skip:]))]
                                                        / 10)
    assert k["steps_per_epoch"] == {str(b): math.ceil(k["train_rows"] / b)
                                    for b in (16, 32, 64, 128)}
    assert all(len(v) == 3 for v in k["sweep"].values()) and k["slope"]["n"] == 12
    assert any("find_lr runs one epoch" in d for d in r.notes_differences)


def test_cli_lists_topics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 0
    out = capsys.readouterr().out
    for name in explain.available():
        assert name in out


def test_cli_runs_a_topic_and_writes_its_png(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "ewa", "--out", str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "9.40701" in out and "9.207012" in out  # the notes' difference is stated
    assert (tmp_path / "figs" / "explain_ewa.png").read_bytes()[:8] == PNG


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "schedules", "--json", "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "schedules" and data["figures"]
    assert len(data["key_numbers"]["lr"]["cosine (T = 100)"]) == 100


def test_cli_rejects_an_unknown_topic(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown topic 'nope'" in err and "batchnorm" in err and "ewa" in err
    assert not list(tmp_path.iterdir())
