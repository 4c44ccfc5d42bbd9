"""Losses against hand computations in numpy, and target checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optimlab.models import check_targets, get_loss

RNG = np.random.default_rng(0)


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float64)


def _np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_bce_on_logits_is_sigmoid_plus_bce():
    z = RNG.normal(size=(8, 1)) * 2
    y = RNG.integers(0, 2, size=(8,)).astype(float)
    s = 1 / (1 + np.exp(-z[:, 0]))
    ref = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    got = get_loss("bce", "binary")(_t(z), _t(y))  # targets (N,) against outputs (N, 1)
    assert got.item() == pytest.approx(ref, rel=1e-12)
    soft = RNG.uniform(size=(8, 1))  # probability targets
    ref_soft = -np.mean(soft * np.log(1 / (1 + np.exp(-z))) + (1 - soft) * np.log(
        1 - 1 / (1 + np.exp(-z))))
    assert get_loss("binary_crossentropy", "binary")(_t(z), _t(soft)).item() == pytest.approx(
        ref_soft, rel=1e-12)


def test_bce_is_stable_for_extreme_logits():
    z = np.array([[-200.0], [200.0], [60.0]])
    y = np.array([1.0, 0.0, 1.0])
    # −log σ(z) = log(1 + e^(−z)),  −log(1 − σ(z)) = log(1 + e^z)
    ref = np.mean(y * np.logaddexp(0, -z[:, 0]) + (1 - y) * np.logaddexp(0, z[:, 0]))
    got = get_loss("bce", "binary")(_t(z), _t(y))
    assert torch.isfinite(got) and got.item() == pytest.approx(ref, rel=1e-12)


def test_ce_integer_onehot_and_probability_targets():
    z = RNG.normal(size=(6, 4))
    labels = np.array([0, 3, 1, 2, 3, 0])
    onehot = np.eye(4)[labels]
    ref = -np.mean(_np_log_softmax(z)[np.arange(6), labels])
    ce = get_loss("ce", "multiclass")
    by_label = ce(_t(z), torch.tensor(labels))
    assert by_label.item() == pytest.approx(ref, rel=1e-12)
    assert ce(_t(z), _t(onehot)).item() == pytest.approx(by_label.item(), rel=1e-12)
    assert ce(_t(z), _t(labels.astype(float))).item() == pytest.approx(ref, rel=1e-12)
    assert ce(_t(z), torch.tensor(labels).reshape(6, 1)).item() == pytest.approx(ref, rel=1e-12)
    p = RNG.dirichlet(np.ones(4), size=6)
    ref_p = -np.mean((p * _np_log_softmax(z)).sum(axis=1))
    assert get_loss("categorical_crossentropy", "multiclass")(_t(z), _t(p)).item() == \
        pytest.approx(ref_p, rel=1e-12)


def test_ce_label_smoothing():
    z = RNG.normal(size=(5, 3))
    labels = np.array([0, 1, 2, 2, 1])
    eps = 0.1
    y = (1 - eps) * np.eye(3)[labels] + eps / 3
    ref = -np.mean((y * _np_log_softmax(z)).sum(axis=1))
    assert get_loss("ce:0.1", "multiclass")(_t(z), torch.tensor(labels)).item() == \
        pytest.approx(ref, rel=1e-12)


def test_hinge_maps_01_labels_to_pm1():
    z = np.array([[2.0], [0.3], [-0.5], [-3.0], [0.9]])
    y01 = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    s = 2 * y01 - 1
    ref = np.mean(np.maximum(0, 1 - s * z[:, 0]))  # [0, 0.7, 1.5, 0, 1.9]
    assert ref == pytest.approx(4.1 / 5)
    hinge = get_loss("hinge", "binary")
    assert hinge(_t(z), _t(y01)).item() == pytest.approx(ref, rel=1e-12)
    assert hinge(_t(z), _t(s)).item() == pytest.approx(ref, rel=1e-12)


def test_huber_piecewise():
    z = np.array([0.0, 0.2, 1.0, -3.0])
    y = np.array([0.1, 0.0, 0.0, 0.0])
    d = 0.5
    r = np.abs(z - y)
    ref = np.mean(np.where(r <= d, 0.5 * r**2, d * (r - 0.5 * d)))
    assert get_loss("huber:0.5", "regression")(_t(z), _t(y)).item() == pytest.approx(ref)
    assert get_loss({"name": "huber", "delta": 0.5}, "regression")(_t(z), _t(y)).item() == \
        pytest.approx(ref)


def test_mse_mae_and_no_broadcast_trap():
    z = RNG.normal(size=(7, 1))
    y = RNG.normal(size=(7,))
    assert get_loss("mse", "regression")(_t(z), _t(y)).item() == pytest.approx(
        np.mean((z[:, 0] - y) ** 2), rel=1e-12)  # not the 7×7 broadcast
    assert get_loss("mean_absolute_error", "regression")(_t(z), _t(y)).item() == pytest.approx(
        np.mean(np.abs(z[:, 0] - y)), rel=1e-12)


def test_kl_div():
    z = RNG.normal(size=(4, 3))
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    logq = _np_log_softmax(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - logq), 0.0)  # 0·log 0 = 0
    ref = terms.sum(axis=1).mean()
    assert get_loss("kl_div", "multiclass")(_t(z), _t(p)).item() == pytest.approx(ref, rel=1e-12)
    # KL(p‖p) = 0: logits equal to log p give zero loss
    assert get_loss("kl", "multiclass")(_t(np.log(p[[0, 2]])), _t(p[[0, 2]])).item() == \
        pytest.approx(0.0, abs=1e-12)


def test_cosine():
    z = RNG.normal(size=(5, 3))
    y = RNG.normal(size=(5, 3))
    cos = (z * y).sum(1) / (np.linalg.norm(z, axis=1) * np.linalg.norm(y, axis=1))
    assert get_loss("cosine", "regression")(_t(z), _t(y)).item() == pytest.approx(
        np.mean(1 - cos), rel=1e-12)


def test_losses_have_gradients():
    z = torch.randn(4, 3, requires_grad=True)
    get_loss("ce", "multiclass")(z, torch.tensor([0, 1, 2, 1])).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # d/dz of mean CE = (softmax(z) − onehot) / N
    ref = (torch.softmax(z, 1) - torch.eye(3)[[0, 1, 2, 1]]) / 4
    assert torch.allclose(z.grad, ref, atol=1e-6)


@pytest.mark.parametrize(
    ("loss", "outputs", "targets", "match"),
    [
        ("ce", torch.zeros(4, 10), torch.eye(3)[[0, 1, 2, 0]],
         "model gives 10 outputs but the targets are one-hot/probabilities with 3 columns"),
        ("ce", torch.zeros(4, 3), torch.tensor([0, 1, 5, 2]), "labels 0..5 but the model gives 3"),
        ("ce", torch.zeros(4, 3), torch.tensor([0, -1, 1, 2]), r"labels -1..2"),
        ("ce", torch.zeros(4, 3), torch.tensor([0.0, 1.5, 1.0, 2.0]), "non-integers"),
        ("ce", torch.zeros(2, 3), torch.tensor([[0.5, 0.2, 0.2], [0.0, 1.0, 0.0]]),
         "row 0 sums to 0.9"),
        ("ce", torch.zeros(4, 1), torch.tensor([0, 1, 1, 0]), "K >= 2"),
        ("ce", torch.zeros(4, 3), torch.tensor([0, 1, 2]), "4 rows of outputs but the targets "
         "have 3 rows"),
        ("kl_div", torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]), "use ce"),
        ("bce", torch.zeros(4, 1), torch.tensor([0.0, 2.0, 1.0, 0.0]), r"in \[0, 1\]"),
        ("bce", torch.zeros(4, 5), torch.tensor([0, 1, 4, 2]), "for 5 classes use ce"),
        ("hinge", torch.zeros(3, 1), torch.tensor([0.0, 0.5, 1.0]), "labels 0/1"),
        ("mse", torch.zeros(4, 2), torch.zeros(4, 3), "2 outputs per row but the targets have 3"),
        ("mse", torch.zeros(2, 1), torch.tensor([1.0, float("nan")]), "NaN"),
        ("cosine", torch.zeros(4), torch.zeros(4), r"shape \(N, D\)"),
    ],
)
def test_check_targets_errors(loss, outputs, targets, match):
    with pytest.raises(ValueError, match=match):
        check_targets(loss, outputs, targets)


def test_check_targets_accepts_good_targets():
    check_targets("ce", torch.zeros(3, 4), torch.tensor([0, 3, 2]))
    check_targets("ce", torch.zeros(3, 4), torch.eye(4)[[0, 3, 2]], task="multiclass")
    check_targets("bce", torch.zeros(3, 1), torch.tensor([0, 1, 1]))
    check_targets("hinge", torch.zeros(3, 1), torch.tensor([-1.0, 1.0, 1.0]))
    check_targets("mse", torch.zeros(3, 1), torch.tensor([0.5, 2.0, -1.0]))
    with pytest.raises(ValueError, match="does not fit task 'regression'"):
        check_targets("ce", torch.zeros(3, 4), torch.tensor([0, 1, 2]), task="regression")


@pytest.mark.parametrize(("spec", "task", "outputs", "targets"), [
    ("ce", "multiclass", (4, 6, 5), lambda: torch.randint(0, 5, (4, 6))),
    ("ce:0.1", "multiclass", (4, 6, 5), lambda: torch.softmax(torch.randn(4, 6, 5), -1)),
    ("kl_div", "multiclass", (4, 6, 5), lambda: torch.softmax(torch.randn(4, 6, 5), -1)),
    ("bce", "binary", (4, 6, 1), lambda: torch.randint(0, 2, (4, 6)).double()),
    ("hinge", "binary", (4, 6, 1), lambda: torch.randint(0, 2, (4, 6, 1)).double()),
    ("mse", "regression", (4, 6, 3), lambda: torch.randn(4, 6, 3)),
    ("mae", "regression", (4, 6), lambda: torch.randn(4, 6)),
    ("huber:0.5", "regression", (4, 6, 2), lambda: torch.randn(4, 6, 2)),
    ("cosine", "regression", (4, 6, 3), lambda: torch.randn(4, 6, 3)),
])
def test_stacked_losses_are_each_batchs_loss(spec, task, outputs, targets):
    """S batches stacked along a leading dimension: one call gives each batch's own loss."""
    torch.manual_seed(0)
    loss = get_loss(spec, task)
    z = torch.randn(outputs, dtype=torch.float64) * 2
    y = targets()
    y = y.double() if y.is_floating_point() else y
    got = loss.stacked(z, y)
    assert got.shape == (outputs[0],)
    for s in range(outputs[0]):
        assert got[s].item() == pytest.approx(loss(z[s], y[s]).item(), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("spec", ["ce", "ce:0.1"])
def test_stacked_cross_entropy_over_classes_first_memory(spec: str) -> None:
    """The stacked dense model's outputs are [S, n, K] views of [S, K, n] memory; cross-entropy
    takes them as they lie (log-softmax across rows) and still gives each batch's own loss."""
    torch.manual_seed(0)
    loss = get_loss(spec, "multiclass")
    z = (torch.randn(4, 5, 6, dtype=torch.float64) * 2).mT  # [S=4, n=6, K=5], classes first
    assert not z.is_contiguous() and z.mT.is_contiguous()
    y = torch.randint(0, 5, (4, 6))
    got = loss.stacked(z, y)
    assert got.shape == (4,)
    for s in range(4):
        assert got[s].item() == pytest.approx(loss(z[s], y[s]).item(), rel=1e-12, abs=1e-14)
    z.requires_grad_()
    (g_stacked,) = torch.autograd.grad(loss.stacked(z, y).sum(), z)
    (g_each,) = torch.autograd.grad(sum(loss(z[s], y[s]) for s in range(4)), z)
    torch.testing.assert_close(g_stacked, g_each, rtol=1e-12, atol=1e-14)
