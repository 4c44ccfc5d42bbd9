"""ReduceLROnPlateau, GradientMonitor, TimeToTarget and the loggers (CSV, JSON lines,
TensorBoard): behaviour against independent references, inside real fits, and across resume."""

from __future__ import annotations

import csv
import json
import math
import sys
import warnings

import pytest
import torch
from torch import nn

from optimlab.train import Trainer
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import ModelCheckpoint
from optimlab.train.callbacks.logging import CSVLogger, JSONLogger, TensorBoardLogger
from optimlab.train.callbacks.monitor import GradientMonitor, GradientWarning, TimeToTarget
from optimlab.train.callbacks.plateau import ReduceLROnPlateau
from optimlab.train.history import History


def deep(depth: int, act: type[nn.Module] | None, width: int = 32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    d = 64
    for _ in range(depth):
        layers.append(nn.Linear(d, width))
        if act is not None:
            layers.append(act())
        d = width
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


class Script(Callback):
    """Overwrites one epoch-log key with scripted values (placed before the callback tested)."""

    def __init__(self, key: str, values: list[float]) -> None:
        self.key, self.values = key, values

    def on_epoch_end(self, state: State) -> None:
        state.logs[self.key] = self.values[state.epoch]


def fake_state(lr: float = 0.5) -> State:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return State(model=model, optimizer=opt, history=History())


# ---------------------------------------------------------------- ReduceLROnPlateau
def _torch_factors(values, lr, **kw):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for v in values:
        sched.step(v)
        out.append(opt.param_groups[0]["lr"] / lr)
    return out


def _ours(values, lr, cb):
    state = fake_state(lr)
    out = []
    for epoch, v in enumerate(values):
        state.epoch, state.logs = epoch, {"val_loss": v, "val_accuracy": v}
        cb.on_epoch_end(state)
        state.optimizer.param_groups[0]["lr"] = lr * state.lr_factor  # what the Trainer does
        out.append(state.lr_factor)
    return out


SEQUENCES = {
    "noisy_down": [1.0, 0.9, 0.85, 0.86, 0.85, 0.849, 0.8499, 0.87, 0.7, 0.71, 0.72, 0.73,
                   0.70, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69, 0.5, 0.5, 0.5, 0.5],
    "flat": [2.0] * 30,
    "with_nan": [1.0, float("nan"), 0.9, float("nan"), float("nan"), float("inf"), 0.9, 0.95,
                 0.8, 0.8, 0.8, 0.8],
    "tiny_gains": [1.0 - 1e-5 * i for i in range(20)] + [0.5 - 0.01 * i for i in range(10)],
}


@pytest.mark.parametrize("seq", sorted(SEQUENCES))
@pytest.mark.parametrize("kw", [
    {},
    {"patience": 0},
    {"patience": 2, "cooldown": 3, "factor": 0.5},
    {"patience": 1, "factor": 0.3, "min_lr": 0.01},
    {"patience": 1, "mode": "max", "factor": 0.5},
    {"patience": 2, "threshold_mode": "abs", "threshold": 0.02, "cooldown": 1},
    {"patience": 1, "mode": "max", "threshold_mode": "abs", "threshold": 0.05, "min_lr": 0.2},
    {"patience": 0, "factor": 0.1, "min_lr": 1e-9},  # the eps rule stops tiny reductions
])
def test_plateau_matches_torch(seq, kw):
    values = SEQUENCES[seq]
    lr = 0.5
    expected = _torch_factors(values, lr, **kw)
    ours = ReduceLROnPlateau(
        "val_loss" if kw.get("mode", "min") == "min" else "val_accuracy",
        mode=kw.get("mode", "min"), factor=kw.get("factor", 0.1),
        patience=kw.get("patience", 10), cooldown=kw.get("cooldown", 0),
        min_lr=kw.get("min_lr", 0.0), min_delta=kw.get("threshold", 1e-4),
        min_delta_mode=kw.get("threshold_mode", "rel"))
    got = _ours(values, lr, ours)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert len(ours.reductions) == len({f for f in expected if f != 1.0})


def test_plateau_rel_threshold_on_negative_values():
    # rel threshold is b − |b|·δ: a slightly worse negative value is not an improvement
    cb = ReduceLROnPlateau("val_loss", mode="min", patience=0, min_delta=1e-3)
    got = _ours([-1.0, -0.9995, -0.9995], 1.0, cb)
    assert got == pytest.approx([1.0, 0.1, 0.01])


def test_plateau_validates_and_needs_the_key():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="min_delta_mode"):
        ReduceLROnPlateau(min_delta_mode="pct")
    with pytest.raises(ValueError, match="patience"):
        ReduceLROnPlateau(patience=-1)
    state = fake_state()
    state.logs = {"train_loss": 1.0}
    with pytest.raises(ValueError, match="val_loss"):
        ReduceLROnPlateau().on_epoch_end(state)


def test_plateau_composes_with_a_schedule_in_a_fit(mlp, digits_split):
    def schedule(t: int) -> float:
        return 0.05 / (1 + 0.01 * t)

    scripted = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8]
    plateau = ReduceLROnPlateau(patience=1, factor=0.5)
    tr = Trainer(mlp(), optimizer="sgd", lr=0.05, schedule=schedule, progress=False,
                 callbacks=[Script("val_loss", scripted), plateau])
    h = tr.fit(digits_split.train, digits_split.val, epochs=len(scripted), batch_size=256)
    # torch's scheduler on the same values gives the factor in force after each epoch
    after = _torch_factors(scripted, 1.0, patience=1, factor=0.5)
    factor_in_epoch = [1.0, *after[:-1]]
    for step, epoch, lr in zip(h.steps["step"], h.steps["epoch"], h.steps["lr"], strict=True):
        assert lr == pytest.approx(schedule(step - 1) * factor_in_epoch[epoch], rel=1e-12)
    assert tr.state.lr_factor == after[-1] == 0.25
    assert [r["epoch"] for r in plateau.reductions] == [3, 6]


def test_plateau_rejects_torch_scheduler_and_resumes(mlp, digits_split, tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5)
    tr = Trainer(model, optimizer=opt, schedule=sched, callbacks=[ReduceLROnPlateau()],
                 progress=False)
    with pytest.raises(ValueError, match="torch LR scheduler"):
        tr.fit(digits_split.train, digits_split.val, epochs=1)
    cb = ReduceLROnPlateau(patience=1, cooldown=2)
    cb.best, cb.num_bad_epochs, cb.cooldown_counter, cb.mode = 0.3, 1, 2, "min"
    cb.reductions.append({"epoch": 4, "step": 40, "factor": 0.1})
    saved = cb.state_dict()
    torch.save(saved, tmp_path / "s.pt")
    other = ReduceLROnPlateau(patience=1, cooldown=2)
    other.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert other.state_dict() == saved


# ---------------------------------------------------------------- GradientMonitor
class GradProbe(Callback):
    """Independent reference: each parameter's gradient norm, by name, at every update."""

    def __init__(self) -> None:
        self.norms: list[dict[str, float]] = []

    def on_before_update(self, state: State) -> None:
        self.norms.append({n: float(torch.linalg.vector_norm(p.grad.double()))
                           for n, p in state.model.named_parameters() if p.grad is not None})


def test_gradient_norms_equal_an_independent_computation(mlp, digits_split):
    probe = GradProbe()
    by_layer, by_param = GradientMonitor(), GradientMonitor(by="param")
    every3 = GradientMonitor(every=3, record=True)
    tr = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                 callbacks=[probe, by_layer, by_param, every3])
    h = tr.fit(digits_split.train, epochs=2, batch_size=128)
    n = h.n_steps
    assert by_layer.steps == list(range(1, n + 1)) == h.steps["step"]
    assert by_layer.layers == ["0", "2"]
    assert by_param.layers == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for i, ref in enumerate(probe.norms):
        for name, value in ref.items():
            assert by_param.norms[name][i] == pytest.approx(value, rel=1e-5)
        for layer in ("0", "2"):
            w, b = ref[f"{layer}.weight"], ref[f"{layer}.bias"]
            assert by_layer.norms[layer][i] == pytest.approx(math.hypot(w, b), rel=1e-5)
    # the layer norms reproduce the Trainer's global grad norm
    glob = [math.sqrt(sum(by_layer.norms[k][i] ** 2 for k in ("0", "2"))) for i in range(n)]
    assert glob == pytest.approx(h.steps["grad_norm"], rel=1e-5)
    assert every3.steps == list(range(3, n + 1, 3))
    assert every3.norms["0"] == pytest.approx([by_layer.norms["0"][s - 1] for s in every3.steps])
    # per-epoch summary over that epoch's updates
    assert [s["epoch"] for s in by_layer.summary] == [0, 1]
    epoch0 = [v for v, e in zip(by_layer.norms["2"], h.steps["epoch"], strict=True) if e == 0]
    assert by_layer.summary[0]["mean"]["2"] == pytest.approx(sum(epoch0) / len(epoch0))
    assert by_layer.summary[0]["max"]["2"] == pytest.approx(max(epoch0))
    assert by_layer.events == [] and by_layer.summary[0]["vanishing"] == 0


def test_vanishing_gradients_in_a_deep_sigmoid_network(digits_split):
    # notes: sigmoid' ≤ 0.25, so the gradient shrinks layer by layer toward the input
    monitor = GradientMonitor(vanishing=1e-7, record=False)
    model = deep(10, nn.Sigmoid)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(model, optimizer="sgd", lr=0.05, callbacks=[monitor],
                progress=False).fit(digits_split.train, epochs=1, batch_size=64)
    messages = [str(w.message) for w in caught if w.category is GradientWarning]
    assert any("vanishing gradient in layer '0'" in m for m in messages)
    assert len(messages) == len({(e["layer"], e["kind"]) for e in monitor.events})  # once each
    mean = monitor.summary[0]["mean"]
    layers = list(mean)
    assert layers[0] == "0" and layers[-1] == "20"
    assert mean["0"] < 1e-7 < 1e-3 < mean["20"]
    assert mean["0"] < mean["8"] < mean["14"] < mean["20"]  # shrinking toward the input
    flagged = {e["layer"] for e in monitor.events if e["kind"] == "vanishing"}
    assert "0" in flagged and "20" not in flagged
    assert all(e["value"] < 1e-7 for e in monitor.events)
    assert monitor.summary[0]["vanishing"] == len(monitor.events)
    assert monitor.steps == [] and monitor.norms["0"] == []  # record=False keeps no series
    # the same depth with ReLU does not vanish
    relu = GradientMonitor(vanishing=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        Trainer(deep(10, nn.ReLU), optimizer="sgd", lr=0.01, callbacks=[relu],
                progress=False).fit(digits_split.train, max_steps=5, batch_size=64)
    assert relu.events == []


def test_exploding_and_nonfinite_gradients(mlp, digits_split):
    model = deep(8, None)
    with torch.no_grad():
        for m in model:
            m.weight.mul_(6.0)  # each linear layer multiplies the signal (and gradient) up
    monitor = GradientMonitor(exploding=1e3)
    with pytest.warns(GradientWarning, match="exploding"):
        Trainer(model, optimizer="sgd", lr=1e-9, callbacks=[monitor],
                progress=False).fit(digits_split.train, max_steps=3, batch_size=64)
    kinds = {(e["layer"], e["kind"]) for e in monitor.events}
    assert ("0", "exploding") in kinds
    assert all(e["value"] > 1e3 for e in monitor.events)
    # warned once per (layer, kind); every occurrence is an event
    assert len([e for e in monitor.events if e["layer"] == "0"]) == 3

    class Poison(Callback):
        def on_before_update(self, state: State) -> None:
            if state.step == 1:
                state.model[2].weight.grad[0, 0] = float("nan")

    watch = GradientMonitor()
    with pytest.warns(GradientWarning, match="nonfinite gradient in layer '2' at step 2"):
        h = Trainer(mlp(), optimizer="sgd", lr=0.05, callbacks=[Poison(), watch],
                    progress=False).fit(digits_split.train, epochs=1, batch_size=64)
    assert h.status == "diverged"
    first = watch.events[0]
    assert (first["step"], first["layer"], first["kind"]) == (2, "2", "nonfinite")
    assert math.isnan(first["value"])
    assert not any(e["layer"] == "0" and e["step"] == 2 for e in watch.events)


def test_gradient_monitor_validates_and_state_round_trips(tmp_path):
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(every=0)
    with pytest.raises(ValueError, match="below"):
        GradientMonitor(vanishing=10.0, exploding=1.0)
    with pytest.raises(ValueError, match="by"):
        GradientMonitor(by="module")
    m = GradientMonitor()
    m.steps, m.norms = [1, 2], {"0": [0.5, math.nan]}
    m.events = [{"step": 2, "epoch": 0, "layer": "0", "kind": "nonfinite", "value": math.nan}]
    torch.save(m.state_dict(), tmp_path / "g.pt")
    other = GradientMonitor()
    other.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=True))
    assert other.steps == [1, 2] and other.norms["0"][0] == 0.5
    assert math.isnan(other.norms["0"][1]) and other.events[0]["kind"] == "nonfinite"


# ---------------------------------------------------------------- TimeToTarget
def test_time_to_target_at_epoch_end(mlp, digits_split):
    scripted = [0.5, 0.8, 0.96, 0.97, 0.99]
    ttt = TimeToTarget("val_accuracy", target=0.95)
    tr = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                 callbacks=[Script("val_accuracy", scripted), ttt])
    h = tr.fit(digits_split.train, digits_split.val, epochs=5, batch_size=128)
    spe = tr.state.steps_per_epoch
    assert (ttt.reached, ttt.epoch, ttt.step, ttt.value) == (True, 2, 3 * spe, 0.96)
    assert ttt.seconds == pytest.approx(sum(e["time"] for e in h.epochs[:3]), rel=1e-9)
    assert h.epochs[2]["steps_to_target"] == 3 * spe
    assert h.epochs[2]["seconds_to_target"] == ttt.seconds
    assert "steps_to_target" not in h.epochs[3] and h.status == "completed"
    assert h["steps_to_target"][2] == 3 * spe


def test_time_to_target_stops_and_never_reached(mlp, digits_split):
    ttt = TimeToTarget("val_loss", target=10.0, stop=True, name="loss10")  # min mode: ≤ 10
    h = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                callbacks=[ttt]).fit(digits_split.train, digits_split.val, epochs=5, batch_size=128)
    assert ttt.mode == "min" and ttt.epoch == 0 and len(h.epochs) == 1
    assert h.status == "stopped" and "val_loss reached 10" in h.reason
    assert "steps_to_loss10" in h.epochs[0]
    never = TimeToTarget("val_accuracy", target=1.01)
    h = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                callbacks=[never]).fit(digits_split.train, digits_split.val, epochs=2,
                                       batch_size=256)
    assert not never.reached and never.step is None and never.seconds is None
    with pytest.raises(ValueError, match="val_accuracy"):
        Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                callbacks=[TimeToTarget()]).fit(digits_split.train, epochs=1)


def test_time_to_target_on_the_step_loss(mlp, digits_split):
    ttt = TimeToTarget("loss", target=1.5, stop=True)
    tr = Trainer(mlp(), optimizer="sgd", lr=0.1, progress=False, callbacks=[ttt])
    h = tr.fit(digits_split.train, epochs=20, batch_size=32)
    first = next(s for s, v in zip(h.steps["step"], h.steps["loss"], strict=True) if v <= 1.5)
    assert ttt.step == first == h.n_steps  # stopped right after that update
    assert 0 < ttt.seconds <= tr.state.elapsed
    assert h.epochs[-1]["steps_to_target"] == first


# ---------------------------------------------------------------- loggers
def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_and_json_loggers(mlp, digits_split, tmp_path):
    csv_path, json_path = tmp_path / "log" / "e.csv", tmp_path / "log" / "e.jsonl"

    class Flush(Callback):  # the file holds each epoch's row before the next epoch starts
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_epoch_start(self, state: State) -> None:
            if state.epoch:
                self.seen.append(len(_read_csv(csv_path)))

    flush = Flush()
    ttt = TimeToTarget("score", target=0.5, mode="max")
    h = Trainer(mlp(), optimizer="sgd", lr=0.1, metrics=["accuracy"], progress=False,
                callbacks=[flush, Script("score", [0.1, 0.3, 0.6, 0.7]), ttt,
                           CSVLogger(csv_path), JSONLogger(json_path)]
                ).fit(digits_split.train, digits_split.val, epochs=4, batch_size=64)
    rows = _read_csv(csv_path)
    assert flush.seen == [1, 2, 3]
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    for row, rec in zip(rows, h.epochs, strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy", "lr", "time"):
            assert float(row[key]) == rec[key]  # repr: exact round trip
    # the TimeToTarget key appeared later: the header widened, earlier rows left empty
    k = ttt.epoch
    assert k == 2 and [r["score"] for r in rows] == ["0.1", "0.3", "0.6", "0.7"]
    assert "steps_to_target" in rows[0] and rows[k]["steps_to_target"] == str(ttt.step)
    assert all(r["steps_to_target"] == "" for i, r in enumerate(rows) if i != k)
    lines = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["epoch"] * 4 + ["end"]
    assert lines[1]["epoch"] == 1 and lines[1]["val_loss"] == h.epochs[1]["val_loss"]
    assert lines[-1]["status"] == "completed" and lines[-1]["steps"] == h.n_steps


class Explode(Callback):
    """Makes the weights infinite after update ``at``: the next loss is not finite."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, state: State) -> None:
        if state.step == self.at:
            with torch.no_grad():
                state.model[0].weight.fill_(float("inf"))


def test_loggers_on_divergence(mlp, digits_split, tmp_path):
    h = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                callbacks=[Explode(30), CSVLogger(tmp_path / "d.csv"),
                           JSONLogger(tmp_path / "d.jsonl")]
                ).fit(digits_split.train, digits_split.val, epochs=5, batch_size=64)
    assert h.status == "diverged" and len(h.epochs) == 2  # 23 updates per epoch
    assert len(_read_csv(tmp_path / "d.csv")) == len(h.epochs)
    text = (tmp_path / "d.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(h.epochs) + 1
    end = lines[-1]
    assert end["status"] == "diverged" and end["stop_step"] == h.stop_step and end["reason"]


def test_resume_is_exact_and_loggers_drop_rows_after_the_checkpoint(mlp, digits_split, tmp_path):
    ckpt = tmp_path / "ck"
    csv_path, json_path = tmp_path / "e.csv", tmp_path / "e.jsonl"
    scripted = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8]

    def trainer() -> Trainer:
        # ModelCheckpoint last: it saves what the other callbacks did at this epoch's end
        return Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                       callbacks=[Script("val_loss", scripted), TimeToTarget("val_loss", 0.9),
                                  GradientMonitor(), ReduceLROnPlateau(patience=0, factor=0.5),
                                  CSVLogger(csv_path), JSONLogger(json_path),
                                  ModelCheckpoint(ckpt, every=2)])

    ref = trainer()
    full = ref.fit(digits_split.train, digits_split.val, epochs=6, batch_size=128)
    # a crash after epoch 4: rows 0-4 on disk, last.pt from epoch 3, a torn JSON line
    crashed = trainer().fit(digits_split.train, digits_split.val, epochs=5, batch_size=128)
    assert len(crashed.epochs) == 5
    lines = json_path.read_text().splitlines()[:-1]  # no "end" line: it crashed
    json_path.write_text("\n".join(lines) + '\n{"event": "epo')
    tr = trainer()
    resumed = tr.fit(digits_split.train, digits_split.val, epochs=6, batch_size=128,
                     resume=str(ckpt / "last.pt"))
    assert resumed.steps["lr"] == full.steps["lr"]  # the plateau's factor resumed exactly
    assert resumed["train_loss"] == full["train_loss"]
    rows = _read_csv(csv_path)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert [float(r["train_loss"]) for r in rows] == full["train_loss"]
    items = [json.loads(x) for x in json_path.read_text().splitlines()]
    assert [x.get("epoch") for x in items if x["event"] == "epoch"] == [0, 1, 2, 3, 4, 5]
    assert items[-1]["event"] == "end" and items[-1]["status"] == "completed"
    for name in ("steps", "norms", "events", "summary"):
        if name != "norms":
            assert getattr(tr.callbacks[2], name) == getattr(ref.callbacks[2], name)
    assert list(tr.callbacks[2].norms) == ["0", "2"]
    for layer, values in ref.callbacks[2].norms.items():
        assert tr.callbacks[2].norms[layer] == pytest.approx(values, rel=1e-6)
    assert tr.callbacks[3].reductions == ref.callbacks[3].reductions
    assert [r["epoch"] for r in ref.callbacks[3].reductions] == [2, 3, 4]
    assert (tr.callbacks[1].step, tr.callbacks[1].epoch) == (ref.callbacks[1].step, 1)
    assert resumed.epochs[1]["steps_to_target"] == ref.callbacks[1].step


def test_tensorboard_missing_raises_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path)


def test_tensorboard_logger(mlp, digits_split, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    h = Trainer(mlp(), optimizer="sgd", lr=0.05, progress=False,
                callbacks=[TensorBoardLogger(tmp_path / "tb", per_step=True, step_every=2)]
                ).fit(digits_split.train, digits_split.val, epochs=2, batch_size=256)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"epoch/val_loss", "epoch/train_loss", "epoch/lr", "step/loss"} <= tags
    val = acc.Scalars("epoch/val_loss")
    assert [e.value for e in val] == pytest.approx(h["val_loss"], rel=1e-6)
    spe = len(h.steps["step"]) // 2
    assert [e.step for e in val] == [spe, 2 * spe]
    assert [e.step for e in acc.Scalars("step/loss")] == list(range(2, h.n_steps + 1, 2))
