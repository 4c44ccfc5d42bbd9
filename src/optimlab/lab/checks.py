"""Everything that would fail inside a trial, found before the first one (``optimlab validate``,
and ``run``/``compare`` before they start).

The spec alone is checked when it is parsed (:mod:`optimlab.lab.spec`). Here the data is
loaded — a missing file or column, non-numeric features, NaN/inf, one row, one class, an empty
or header-only file, ragged rows, a non-UTF-8 file are each a :class:`~optimlab.errors.DataError`
naming the file and the fix — and each configuration is built for it: the model, the loss and
metrics for the data's task, the optimizer with its hyperparameters, the monitored metric and
the target metric. What is legal but probably not meant (a schedule that ends before training
does) comes back as warnings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab.grid import configurations
from optimlab.lab.spec import SpecError, StudySpec, check_monitor
from optimlab.lab.spec_schedule import resolve_schedule, schedule_end
from optimlab.lab.studydata import StudyData


@dataclass
class StudyFacts:
    """What the checks learned: the data's shape and task, and each configuration's size."""

    task: str
    rows: int
    train: int
    val: int
    test: int
    feature_shape: tuple[int, ...]
    n_classes: int | None
    fingerprint: str
    device: str
    #: parameters of each configuration's model
    params: dict[str, int] = field(default_factory=dict)
    #: the largest parameters × rows-per-update over the configurations (multiply-adds of one
    #: forward pass): what decides whether more threads pay
    work_per_step: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        classes = f", {self.n_classes} classes" if self.n_classes else ""
        shape = "×".join(map(str, self.feature_shape))
        return (f"{self.rows} rows × {shape} features ({self.task}{classes}) → {self.train} "
                f"train / {self.val} val / {self.test} test")


def resolve_device(device: str) -> str:
    """``"cpu"``, ``"cuda"`` (checked to exist) or ``"auto"`` → cuda when torch sees a GPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device = \"cuda\" but torch sees no GPU here (torch.cuda.is_available() "
                        "is False); use device = \"cpu\", or \"auto\" to use a GPU when there "
                        "is one")
    return device


def updates_per_epoch(n_train: int, settings: dict[str, Any]) -> int:
    """Optimizer updates in one epoch of ``n_train`` rows with these settings."""
    batch = settings["batch_size"] or n_train
    batches = n_train // batch if settings["drop_last"] else math.ceil(n_train / batch)
    return max(1, batches // settings["accumulate"])


def check_study(spec: StudySpec, device: str | None = None) -> tuple[StudySpec, StudyFacts]:
    """Load the data and build every configuration once; return the spec with the data's
    fingerprint filled in, and what was learned. Raises ``SpecError`` / ``DataError``."""
    chosen = resolve_device(device or spec.device)
    data_spec = spec.data.model_copy(update={"fingerprint": None})
    data = StudyData(data_spec)
    parts = data.split(spec.seed_list[0])
    train, val = parts.train, parts.val
    task = train.task
    facts = StudyFacts(task=task, rows=len(data.dataset), train=len(train),
                       val=len(val) if val is not None else 0,
                       test=len(parts.test) if parts.test is not None else 0,
                       feature_shape=tuple(int(s) for s in train.X.shape[1:]),
                       n_classes=train.n_classes, fingerprint=data.fingerprint, device=chosen)
    shape = facts.feature_shape
    for label, settings in configurations(spec):
        try:
            params = _check_configuration(spec, settings, train, task, shape, facts, label)
        except SpecError:
            raise
        except (ValueError, TypeError, KeyError) as err:
            raise SpecError(f"configuration {label!r}: {err}") from None
        except RuntimeError as err:  # torch refusing the model on this data (shapes)
            raise SpecError(f"configuration {label!r}: the model does not fit the data "
                            f"({str(err).splitlines()[0]})") from None
        facts.params[label] = params
        rows = (settings["batch_size"] or facts.train) * settings["accumulate"]
        facts.work_per_step = max(facts.work_per_step, float(params * rows))
    fingerprinted = spec.model_copy(update={"data": spec.data.model_copy(
        update={"fingerprint": data.fingerprint})})
    return fingerprinted, facts


def _check_configuration(spec: StudySpec, settings: dict[str, Any], train: Any, task: str,
                         shape: tuple[int, ...], facts: StudyFacts, label: str) -> int:
    import torch

    from optimlab.models import build_model, n_outputs
    from optimlab.models.losses import check_targets, get_loss
    from optimlab.models.tasks import task_defaults
    from optimlab.optim import available, create
    from optimlab.train.metrics import default_metrics, get_metric

    model = build_model(settings["model"], shape if len(shape) > 1 else shape[0],
                        n_outputs(task, train.n_classes, tuple(train.y.shape)),
                        task=task, seed=0)
    loss = get_loss(settings["loss"] if settings["loss"] is not None
                    else task_defaults(task)["loss"], task)
    metrics = settings["metrics"] if settings["metrics"] is not None else default_metrics(task)
    for m in metrics:
        get_metric(m, task)
    monitor = settings["monitor"] or ("val_accuracy" if task != "regression" else "val_loss")
    check_monitor("monitor", monitor, metrics, task)
    if spec.target is not None:
        check_monitor("target.metric", spec.target.metric, metrics, task, step_keys=True)
    lr = settings["lr"]
    if lr == "find":  # the range test finds it; any rate builds the optimizer
        lr = 1e-3
    if lr is None:
        lr = available()[settings["optimizer"]]["defaults"]["lr"]
    kwargs = dict(settings["optimizer_kwargs"])
    if isinstance(kwargs.get("betas"), list):
        kwargs["betas"] = tuple(kwargs["betas"])
    create(settings["optimizer"], model.parameters(), lr=lr, **kwargs)
    with torch.no_grad():
        model.eval()
        out = model(train.X[:2])
    check_targets(loss.name, out, train.y[:2], task=task)
    if settings["schedule"] is not None:
        _schedule_warning(settings, lr, facts, label)
    if settings.get("lr_find") is not None and settings["lr"] != "find":
        facts.warnings.append(f"configuration {label!r}: lr_find sets the range test, but its "
                              f"lr is {settings['lr']!r}, not \"find\": no range test runs")
    return sum(p.numel() for p in model.parameters())


def _schedule_warning(settings: dict[str, Any], lr: float, facts: StudyFacts,
                      label: str) -> None:
    from optimlab.schedules import create

    resolved = resolve_schedule(settings["schedule"], lr)
    end = schedule_end(resolved)
    if end is None:
        return
    per_epoch = updates_per_epoch(facts.train, settings)
    unit = settings["schedule_unit"]
    if unit == "epoch":
        total = settings["epochs"] or math.ceil(settings["max_steps"] / per_epoch)
    else:
        total = (settings["epochs"] or math.inf) * per_epoch
        if settings["max_steps"] is not None:
            total = min(total, settings["max_steps"])
    if end >= total:
        return
    final = create(**resolved)(end)
    facts.warnings.append(
        f"configuration {label!r}: the schedule {resolved['name']} reaches its end at {unit} "
        f"{end} but training runs {int(total)} {unit}s, so the last {int(total) - end} train "
        f"at lr = {final:.3g}; lengthen the schedule (e.g. total = {int(total)}) or shorten "
        "the training")
