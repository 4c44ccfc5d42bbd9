"""Monitors: gradient norms per layer (vanishing / exploding), and the time to reach a target."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch

from optimlab._checks import check_choice, check_number
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.monitoring import monitor_mode


class GradientWarning(RuntimeWarning):
    """A layer's gradient vanished, exploded or became NaN/Inf (see :class:`GradientMonitor`)."""


class GradientMonitor(Callback):
    """Per-layer gradient norms at each update, with vanishing / exploding / NaN detection.

    In ``on_before_update`` (gradients in place, before clipping and the optimizer step), every
    ``every``-th update, the norm of each layer's gradient is

        ‖g_layer‖ = √( Σ_{p in layer} ‖∇p‖₂² )

    where a layer is a module holding parameters directly: parameter ``"0.weight"`` and
    ``"0.bias"`` make layer ``"0"``, ``"encoder.fc.weight"`` layer ``"encoder.fc"`` (with
    ``by="param"`` each named parameter is its own entry, ``‖∇p‖₂``). A layer is flagged

        "vanishing"   ‖g‖ < vanishing         (None disables)
        "exploding"   ‖g‖ > exploding         (None disables; a norm that overflows is here)
        "nonfinite"   some gradient entry is NaN or ±Inf

    Each flag is appended to ``events`` as ``{"step", "epoch", "layer", "kind", "value"}`` and,
    the first time a (layer, kind) occurs in a fit, issued as a :class:`GradientWarning` (the
    rest go to ``events`` only). Layers without a gradient at that update are not checked.

    With ``record=True`` the norms are kept per update: ``steps[i]`` is the (1-based) update
    number and ``norms[layer][i]`` its norm (NaN for a layer without a gradient then). Each
    epoch appends to ``summary`` ``{"epoch", "mean": {layer: …}, "min": {…}, "max": {…},
    "vanishing": n, "exploding": n, "nonfinite": n}`` over the checked updates (finite norms).
    One device sync per checked update (``torch._foreach_norm``, then one ``tolist``).

    >>> monitor = GradientMonitor(vanishing=1e-6)
    >>> Trainer(deep_sigmoid_mlp, callbacks=[monitor]).fit(train, epochs=1)
    >>> monitor.summary[-1]["mean"]["0"], [e for e in monitor.events if e["layer"] == "0"][:1]
    """

    def __init__(self, vanishing: float | None = 1e-7, exploding: float | None = 1e3,
                 every: int = 1, record: bool = True, *, by: str = "layer") -> None:
        if vanishing is not None:
            check_number("vanishing", vanishing, low=0.0)
        if exploding is not None:
            check_number("exploding", exploding, low=0.0, low_open=True)
        if vanishing is not None and exploding is not None and vanishing >= exploding:
            raise ValueError(f"vanishing={vanishing!r} must be below exploding={exploding!r}")
        check_number("every", every, low=1, integer=True)
        check_choice("by", by, ("layer", "param"))
        self.vanishing, self.exploding, self.every = vanishing, exploding, every
        self.record, self.by = record, by
        self._params: list[torch.nn.Parameter] = []
        self._names: list[str] = []
        self._groups: dict[str, list[int]] = {}
        self._reset()

    def _reset(self) -> None:
        self.steps: list[int] = []
        self.norms: dict[str, list[float]] = {}
        self.events: list[dict[str, Any]] = []
        self.summary: list[dict[str, Any]] = []
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._sum: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._min: dict[str, float] = {}
        self._max: dict[str, float] = {}
        self._counts = {"vanishing": 0, "exploding": 0, "nonfinite": 0}

    @property
    def layers(self) -> list[str]:
        """Layer (or parameter) names, in the model's order."""
        return list(self._groups)

    def on_fit_start(self, state: State) -> None:
        named = [(n, p) for n, p in state.model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._groups = {}
        for i, name in enumerate(self._names):
            key = name if self.by == "param" else (name.rpartition(".")[0] or name)
            self._groups.setdefault(key, []).append(i)
        self._warned: set[tuple[str, str]] = set()
        if not state.history.epochs:  # a fresh fit; a resumed one keeps the loaded records
            self._reset()
        self._new_epoch()
        for key in self._groups:
            self.norms.setdefault(key, [math.nan] * len(self.steps))

    def on_epoch_start(self, state: State) -> None:
        self._new_epoch()

    def on_before_update(self, state: State) -> None:
        step = state.step + 1
        if step % self.every:
            return
        if not self._params:
            self.on_fit_start(state)
        have = [i for i, p in enumerate(self._params) if p.grad is not None]
        sq: list[float] = [math.nan] * len(self._params)
        if have:
            norms = torch._foreach_norm([self._params[i].grad for i in have])  # type: ignore[misc]
            for i, v in zip(have, torch.stack(norms).double().tolist(), strict=True):
                sq[i] = v * v
        if self.record:
            self.steps.append(step)
        for layer, idx in self._groups.items():
            members = [i for i in idx if self._params[i].grad is not None]
            if not members:
                if self.record:
                    self.norms[layer].append(math.nan)
                continue
            value = math.sqrt(math.fsum(sq[i] for i in members))
            if self.record:
                self.norms[layer].append(value)
            self._check(state, step, layer, members, value)
            if math.isfinite(value):
                self._sum[layer] = self._sum.get(layer, 0.0) + value
                self._n[layer] = self._n.get(layer, 0) + 1
                self._min[layer] = min(self._min.get(layer, math.inf), value)
                self._max[layer] = max(self._max.get(layer, -math.inf), value)

    def _check(self, state: State, step: int, layer: str, members: list[int],
               value: float) -> None:
        kind, limit = None, math.nan
        if not math.isfinite(value) and any(
                not bool(torch.isfinite(self._params[i].grad).all())  # type: ignore[arg-type]
                for i in members):
            kind = "nonfinite"
        elif self.exploding is not None and not value <= self.exploding:
            kind, limit = "exploding", self.exploding
        elif self.vanishing is not None and value < self.vanishing:
            kind, limit = "vanishing", self.vanishing
        if kind is None:
            return
        self._counts[kind] += 1
        self.events.append({"step": step, "epoch": state.epoch, "layer": layer, "kind": kind,
                            "value": value})
        if (layer, kind) in self._warned:
            return
        self._warned.add((layer, kind))
        what = {"vanishing": f"< {limit:g}", "exploding": f"> {limit:g}",
                "nonfinite": "(NaN or Inf entries)"}[kind]
        warnings.warn(f"GradientMonitor: {kind} gradient in layer {layer!r} at step {step} "
                      f"(epoch {state.epoch}): norm {value:.3g} {what}; later {kind} events of "
                      "this layer go to monitor.events only", GradientWarning, stacklevel=2)

    def on_epoch_end(self, state: State) -> None:
        self.summary.append({
            "epoch": state.epoch,
            "mean": {k: self._sum[k] / self._n[k] for k in self._groups if self._n.get(k)},
            "min": {k: self._min[k] for k in self._groups if k in self._min},
            "max": {k: self._max[k] for k in self._groups if k in self._max},
            **self._counts})

    def state_dict(self) -> dict[str, Any]:
        return {"steps": torch.tensor(self.steps, dtype=torch.int64),
                "norms": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.norms.items()},
                "events": [dict(e) for e in self.events],
                "summary": [dict(s) for s in self.summary]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [int(s) for s in state["steps"].tolist()]
        self.norms = {k: v.tolist() for k, v in state["norms"].items()}
        self.events = [dict(e) for e in state["events"]]
        self.summary = [dict(s) for s in state["summary"]]


class TimeToTarget(Callback):
    """Record when ``monitor`` first reaches ``target``: the update count and the seconds.

    The target is reached when ``value ≥ target`` (mode "max") or ``value ≤ target`` ("min");
    ``mode="auto"`` reads it from the key (losses go down, accuracy up). A key of the epoch logs
    (``val_accuracy``, ``train_loss``, …) is checked at each epoch end, so the step is the
    number of updates done when that epoch ended and the seconds are ``State.elapsed`` then
    (training and evaluation of every epoch so far, resumed runs included). A key of the step
    logs (``loss``, the mini-batch loss) is checked after every update: the step is that
    update's number and the seconds ``State.elapsed`` plus the time since the epoch began.

    The result is in ``reached``, ``step``, ``epoch``, ``seconds`` and ``value`` (None until
    reached), and in the history: the record of the epoch where it happens gets
    ``steps_to_<name>`` and ``seconds_to_<name>`` (also put into ``State.logs``, so loggers
    listed after this callback write them). With ``stop=True`` the run then ends with status
    ``"stopped"``.

    >>> ttt = TimeToTarget("val_accuracy", target=0.95)
    >>> Trainer(model, callbacks=[ttt]).fit(train, val, epochs=50); ttt.step, ttt.seconds
    """

    def __init__(self, monitor: str = "val_accuracy", target: float = 0.95, mode: str = "auto",
                 stop: bool = False, *, name: str = "target") -> None:
        check_number("target", target)
        check_choice("mode", mode, ("auto", "min", "max"))
        if not name or not isinstance(name, str):
            raise ValueError(f"name={name!r} must be a non-empty string")
        self.monitor, self.target, self.mode = monitor, target, mode
        self.stop, self.name = stop, name
        self._epoch_started = time.perf_counter()
        self._reset()

    def _reset(self) -> None:
        self.reached = False
        self.step: int | None = None
        self.epoch: int | None = None
        self.seconds: float | None = None
        self.value: float | None = None
        self._written = False
        self._seen_in_steps = False

    @property
    def fields(self) -> tuple[str, str]:
        """The epoch-record keys this callback writes."""
        return f"steps_to_{self.name}", f"seconds_to_{self.name}"

    def on_fit_start(self, state: State) -> None:
        if not state.history.epochs:  # a fresh fit; a resumed one keeps the loaded result
            self._reset()
        if self.mode == "auto":
            self.mode = monitor_mode(self.monitor)

    def on_epoch_start(self, state: State) -> None:
        self._epoch_started = time.perf_counter()

    def _hit(self, value: float) -> bool:
        if self.mode == "auto":
            self.mode = monitor_mode(self.monitor)
        return value >= self.target if self.mode == "max" else value <= self.target

    def _reach(self, state: State, value: float, seconds: float) -> None:
        self.reached, self.step, self.epoch = True, state.step, state.epoch
        self.seconds, self.value = seconds, value
        if self.stop:
            state.request_stop(f"{self.monitor} reached {self.target:g} ({value:.6g}) at step "
                               f"{state.step}, {seconds:.3g} s", status="stopped")

    def on_step_end(self, state: State) -> None:
        if self.reached or self.monitor not in state.logs:
            return
        self._seen_in_steps = True
        value = float(state.logs[self.monitor])
        if self._hit(value):
            self._reach(state, value, state.elapsed + time.perf_counter() - self._epoch_started)

    def on_epoch_end(self, state: State) -> None:
        if not self.reached and not self._seen_in_steps:
            if self.monitor not in state.logs:
                raise ValueError(f"TimeToTarget monitors {self.monitor!r} but the epoch logs "
                                 f"have {', '.join(sorted(state.logs))}; pass validation data "
                                 "to fit() or monitor a train_ key")
            value = float(state.logs[self.monitor])
            if self._hit(value):
                self._reach(state, value, state.elapsed)
        if self.reached and not self._written:
            self._written = True
            steps_key, seconds_key = self.fields
            extra = {steps_key: self.step, seconds_key: self.seconds}
            state.logs.update(extra)
            if state.history.epochs:
                state.history.epochs[-1].update(extra)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        return {"reached": self.reached, "step": self.step, "epoch": self.epoch,
                "seconds": self.seconds, "value": self.value, "written": self._written,
                "mode": self.mode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reached, self.step, self.epoch = state["reached"], state["step"], state["epoch"]
        self.seconds, self.value = state["seconds"], state["value"]
        self._written, self.mode = state["written"], state["mode"]
