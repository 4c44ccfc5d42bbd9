"""Loss-landscape plots, and the figures of a trained model's landscape.

The geometry — lines, slices, the path's PCA plane, sharpness — is computed by
:mod:`optimlab.train.landscape`; this module draws it.

- :func:`plot_line`, :func:`plot_slice`, :func:`plot_sharp_vs_flat` draw one view each;
  :func:`landscape_report` trains a quick model, records its path and writes the figures (used
  by ``optimlab landscape``).

>>> plot_slice(a, b, L).savefig("slice.png")
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from torch import Tensor, nn

from optimlab._checks import check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.landscape import (
    LossFn,
    TrajectoryRecorder,
    flatten_params,
    line_loss,
    loss_at_points,
    path_extent,
    random_directions,
    sharpness,
    slice_2d,
    trajectory_pca,
)
from optimlab.viz import style


# ---------------------------------------------------------------------------- plots
def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, Tensor) else np.asarray(t, float)


def _norm(losses: np.ndarray, vmin: float | None, vmax: float | None, log: bool
          ) -> tuple[Normalize, np.ndarray]:
    finite = losses[np.isfinite(losses)]
    lo = float(finite.min()) if vmin is None else vmin
    hi = float(finite.max()) if vmax is None else vmax
    if log:
        lo = max(lo, 1e-6)
        hi = max(hi, lo * 1.0001)
        return LogNorm(lo, hi), np.geomspace(lo, hi, 25)
    hi = max(hi, lo + 1e-12)
    return Normalize(lo, hi), np.linspace(lo, hi, 25)


def _draw_slice(ax: plt.Axes, a: Any, b: Any, losses: Any, *, path: Any = None,
                vmin: float | None = None, vmax: float | None = None, log: bool = True,
                xlabel: str, ylabel: str, title: str | None, lines: bool = True,
                center_label: str = "end (final weights)") -> Any:
    A, B, L = _np(a), _np(b), _np(losses)
    norm, levels = _norm(L, vmin, vmax, log)
    Lc = np.clip(L, levels[0], levels[-1])
    cs = ax.contourf(A, B, Lc, levels=levels, norm=norm, cmap="viridis", extend="neither")
    if lines:
        ax.contour(A, B, Lc, levels=levels[::3], norm=norm, colors="white", linewidths=0.5,
                   alpha=0.6)
    ax.grid(False)
    if path is not None:
        P = _np(path)
        ax.plot(P[:, 0], P[:, 1], color="#d55e00", lw=1.6, marker=".", ms=3,
                label="training path")
        ax.plot(P[0, 0], P[0, 1], "o", color="white", mec="black", ms=8, label="start (init)")
    ax.plot(0, 0, "*", color="#e69f00", mec="black", ms=14, label=center_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", frameon=True, framealpha=0.85)
    return cs


def _loss_axis(ax: plt.Axes, values: np.ndarray, log: bool) -> None:
    """A loss y axis: log scale when asked and the values span at least a decade."""
    finite = values[np.isfinite(values) & (values > 0)]
    log = log and finite.size > 0 and float(finite.max()) / float(finite.min()) >= 10
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("loss" + (" (log scale)" if log else ""))


def plot_line(alphas: Any, losses: Any | Mapping[str, Any], *, ax: plt.Axes | None = None,
              title: str | None = "Loss along the line from initial to final weights",
              log: bool = True) -> Figure:
    """Loss against α on ``θ(α) = (1 − α)·θ₀ + α·θ₁``; ``losses`` is one curve or
    ``{label: curve}`` (e.g. train and validation). The initial (α=0) and final (α=1) weights
    are marked. ``log``: a log loss axis when the curves span at least a decade."""
    style.apply()
    fig = ax.figure if ax is not None else plt.figure()
    ax = ax if ax is not None else fig.add_subplot()
    curves = dict(losses) if isinstance(losses, Mapping) else {"loss": losses}
    A = _np(alphas)
    for label, curve in curves.items():
        L = _np(curve)
        ax.plot(A, L, lw=2, label=label, color=style.color(label))
        for alpha, name, mk in ((0.0, "initial θ₀", "o"), (1.0, "final θ₁", "*")):
            if A.min() <= alpha <= A.max():
                ax.plot(alpha, np.interp(alpha, A, L), mk, color=style.color(label),
                        mec="black", ms=9 if mk == "o" else 13,
                        label=name if label == next(iter(curves)) else None)
    for alpha in (0.0, 1.0):
        ax.axvline(alpha, color="gray", lw=0.8, ls="--")
    _loss_axis(ax, np.concatenate([_np(c).ravel() for c in curves.values()]), log)
    ax.set_xlabel("α   (θ(α) = (1 − α)·θ₀ + α·θ₁)")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_slice(a: Any, b: Any, losses: Any, *, path: Any = None, ax: plt.Axes | None = None,
               xlabel: str = "direction 1 (filter-normalized)",
               ylabel: str = "direction 2 (filter-normalized)",
               title: str | None = "Loss around the final weights", log: bool = True,
               vmin: float | None = None, vmax: float | None = None) -> Figure:
    """Filled contours of a :func:`slice_2d` result (log colour scale by default), the final
    weights (origin) marked with a star and, if given, the projected training ``path``
    ``[T, 2]`` (from :func:`trajectory_pca`) with its start marked; colorbar labelled "loss"."""
    style.apply()
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 5.2))
    ax = ax if ax is not None else fig.add_subplot()
    cs = _draw_slice(ax, a, b, losses, path=path, vmin=vmin, vmax=vmax, log=log, xlabel=xlabel,
                     ylabel=ylabel, title=title)
    _colorbar(fig, cs, ax, log)
    return fig


def _colorbar(fig: Figure, cs: Any, ax: Any, log: bool) -> None:
    cb = fig.colorbar(cs, ax=ax)
    cb.set_label("loss" + (" (log scale)" if log else ""))
    if log:
        from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, ScalarFormatter

        lo, hi = float(cs.norm.vmin), float(cs.norm.vmax)
        if hi / lo < 10:   # less than a decade: evenly spaced round numbers read better
            ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
            cb.locator = FixedLocator(ticks)
        else:
            cb.locator = LogLocator(subs=(1.0, 2.0, 5.0))
        cb.formatter = ScalarFormatter()
        cb.update_ticks()


def plot_sharp_vs_flat(small_batch_model: nn.Module, large_batch_model: nn.Module,
                       loss_fn: LossFn, X: Tensor, y: Tensor, *, small_batch_size: int,
                       large_batch_size: int, grid: int = 31, span: float = 1.0,
                       seed: int = 0, radius: float = 0.1, points: int = 51,
                       notes: Mapping[str, str] | None = None) -> Figure:
    """The notes' "sharp vs flat minima" picture, measured: for a small-batch and a large-batch
    model, the loss on the plane ``θ* + a·d₁ + b·d₂`` of filter-normalized random directions
    (same seed, so matching Gaussian draws) side by side on one shared colour scale, and the
    1-D loss ``L(θ* + a·d₁)`` of both on one axis. Titles give the batch sizes and the
    :func:`sharpness` proxy at ``radius``; ``notes`` adds a line per model (keys ``"small"``,
    ``"large"``, e.g. the validation accuracy)."""
    style.apply()
    views = []
    for label, model, bs in (("small", small_batch_model, small_batch_size),
                             ("large", large_batch_model, large_batch_size)):
        d1, d2 = random_directions(model, seed=seed)
        a, b, L = slice_2d(model, loss_fn, X, y, d1, d2, grid=grid, span=span)
        alphas = torch.linspace(-span, span, points, dtype=torch.float64)
        theta = flatten_params(model)
        line = loss_at_points(model, loss_fn, X, y,
                              theta + alphas[:, None].to(theta.device, theta.dtype) * d1)
        sharp = sharpness(model, loss_fn, X, y, radius=radius, seed=seed)
        views.append((label, bs, a, b, L, alphas, line, sharp))
    allL = np.concatenate([_np(v[4]).ravel() for v in views])
    vmin, vmax = float(np.nanmin(allL)), float(np.nanmax(allL[np.isfinite(allL)]))
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.0), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1.15]})
    fig.get_layout_engine().set(wspace=0.06)
    cs = None
    for ax, (label, bs, a, b, L, _, _, sharp) in zip(axes[:2], views, strict=True):
        extra = f"\n{notes[label]}" if notes and label in notes else ""
        cs = _draw_slice(ax, a, b, L, vmin=vmin, vmax=vmax, log=True,
                         xlabel="direction 1 (filter-normalized)",
                         ylabel="direction 2 (filter-normalized)",
                         title=f"{label} batch, B = {bs}: sharpness "
                               f"{sharp['sharpness']:.3g} (r = {radius:g}){extra}")
        ax.title.set_fontsize(11)
    _colorbar(fig, cs, list(axes[:2]), log=True)
    ax = axes[2]
    for label, bs, *rest in views:
        alphas, line = rest[3], rest[4]
        ax.plot(_np(alphas), _np(line), lw=2, label=f"B = {bs} ({label} batch)",
                color="#0072b2" if label == "small" else "#d55e00")
    for r in (-radius, radius):
        ax.axvline(r, color="gray", lw=0.8, ls="--")
    _loss_axis(ax, np.concatenate([_np(v[6]).ravel() for v in views]), log=True)
    ax.set_xlabel("a: step along direction 1 (filter-normalized; 1 = size of the weights)")
    ax.set_title(f"1-D cut L(θ* + a·d₁) of both models\n(dashed: a = ±r = ±{radius:g}, the "
                 "radius of the sharpness proxy)", fontsize=11)
    ax.legend(loc="upper center")
    fig.suptitle("Sharp vs flat minima: small vs large batch — training loss around each "
                 "model's final weights θ*\n(sharpness = mean loss increase at radius r along "
                 "filter-normalized random directions; same seed for both)", fontsize=12)
    return fig


# ---------------------------------------------------------------------------- report
@dataclass
class LandscapeReport:
    """What :func:`landscape_report` wrote and measured."""

    files: list[Path] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [str(f) for f in self.files], "numbers": self.numbers}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)


def _infer_mlp_spec(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """An MLP spec (hidden widths, norm) that fits a state dict written for an optimlab MLP."""
    hidden, i = [], 0
    while f"linear{i}.weight" in state_dict:
        hidden.append(int(state_dict[f"linear{i}.weight"].shape[0]))
        i += 1
    if "output.weight" not in state_dict:
        raise ValueError("the checkpoint's model is not an optimlab MLP (no 'output.weight'); "
                         "give its spec with --model '{\"type\": ..., ...}'")
    norm = None
    if "norm0.weight" in state_dict:
        norm = "batch" if "norm0.running_mean" in state_dict else "layer"
    return {"type": "mlp", "hidden": hidden, "norm": norm}


def _train(spec: Any, split: Any, *, epochs: int, batch_size: int, seed: int, lr: float,
           optimizer: str, callbacks: Sequence[Callback] = ()) -> Any:
    from optimlab.train import Trainer

    trainer = Trainer(spec, optimizer=optimizer, lr=lr, metrics=["accuracy"],
                      callbacks=list(callbacks), seed=seed, progress=False)
    trainer.fit(split.train, split.val, epochs=epochs, batch_size=batch_size)
    return trainer


def _study_trial(db: str | Path, study: str | None, config: str | None,
                 seed: int) -> tuple[Any, Any, Any]:
    """(study spec, trial row, data split) of one finished trial in a lab store."""
    from optimlab.lab.runner import prepare_data
    from optimlab.lab.spec import parse_spec
    from optimlab.lab.store import FINISHED, Store

    with Store(db, create=False) as store:
        study_id, name, spec_data = store.study(study)
        rows = [r for r in store.trials(study_id) if r.status in FINISHED]
    labels = list(dict.fromkeys(r.label for r in rows))
    if not labels:
        raise ValueError(f"study {name!r} in {db} has no finished trial yet")
    label = labels[0] if config is None else config
    match = [r for r in rows if r.label == label and r.seed == seed]
    if not match:
        seeds = sorted({r.seed for r in rows if r.label == label})
        raise ValueError(f"study {name!r} has no finished trial {label!r} with seed {seed}; "
                         f"configurations: {', '.join(labels)}"
                         + (f"; seeds of {label!r}: {seeds}" if seeds else ""))
    lab_spec = parse_spec(spec_data)
    return lab_spec, match[0], prepare_data(lab_spec.data)


def _retrain_trial(lab_spec: Any, row: Any, split: Any, recorder: Callback,
                   nums: dict[str, Any]) -> Any:
    """Train the trial again from its stored settings, recording the path; check it matches."""
    from optimlab.lab.runner import build_trainer, monitor_for

    settings = row.config
    trainer = build_trainer(lab_spec, settings, row.seed, split, [recorder])
    trainer.fit(split.train, split.val, epochs=settings["epochs"],
                max_steps=settings["max_steps"], batch_size=settings["batch_size"],
                drop_last=settings["drop_last"])
    monitor = monitor_for(lab_spec, split.train.task)
    stored = (row.final or {}).get(monitor)
    again = trainer.history.epochs[-1].get(monitor)
    nums.update({"study_trial": f"{row.label} (seed {row.seed})", "monitor": monitor,
                 "stored_final": stored, "retrained_final": again,
                 "reproduces_store": stored == again})
    return trainer


class _StopAtTrainLoss(Callback):
    """Stop once the (eval-mode) training loss is at most ``target``."""

    def __init__(self, target: float) -> None:
        self.target = target

    def on_epoch_end(self, state: State) -> None:
        assert state.evaluate is not None
        loss = state.evaluate(state.train_data)["loss"]
        if loss <= self.target:
            state.request_stop(f"training loss {loss:.4g} reached {self.target:.4g}")


def landscape_report(dataset: str = "digits", *, grid: int = 51, span: float = 1.0,
                     epochs: int = 10, batch_size: int = 64,
                     compare_batch_sizes: Sequence[int] | None = None,
                     checkpoint: str | Path | None = None, out: str | Path = ".",
                     seed: int = 0, model: Any = None, lr: float = 1e-3,
                     optimizer: str = "adam", radius: float = 0.1,
                     max_path_points: int = 200, db: str | Path | None = None,
                     study: str | None = None, config: str | None = None,
                     trial_seed: int = 0) -> LandscapeReport:
    """Train a quick model on ``dataset`` (train split of a seeded, standardized 80/10/10
    holdout), record its path, and write into ``out``:

    - ``landscape_line.png``: train and validation loss along θ(α) = (1 − α)·θ₀ + α·θ₁, from the
      initial weights θ₀ to the final θ₁ (α ∈ [−0.25, 1.25]);
    - ``landscape_slice.png``: the training loss on the path's PCA plane with the path drawn
      (left), and on a plane of filter-normalized random directions, a, b ∈ [−span, span]
      (right), ``grid × grid`` points each;
    - ``sharp_vs_flat.png`` when ``compare_batch_sizes=(small, large)``: a model trained the same
      way at the small batch size for ``epochs`` epochs, and one at the large batch size trained
      until its training loss reaches the small-batch model's (at most as many updates), so the
      two minima are compared at equal training loss; drawn by :func:`plot_sharp_vs_flat`.

    With ``db`` (a lab store) the model is a trial of a study: the configuration labelled
    ``config`` (the first when None) with seed ``trial_seed`` of ``study`` (the latest when None)
    is trained again from its stored settings — same data split, same seed, so on the CPU the
    very weights the study produced (``numbers["reproduces_store"]`` checks the final metric
    against the store) — recording its path; ``dataset``, ``epochs``, ``batch_size``, ``lr``,
    ``optimizer`` and ``model`` come from the study.

    With ``checkpoint`` (a ``ModelCheckpoint`` file) nothing is trained: only the right-hand
    slice around its weights is drawn. ``model`` is the spec (default ``{"type": "mlp",
    "hidden": [128]}``; for a checkpoint, inferred from its weights for an optimlab MLP).
    The numbers include the loss at the centre and the :func:`sharpness` proxy at ``radius``.
    """
    from optimlab.data import holdout, load, standardize
    from optimlab.models import build_model, get_loss, n_outputs, task_defaults

    check_number("grid", grid, low=2, integer=True)
    check_number("span", span, low=0.0, low_open=True)
    check_number("epochs", epochs, low=1, integer=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_number("radius", radius, low=0.0, low_open=True)
    check_number("max_path_points", max_path_points, low=2, integer=True)
    if compare_batch_sizes is not None:
        sizes = list(compare_batch_sizes)
        if len(sizes) != 2:
            raise ValueError(f"compare_batch_sizes={sizes}: give two batch sizes, small and large")
        for s in sizes:
            check_number("compare batch size", s, low=1, integer=True)
        if sizes[0] == sizes[1]:
            raise ValueError(f"compare_batch_sizes={sizes}: the two batch sizes must differ")
        compare_batch_sizes = sorted(sizes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trial = None
    if db is not None:
        if checkpoint is not None or compare_batch_sizes is not None:
            raise ValueError("a study trial (--db) cannot be combined with --checkpoint or "
                             "--compare-batch-sizes")
        trial = _study_trial(db, study, config, trial_seed)
        lab_spec, row, split = trial
        dataset = lab_spec.data.dataset or Path(lab_spec.data.csv or lab_spec.data.npz).name
        settings = row.config
        model, optimizer = settings["model"], settings["optimizer"]
        epochs = settings["epochs"] or 1
        batch_size = settings["batch_size"] or len(split.train)
    else:
        split, _ = standardize(holdout(load(dataset), seed=seed))
    train = split.train
    X, y = train.X, train.y
    report = LandscapeReport()
    nums = report.numbers
    nums.update({"dataset": dataset, "train_samples": len(train), "grid": grid, "span": span,
                 "seed": seed})
    style.apply()

    if checkpoint is not None:
        from optimlab.train.callbacks import read_checkpoint

        state = read_checkpoint(checkpoint, history=False)["model"]
        spec = model if model is not None else _infer_mlp_spec(state)
        net = build_model(spec, tuple(train.X.shape[1:]),
                          n_outputs(train.task, train.n_classes, tuple(train.y.shape)),
                          task=train.task, seed=seed)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"the checkpoint {checkpoint} does not fit model {spec!r} on "
                             f"{dataset!r} ({str(err).splitlines()[0]}); give the model spec "
                             "it was trained with") from None
        loss_fn = get_loss(task_defaults(train.task)["loss"], train.task)
        nums["checkpoint"] = str(checkpoint)
        nums["model"] = spec
        _random_slice_figure(net, loss_fn, X, y, grid, span, seed, radius, out, report,
                             title=f"Training loss around the weights of {Path(checkpoint).name}"
                                   f" ({dataset}, {_describe(spec)})")
        return report

    spec = model if model is not None else {"type": "mlp", "hidden": [128]}
    nums["model"] = spec
    steps_per_epoch = math.ceil(len(train) / batch_size)
    every = max(1, math.ceil(epochs * steps_per_epoch / max_path_points))
    rec = TrajectoryRecorder(every=every)
    if trial is not None:
        trainer = _retrain_trial(*trial, rec, nums)
        lr = float(trainer.state.base_lrs[0])
    else:
        trainer = _train(spec, split, epochs=epochs, batch_size=batch_size, seed=seed, lr=lr,
                         optimizer=optimizer, callbacks=[rec])
    net, loss_fn = trainer.model, trainer.loss_fn
    last = trainer.history.epochs[-1]
    nums.update({"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
                 "train_loss": float(trainer.evaluate(train)["loss"]),
                 "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
                 "path_points": len(rec.weights)})

    # 1-D: initial → final
    theta0, theta1 = rec.weights[0], rec.weights[-1]
    curves = {}
    alphas, curves["train"] = line_loss(net, loss_fn, X, y, theta0, theta1)
    if split.val is not None:
        _, curves["validation"] = line_loss(net, loss_fn, split.val.X, split.val.y, theta0,
                                            theta1)
    fig = plot_line(alphas, curves, title=f"Loss from initial (α=0) to final (α=1) weights\n"
                                          f"{dataset}, {_describe(spec)}, {optimizer} "
                                          f"lr={lr:g}, B={batch_size}, {_epochs(epochs)}")
    report.files.append(_save(fig, out / "landscape_line.png"))
    L_init = float(curves["train"][alphas == 0.0][0])
    L_final = float(curves["train"][alphas == 1.0][0])
    inside = float(curves["train"][(alphas >= 0) & (alphas <= 1)].max())
    nums.update({"line_loss_init": L_init, "line_loss_final": L_final,
                 # Goodfellow et al.: no bump between start and end ⇒ barrier 0
                 "line_barrier": inside - max(L_init, L_final)})

    # 2-D: the path's PCA plane, and filter-normalized random directions
    coords, dirs, explained = trajectory_pca(rec.weights)
    box = path_extent(coords, margin=0.2, scale=span)
    t0 = time.perf_counter()
    a, b, L = slice_2d(net, loss_fn, X, y, dirs[0], dirs[1], grid=grid, span=box)
    nums["slice_seconds"] = round(time.perf_counter() - t0, 3)
    nums["pca_explained_variance"] = [round(float(v), 4) for v in explained]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    cs = _draw_slice(axes[0], a, b, L, path=coords,
                     xlabel=f"PCA direction 1 of the path ({100 * float(explained[0]):.1f}% "
                            "of its variance; parameter units)",
                     ylabel=f"PCA direction 2 ({100 * float(explained[1]):.1f}%; "
                            "parameter units)",
                     title="Training path on its PCA plane")
    _colorbar(fig, cs, axes[0], log=True)
    _random_slice_panel(fig, axes[1], net, loss_fn, X, y, grid, span, seed, radius, nums)
    fig.suptitle(f"Training-loss landscape: {dataset}, {_describe(spec)}, {optimizer} "
                 f"lr={lr:g}, B={batch_size}, {_epochs(epochs)}", fontsize=13, y=1.01)
    fig.tight_layout()
    report.files.append(_save(fig, out / "landscape_slice.png"))

    if compare_batch_sizes is not None:
        small, large = compare_batch_sizes
        models: dict[str, nn.Module] = {}
        notes: dict[str, str] = {}
        small_tr = trainer if small == batch_size else _train(
            spec, split, epochs=epochs, batch_size=small, seed=seed, lr=lr, optimizer=optimizer)
        target = float(small_tr.evaluate(train)["loss"])
        # the large batch takes fewer updates per epoch: let it train until it reaches the
        # small-batch model's training loss (at most as many updates), so that the two minima
        # are compared at the same training loss, not a trained one against an unfinished one
        updates = small_tr.history.n_steps
        large_epochs = max(epochs, math.ceil(updates / math.ceil(len(train) / large)))
        large_tr = _train(spec, split, epochs=large_epochs, batch_size=large, seed=seed, lr=lr,
                          optimizer=optimizer, callbacks=[_StopAtTrainLoss(target)])
        for label, bs, tr in (("small", small, small_tr), ("large", large, large_tr)):
            models[label] = tr.model
            val_acc = tr.history.epochs[-1].get("val_accuracy")
            train_loss = float(tr.evaluate(train)["loss"])
            n_epochs = len(tr.history.epochs)
            notes[label] = (f"{_epochs(n_epochs)}, {tr.history.n_steps} updates; train loss "
                            f"{train_loss:.3g}"
                            + (f", val accuracy {val_acc:.3f}" if val_acc is not None else ""))
            nums[f"compare_{label}"] = {"batch_size": bs, "epochs": n_epochs,
                                        "updates": tr.history.n_steps, "train_loss": train_loss,
                                        "val_accuracy": val_acc}
        fig = plot_sharp_vs_flat(models["small"], models["large"], loss_fn, X, y,
                                 small_batch_size=small, large_batch_size=large, grid=grid,
                                 span=span, seed=seed, radius=radius, notes=notes)
        for label in ("small", "large"):
            nums[f"compare_{label}"].update(sharpness(models[label], loss_fn, X, y,
                                                      radius=radius, seed=seed))
        report.files.append(_save(fig, out / "sharp_vs_flat.png"))
    return report


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _describe(spec: Any) -> str:
    if isinstance(spec, Mapping):
        kind = spec.get("type", "mlp")
        hidden = spec.get("hidden")
        return f"{kind} {list(hidden)}" if hidden is not None else str(kind)
    return str(spec)


def _random_slice_panel(fig: Figure, ax: plt.Axes, net: nn.Module, loss_fn: LossFn, X: Tensor,
                        y: Tensor, grid: int, span: float, seed: int, radius: float,
                        nums: dict[str, Any], title: str | None = None,
                        center_label: str = "end (final weights)") -> None:
    d1, d2 = random_directions(net, seed=seed)
    t0 = time.perf_counter()
    a, b, L = slice_2d(net, loss_fn, X, y, d1, d2, grid=grid, span=span)
    nums["random_slice_seconds"] = round(time.perf_counter() - t0, 3)
    sharp = sharpness(net, loss_fn, X, y, radius=radius, seed=seed)
    nums["loss_center"] = sharp["loss"]
    nums["sharpness"] = sharp["sharpness"]
    nums["sharpness_radius"] = radius
    cs = _draw_slice(ax, a, b, L, xlabel="direction 1 (filter-normalized; 1 = size of the "
                                         "weights)",
                     ylabel="direction 2 (filter-normalized)",
                     title=title or f"Random filter-normalized directions (Li et al. 2018)\n"
                                    f"sharpness {sharp['sharpness']:.3g} at r = {radius:g}",
                     center_label=center_label)
    _colorbar(fig, cs, ax, log=True)


def _random_slice_figure(net: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, grid: int,
                         span: float, seed: int, radius: float, out: Path,
                         report: LandscapeReport, title: str) -> None:
    fig = plt.figure(figsize=(7.2, 5.6))
    ax = fig.add_subplot()
    _random_slice_panel(fig, ax, net, loss_fn, X, y, grid, span, seed, radius, report.numbers,
                        center_label="checkpoint weights")
    fig.suptitle(title, fontsize=12, y=1.02)
    report.files.append(_save(fig, out / "landscape_slice.png"))


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["LandscapeReport", "landscape_report", "plot_line", "plot_sharp_vs_flat",
           "plot_slice"]
