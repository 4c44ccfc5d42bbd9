"""Tests for optimlab.train.metrics against independent references: counts taken by hand,
sklearn called directly on the same predictions, closed forms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax
from sklearn import metrics as skm

from optimlab.train.metrics import (
    TASKS,
    Metric,
    compute,
    compute_stacked,
    default_metrics,
    get_metric,
    metric_names,
    prepare,
)

# A small binary example, counted by hand.
#   index   0    1    2     3    4     5     6    7     8
#   y       1    1    1     0    0     0     1    0     1
#   logit  2.0  0.0 -1.0   0.5 -3.0  -0.1   4.0 -2.0  -0.5
#   ŷ       1    1    0     1    0     0     1    0     0     (logit 0 → σ = 0.5 → 1)
#   kind    TP   TP   FN    FP   TN    TN    TP   TN    FN
BIN_Y = torch.tensor([1, 1, 1, 0, 0, 0, 1, 0, 1])
BIN_LOGITS = torch.tensor([2.0, 0.0, -1.0, 0.5, -3.0, -0.1, 4.0, -2.0, -0.5])
TP, FP, FN, TN = 3, 1, 2, 3

# A small multiclass example (K = 3), counted by hand.
#   y  0 0 1 1 1 2 2 0
#   ŷ  0 1 1 1 2 2 0 0
#   class 0: TP 2 (idx 0, 7), FP 1 (idx 6), FN 1 (idx 1)
#   class 1: TP 2 (idx 2, 3), FP 1 (idx 1), FN 1 (idx 4)
#   class 2: TP 1 (idx 5),    FP 1 (idx 4), FN 1 (idx 6)
MC_Y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
MC_PRED = [0, 1, 1, 1, 2, 2, 0, 0]
MC_LOGITS = torch.full((8, 3), -1.0)
MC_LOGITS[torch.arange(8), torch.tensor(MC_PRED)] = 2.0
MC_COUNTS = {0: (2, 1, 1), 1: (2, 1, 1), 2: (1, 1, 1)}  # class: (TP, FP, FN)


def _rng_binary(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    logits = torch.randn(n, generator=g) + 1.2 * (2 * y - 1)
    return logits, y


def _rng_multiclass(n: int = 300, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g)
    logits[torch.arange(n), y] += 1.0
    return logits, y


def _rng_regression(n: int = 100, k: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if k == 1 else (n, k)
    y = torch.randn(*shape, generator=g, dtype=torch.float64)
    out = y + 0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)
    return out, y


# ---------------------------------------------------------------- hand-counted references


def test_binary_counts_by_hand() -> None:
    y = BIN_Y.tolist()
    y_hat = [1 if z >= 0 else 0 for z in BIN_LOGITS.tolist()]
    pairs = list(zip(y, y_hat, strict=True))
    assert (pairs.count((1, 1)), pairs.count((0, 1)), pairs.count((1, 0)),
            pairs.count((0, 0))) == (TP, FP, FN, TN)

    def m(name: str) -> float:
        return get_metric(name)(BIN_LOGITS, BIN_Y, "binary")

    assert m("accuracy") == pytest.approx((TP + TN) / 9)
    assert m("precision") == pytest.approx(TP / (TP + FP))  # 3/4
    assert m("recall") == pytest.approx(TP / (TP + FN))  # 3/5
    p, r = TP / (TP + FP), TP / (TP + FN)
    assert m("f1") == pytest.approx(2 * p * r / (p + r))
    assert m("f1") == pytest.approx(2 * TP / (2 * TP + FP + FN))
    cm = get_metric("confusion_matrix")(BIN_LOGITS, BIN_Y, "binary")
    np.testing.assert_array_equal(cm, [[TN, FP], [FN, TP]])
    # macro over both classes: class 0 has TP=TN, FP=FN, FN=FP swapped
    p0, r0 = TN / (TN + FN), TN / (TN + FP)
    f0 = 2 * p0 * r0 / (p0 + r0)
    assert m("f1_macro") == pytest.approx((f0 + 2 * p * r / (p + r)) / 2)


def test_multiclass_counts_by_hand() -> None:
    precisions = [tp / (tp + fp) for tp, fp, _ in MC_COUNTS.values()]
    recalls = [tp / (tp + fn) for tp, _, fn in MC_COUNTS.values()]
    f1s = [2 * p * r / (p + r) for p, r in zip(precisions, recalls, strict=True)]
    support = [sum(1 for v in MC_Y.tolist() if v == c) for c in range(3)]  # 3, 3, 2

    def m(name: str) -> float:
        return get_metric(name)(MC_LOGITS, MC_Y, "multiclass")

    assert m("accuracy") == pytest.approx(5 / 8)
    assert m("precision") == pytest.approx(np.mean(precisions))  # macro by default
    assert m("recall_macro") == pytest.approx(np.mean(recalls))
    assert m("f1") == pytest.approx(np.mean(f1s))
    assert m("f1_macro") == pytest.approx(np.mean(f1s))
    assert m("f1_weighted") == pytest.approx(np.average(f1s, weights=support))
    tp, fp, fn = (sum(c[i] for c in MC_COUNTS.values()) for i in range(3))
    assert m("precision_micro") == pytest.approx(tp / (tp + fp))
    assert m("recall_micro") == pytest.approx(tp / (tp + fn))
    assert m("f1_micro") == pytest.approx(m("accuracy"))
    cm = get_metric("confusion_matrix")(MC_LOGITS, MC_Y, "multiclass")
    expected = np.zeros((3, 3), dtype=int)
    for t, p_ in zip(MC_Y.tolist(), MC_PRED, strict=True):
        expected[t, p_] += 1
    np.testing.assert_array_equal(cm, expected)


# ---------------------------------------------------------------- sklearn on the same predictions

BINARY_REFS = {
    "accuracy": lambda y, p, s: skm.accuracy_score(y, p),
    "precision": lambda y, p, s: skm.precision_score(y, p),
    "recall": lambda y, p, s: skm.recall_score(y, p),
    "f1": lambda y, p, s: skm.f1_score(y, p),
    "f1_binary": lambda y, p, s: skm.f1_score(y, p),
    "precision_macro": lambda y, p, s: skm.precision_score(y, p, average="macro"),
    "recall_weighted": lambda y, p, s: skm.recall_score(y, p, average="weighted"),
    "f1_micro": lambda y, p, s: skm.f1_score(y, p, average="micro"),
    "roc_auc": lambda y, p, s: skm.roc_auc_score(y, expit(s)),
}


@pytest.mark.parametrize("name", sorted(BINARY_REFS))
def test_binary_matches_sklearn(name: str) -> None:
    logits, y = _rng_binary()
    s = logits.numpy().astype(np.float64)
    y_hat = (expit(s) >= 0.5).astype(int)
    got = get_metric(name)(logits, y, "binary")
    assert isinstance(got, float)
    assert got == pytest.approx(BINARY_REFS[name](y.numpy(), y_hat, s), abs=1e-12)


MULTICLASS_REFS = {
    "accuracy": lambda y, p, s: skm.accuracy_score(y, p),
    "precision": lambda y, p, s: skm.precision_score(y, p, average="macro"),
    "recall": lambda y, p, s: skm.recall_score(y, p, average="macro"),
    "f1": lambda y, p, s: skm.f1_score(y, p, average="macro"),
    "f1_macro": lambda y, p, s: skm.f1_score(y, p, average="macro"),
    "f1_weighted": lambda y, p, s: skm.f1_score(y, p, average="weighted"),
    "precision_weighted": lambda y, p, s: skm.precision_score(y, p, average="weighted"),
    "recall_micro": lambda y, p, s: skm.recall_score(y, p, average="micro"),
    "roc_auc": lambda y, p, s: skm.roc_auc_score(
        y, softmax(s, axis=1), multi_class="ovr", average="macro"),
    "top_k_accuracy:3": lambda y, p, s: skm.top_k_accuracy_score(y, s, k=3),
    "top2_accuracy": lambda y, p, s: skm.top_k_accuracy_score(y, s, k=2),
}


@pytest.mark.parametrize("name", sorted(MULTICLASS_REFS))
def test_multiclass_matches_sklearn(name: str) -> None:
    logits, y = _rng_multiclass()
    s = logits.numpy().astype(np.float64)
    got = get_metric(name)(logits, y, "multiclass")
    assert got == pytest.approx(MULTICLASS_REFS[name](y.numpy(), s.argmax(1), s), abs=1e-12)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("mse", skm.mean_squared_error),
        ("mae", skm.mean_absolute_error),
        ("r2", skm.r2_score),
    ],
)
def test_regression_matches_sklearn(name: str, ref, k: int) -> None:
    out, y = _rng_regression(k=k)
    assert get_metric(name)(out, y, "regression") == pytest.approx(ref(y.numpy(), out.numpy()))


def test_rmse_is_sqrt_mse() -> None:
    out, y = _rng_regression()
    mse = get_metric("mse")(out, y, "regression")
    assert get_metric("rmse")(out, y, "regression") == pytest.approx(math.sqrt(mse))
    assert mse == pytest.approx(float(((out - y) ** 2).mean()))
    assert get_metric("mae")(out, y, "regression") == pytest.approx(float((out - y).abs().mean()))


def test_rmse_multioutput_is_mean_of_per_output_rmse() -> None:
    out, y = _rng_regression(k=3)
    per_output = ((out - y) ** 2).mean(0).sqrt()
    assert get_metric("rmse")(out, y, "regression") == pytest.approx(float(per_output.mean()))


def test_r2_closed_form() -> None:
    y = torch.tensor([3.0, -0.5, 2.0, 7.0, 4.2])
    y_hat = torch.tensor([2.5, 0.0, 2.0, 8.0, 3.9])
    ss_res = float(((y - y_hat) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    assert get_metric("r2")(y_hat, y, "regression") == pytest.approx(1 - ss_res / ss_tot)
    assert get_metric("r2")(y, y, "regression") == 1.0
    assert get_metric("r2")(torch.full_like(y, float(y.mean())), y, "regression") == (
        pytest.approx(0.0, abs=1e-12))


def test_r2_single_sample_is_nan() -> None:
    assert math.isnan(get_metric("r2")(torch.tensor([1.0]), torch.tensor([2.0]), "regression"))


# ---------------------------------------------------------------- logits → labels


def test_binary_threshold_at_logit_zero() -> None:
    logits = torch.tensor([0.0, -1e-6, 1e-6, -0.0])
    x = prepare(logits, torch.tensor([1, 0, 1, 1]), "binary")
    np.testing.assert_array_equal(x.y_pred, [1, 0, 1, 1])  # σ(0) = 0.5 counts as positive
    assert get_metric("accuracy")(logits, torch.tensor([1, 0, 1, 1]), "binary") == 1.0


def test_binary_column_shapes_and_float_targets() -> None:
    logits, y = _rng_binary()
    ref = compute(["accuracy", "f1", "roc_auc"], logits, y, "binary")
    assert compute(["accuracy", "f1", "roc_auc"], logits[:, None], y[:, None], "binary") == ref
    assert compute(["accuracy", "f1", "roc_auc"], logits, y.float(), "binary") == ref
    # label smoothing: 0.05 / 0.95 targets still read as 0 / 1
    smoothed = y.float() * 0.9 + 0.05
    assert compute(["accuracy", "f1", "roc_auc"], logits, smoothed, "binary") == ref


def test_multiclass_argmax_and_one_hot_targets() -> None:
    logits, y = _rng_multiclass(k=4)
    x = prepare(logits, y, "multiclass")
    np.testing.assert_array_equal(x.y_pred, logits.argmax(1).numpy())
    one_hot = torch.nn.functional.one_hot(y, 4).float()
    names = ["accuracy", "f1_macro", "roc_auc", "top2_accuracy"]
    ref = compute(names, logits, y, "multiclass")
    assert compute(names, logits, one_hot, "multiclass") == ref
    soft = 0.9 * one_hot + 0.1 / 4  # label-smoothed probabilities: same argmax
    assert compute(names, logits, soft, "multiclass") == ref
    assert compute(names, logits, y[:, None], "multiclass") == ref


def test_low_precision_outputs_and_grad() -> None:
    logits, y = _rng_multiclass(k=3)
    logits = logits.to(torch.bfloat16).requires_grad_(True)
    acc = get_metric("accuracy")(logits, y, "multiclass")
    assert acc == pytest.approx(skm.accuracy_score(y, logits.detach().float().argmax(1)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors() -> None:
    logits, y = _rng_multiclass()
    ref = compute(["accuracy", "roc_auc"], logits, y, "multiclass")
    assert compute(["accuracy", "roc_auc"], logits.cuda(), y.cuda(), "multiclass") == ref


# ---------------------------------------------------------------- top-k


@pytest.mark.parametrize("k_classes", [2, 3, 10])
def test_top1_equals_accuracy(k_classes: int) -> None:
    logits, y = _rng_multiclass(k=k_classes, seed=k_classes)
    acc = get_metric("accuracy")(logits, y, "multiclass")
    assert get_metric("top1_accuracy")(logits, y, "multiclass") == pytest.approx(acc)
    assert get_metric("top_k_accuracy:1")(logits, y, "multiclass") == pytest.approx(acc)


def test_top_k_spellings_and_bounds() -> None:
    logits, y = _rng_multiclass(k=10)
    s = logits.numpy().astype(np.float64)
    assert get_metric("top_k_accuracy")(logits, y, "multiclass") == pytest.approx(
        skm.top_k_accuracy_score(y.numpy(), s, k=5))  # default k = 5
    assert get_metric("top5_accuracy")(logits, y, "multiclass") == pytest.approx(
        skm.top_k_accuracy_score(y.numpy(), s, k=5))
    assert get_metric("top_k_accuracy:10")(logits, y, "multiclass") == 1.0  # k ≥ K
    top = [get_metric(f"top{k}_accuracy")(logits, y, "multiclass") for k in range(1, 11)]
    assert top == sorted(top)
    assert get_metric("top_k_accuracy:3").name == "top_k_accuracy:3"
    with pytest.raises(ValueError, match="top0_accuracy"):
        get_metric("top0_accuracy")


def test_top_k_with_classes_missing_from_batch() -> None:
    logits, _ = _rng_multiclass(n=6, k=4)
    y = torch.tensor([0, 1, 0, 1, 0, 1])  # classes 2 and 3 absent
    got = get_metric("top2_accuracy")(logits, y, "multiclass")
    ref = skm.top_k_accuracy_score(y.numpy(), logits.numpy(), k=2, labels=[0, 1, 2, 3])
    assert got == pytest.approx(ref)


# ---------------------------------------------------------------- roc_auc


def test_roc_auc_one_class_is_nan() -> None:
    logits, _ = _rng_binary(n=10)
    assert math.isnan(get_metric("roc_auc")(logits, torch.ones(10, dtype=torch.long), "binary"))
    mc, _ = _rng_multiclass(n=10, k=3)
    assert math.isnan(get_metric("roc_auc")(mc, torch.full((10,), 2), "multiclass"))


def test_roc_auc_multiclass_with_absent_class_averages_present_ones() -> None:
    logits, y = _rng_multiclass(n=60, k=4, seed=3)
    y = torch.where(y == 3, torch.zeros_like(y), y)  # class 3 absent
    probs = softmax(logits.numpy().astype(np.float64), axis=1)
    per_class = [skm.roc_auc_score(y.numpy() == c, probs[:, c]) for c in range(3)]
    assert get_metric("roc_auc")(logits, y, "multiclass") == pytest.approx(np.mean(per_class))


def test_roc_auc_binary_ranks_saturated_logits() -> None:
    # σ(40) and σ(50) both round to 1.0 in float64; ranking by the logit keeps them apart
    logits = torch.tensor([40.0, 50.0, -1.0, 45.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    assert get_metric("roc_auc")(logits, y, "binary") == 1.0


def test_two_logit_multiclass_roc_auc_equals_binary_on_margin() -> None:
    logits, y = _rng_multiclass(k=2)
    margin = logits[:, 1] - logits[:, 0]
    assert get_metric("roc_auc")(logits, y, "multiclass") == pytest.approx(
        get_metric("roc_auc")(margin, y, "binary"))


# ---------------------------------------------------------------- non-finite outputs


def test_non_finite_outputs_give_nan_for_score_metrics() -> None:
    out, y = _rng_regression()
    out[3] = float("nan")
    assert all(math.isnan(v) for v in compute(["mse", "mae", "rmse", "r2"], out, y,
                                               "regression").values())
    logits, labels = _rng_multiclass()
    logits[0, 0] = float("inf")
    assert math.isnan(get_metric("roc_auc")(logits, labels, "multiclass"))
    assert math.isnan(get_metric("top2_accuracy")(logits, labels, "multiclass"))
    assert 0.0 <= get_metric("accuracy")(logits, labels, "multiclass") <= 1.0


# ---------------------------------------------------------------- names, tasks, errors


@pytest.mark.parametrize("name", ["accuracyy", "auc_roc", "f1_samples", "top_k", "loss"])
def test_unknown_name_raises_with_name(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        get_metric(name)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"accuracy.*roc_auc.*mse") as info:
        get_metric("acuracy")
    assert "Did you mean 'accuracy'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "task", "fits"),
    [
        ("r2", "multiclass", "regression"),
        ("accuracy", "regression", "binary, multiclass"),
        ("top5_accuracy", "binary", "multiclass"),
        ("f1_binary", "multiclass", "binary"),
        ("confusion_matrix", "regression", "binary, multiclass"),
    ],
)
def test_misfit_raises_naming_metric_task_and_fit(name: str, task: str, fits: str) -> None:
    with pytest.raises(ValueError, match=f"{name}.*{task}.*applies to {fits}"):
        get_metric(name, task=task)
    outputs = torch.zeros(4, 3) if task == "multiclass" else torch.zeros(4)
    with pytest.raises(ValueError, match=f"{name}.*{task}"):
        get_metric(name)(outputs, torch.zeros(4, dtype=torch.long), task)
    with pytest.raises(ValueError, match=name):
        compute(["accuracy" if task != "regression" else "mse", name], outputs,
                torch.zeros(4, dtype=torch.long), task)


def test_unknown_task_raises() -> None:
    with pytest.raises(ValueError, match="multilabel"):
        get_metric("accuracy", task="multilabel")
    with pytest.raises(ValueError, match="multilabel"):
        default_metrics("multilabel")


EXPECTED_MODES = {
    "accuracy": "max", "precision": "max", "recall": "max", "f1": "max",
    "precision_macro": "max", "recall_weighted": "max", "f1_micro": "max", "f1_binary": "max",
    "roc_auc": "max", "top5_accuracy": "max", "top_k_accuracy:3": "max",
    "mse": "min", "mae": "min", "rmse": "min", "r2": "max",
}


@pytest.mark.parametrize(("name", "mode"), sorted(EXPECTED_MODES.items()))
def test_mode(name: str, mode: str) -> None:
    assert get_metric(name).mode == mode


def test_flags() -> None:
    assert get_metric("roc_auc").needs_scores and get_metric("top3_accuracy").needs_scores
    assert not get_metric("f1").needs_scores and not get_metric("mse").needs_scores
    assert not get_metric("confusion_matrix").scalar and get_metric("accuracy").scalar
    assert get_metric(" F1_Macro ").name == "f1_macro"
    metric = get_metric("accuracy")
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.name = "other"  # type: ignore[misc]


def test_every_listed_name_resolves_and_fits_its_tasks() -> None:
    for task in TASKS:
        for name in metric_names(task):
            get_metric(name, task=task)


def test_default_metrics_and_compute() -> None:
    assert default_metrics("binary") == ["accuracy", "f1", "roc_auc"]
    assert default_metrics("multiclass") == ["accuracy", "f1_macro"]
    assert default_metrics("regression") == ["mse", "mae", "r2"]
    cases = {
        "binary": _rng_binary(),
        "multiclass": _rng_multiclass(),
        "regression": _rng_regression(),
    }
    for task, (outputs, targets) in cases.items():
        result = compute(default_metrics(task), outputs, targets, task)
        assert list(result) == default_metrics(task)
        assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())


def test_compute_skips_non_scalar_unless_asked() -> None:
    names = ["accuracy", "confusion_matrix"]
    assert list(compute(names, MC_LOGITS, MC_Y, "multiclass")) == ["accuracy"]
    full = compute(names, MC_LOGITS, MC_Y, "multiclass", include_nonscalar=True)
    assert full["confusion_matrix"].shape == (3, 3)
    assert full["confusion_matrix"].sum() == 8


def test_custom_metric() -> None:
    balanced = Metric(name="balanced_accuracy", mode="max", tasks=("binary", "multiclass"),
                      fn=lambda x: skm.balanced_accuracy_score(x.y_true, x.y_pred))
    got = compute([balanced, "accuracy"], MC_LOGITS, MC_Y, "multiclass")
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(MC_Y, MC_PRED))
    with pytest.raises(ValueError, match="mode"):
        Metric(name="bad", mode="up", tasks=("binary",), fn=lambda x: 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outputs", "targets", "task", "match"),
    [
        (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), "binary", "multiclass"),
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), "multiclass", "binary"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]), "multiclass", r"\[0, 2\]"),
        (torch.zeros(4), torch.tensor([0, 1, 2, 1]), "binary", "0 or 1"),
        (torch.zeros(4), torch.zeros(5), "regression", "number of samples"),
        (torch.zeros(4, 2), torch.zeros(4, 3), "regression", "same shape"),
        (torch.zeros(0), torch.zeros(0), "regression", "no samples"),
        (torch.zeros(3), torch.tensor([0.0, float("nan"), 1.0]), "regression", "NaN"),
    ],
)
def test_bad_inputs_raise(outputs, targets, task, match) -> None:
    with pytest.raises(ValueError, match=match):
        prepare(outputs, targets, task)


# ---------------------------------------------------------------- the cheap path, case by case
# The metrics are computed from a confusion matrix, by ranks and as numpy means rather than by
# sklearn: on many random batches — classes missing from the targets or from the predictions,
# tied scores, one class only, constant targets — they equal sklearn's values.

_COUNTING_NAMES = [f"{base}{suffix}" for base in ("precision", "recall", "f1")
                   for suffix in ("", "_macro", "_micro", "_weighted")]


def _counting_ref(name: str, y: np.ndarray, p: np.ndarray, task: str) -> float:
    base, _, average = name.partition("_")
    fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[base]
    average = average or ("binary" if task == "binary" else "macro")
    return fn(y, p, average=average, zero_division=0)


@pytest.mark.parametrize("seed", range(12))
def test_counting_metrics_equal_sklearn_on_awkward_batches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(1, 40))
    present = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)  # some absent
    y = rng.choice(present, size=n)
    logits = rng.normal(size=(n, k))
    if seed % 3 == 0:
        logits[:, present[0]] += 5.0  # predictions pile on one class
    out, tgt = torch.tensor(logits), torch.tensor(y)
    p = logits.argmax(1)
    for name in ["accuracy", *_COUNTING_NAMES]:
        got = get_metric(name)(out, tgt, "multiclass")
        want = skm.accuracy_score(y, p) if name == "accuracy" else \
            _counting_ref(name, y, p, "multiclass")
        assert got == want, name
    np.testing.assert_array_equal(
        compute(["confusion_matrix"], out, tgt, "multiclass",
                include_nonscalar=True)["confusion_matrix"],
        skm.confusion_matrix(y, p, labels=np.arange(k)))
    for kk in (2, 3):
        if kk < k:
            assert get_metric(f"top{kk}_accuracy")(out, tgt, "multiclass") == \
                skm.top_k_accuracy_score(y, logits, k=kk, labels=np.arange(k))


@pytest.mark.parametrize("seed", range(8))
def test_binary_counting_and_auc_equal_sklearn_with_ties_and_one_class(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 50))
    y = rng.integers(0, 2, size=n) if seed % 4 else np.zeros(n, dtype=np.int64)
    logits = np.round(rng.normal(size=n), 1)  # rounded: many tied scores
    if seed == 5:
        logits = -np.abs(logits) - 0.1  # no positive prediction at all
    out, tgt = torch.tensor(logits), torch.tensor(y)
    p = (logits >= 0).astype(int)
    for name in ["accuracy", *_COUNTING_NAMES, "f1_binary"]:
        got = get_metric(name)(out, tgt, "binary")
        want = skm.accuracy_score(y, p) if name == "accuracy" else \
            _counting_ref(name.replace("_binary", ""), y, p, "binary")
        assert got == want, name
    auc = get_metric("roc_auc")(out, tgt, "binary")
    if len(np.unique(y)) < 2:
        assert math.isnan(auc)
    else:
        assert auc == pytest.approx(skm.roc_auc_score(y, logits), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_multiclass_auc_equals_sklearn_with_tied_probabilities(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    k, n = 4, 60
    y = rng.integers(0, k - (seed % 2), size=n)  # with odd seeds, class 3 never occurs
    logits = np.round(rng.normal(size=(n, k)), 0)  # integer logits: ties in probabilities
    got = get_metric("roc_auc")(torch.tensor(logits), torch.tensor(y), "multiclass")
    present = np.unique(y)
    indicator = (y[:, None] == present[None, :]).astype(int)
    want = skm.roc_auc_score(indicator, softmax(logits, axis=1)[:, present], average="macro")
    assert got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("constant", [False, True])
def test_regression_metrics_equal_sklearn(k: int, constant: bool) -> None:
    out, y = _rng_regression(n=37, k=k, seed=k)
    if constant:
        y = torch.ones_like(y)
        out = out.clone()
        if k == 3:
            out[:, 1] = 1.0  # one output predicted exactly: R² 1 there, 0 on the others
    yn, on = y.numpy(), out.numpy()
    assert get_metric("mse")(out, y, "regression") == skm.mean_squared_error(yn, on)
    assert get_metric("mae")(out, y, "regression") == skm.mean_absolute_error(yn, on)
    assert get_metric("r2")(out, y, "regression") == skm.r2_score(yn, on)
    assert get_metric("rmse")(out, y, "regression") == pytest.approx(
        np.mean(np.sqrt(skm.mean_squared_error(yn, on, multioutput="raw_values"))), abs=0)


def test_probabilities_are_sigmoid_and_softmax() -> None:
    z = np.array([-800.0, -3.0, 0.0, 2.5, 800.0])
    x = prepare(torch.tensor(z), torch.tensor([0, 0, 1, 1, 1]), "binary")
    np.testing.assert_allclose(x.probabilities, expit(z), rtol=1e-15, atol=0)
    logits, y = _rng_multiclass(n=20)
    x = prepare(logits, y, "multiclass")
    np.testing.assert_allclose(x.probabilities, softmax(logits.double().numpy(), axis=1),
                               rtol=1e-15, atol=0)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("task, shape", [
    ("binary", (5, 30)), ("binary", (5, 30, 1)), ("multiclass", (5, 30, 4)),
    ("multiclass", (5, 30, 7)), ("regression", (5, 30)), ("regression", (5, 30, 2)),
])
def test_compute_stacked_equals_compute_on_each_seed(task: str, shape: tuple[int, ...]) -> None:
    """S evaluations stacked (seeds trained together): every metric of the task, seed by seed,
    exactly what compute gives on that seed alone — with classes absent from some seeds, one
    seed's outputs non-finite and targets of every accepted form."""
    gen = torch.Generator().manual_seed(len(shape) + shape[-1])
    out = torch.randn(shape, generator=gen) * 3
    if task == "multiclass":
        k = shape[-1]
        y = torch.randint(0, k, shape[:2], generator=gen)
        y[1] = y[1] % 2  # seed 1 sees two classes only
        targets = [y, torch.nn.functional.one_hot(y, k).float()]
    elif task == "binary":
        y = torch.randint(0, 2, shape[:2], generator=gen)
        y[2] = 1  # one class only: ROC-AUC is NaN there
        targets = [y, y.float() * 0.9 + 0.05, y.reshape(shape)]
    else:
        targets = [torch.randn(shape, generator=gen)]
    out[3, 4] = float("nan")  # a seed gone non-finite
    names = [n for n in metric_names(task) if get_metric(n).scalar]
    for tgt in targets:
        together = compute_stacked(names, out, tgt, task)
        assert len(together) == shape[0]
        for s in range(shape[0]):
            assert _same(together[s], compute(names, out[s], tgt[s], task)), (task, s)


def test_compute_stacked_of_the_dense_layout_and_without_scalar_metrics() -> None:
    """Outputs seen as [S, n, K] over memory laid out [S, K, n] (the stacked dense model's), and
    only non-scalar metrics asked for: one empty dict per seed."""
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(3, 4, 20, generator=gen).mT
    y = torch.randint(0, 4, (3, 20), generator=gen)
    names = ["accuracy", "f1_weighted", "roc_auc", "top2_accuracy"]
    assert compute_stacked(names, out, y, "multiclass") == \
        [compute(names, out[s], y[s], "multiclass") for s in range(3)]
    assert compute_stacked(["confusion_matrix"], out, y, "multiclass") == [{}, {}, {}]
    with pytest.raises(ValueError, match="stacked outputs and targets"):
        compute_stacked(names, out, y[:, :5], "multiclass")
