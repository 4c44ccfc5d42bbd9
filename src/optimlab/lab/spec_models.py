"""The study spec's models (pydantic): the data, the training settings and their extras, the
target and the whole study, with the checks of each value and the size limits. The TOML format
and the entry points that read it (:func:`optimlab.lab.spec.parse_spec`, ``load_spec``) are in
:mod:`optimlab.lab.spec`, which re-exports these names.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimlab._checks import check_choice, check_number
from optimlab.errors import UserError
from optimlab.lab.spec_schedule import explicit_lrs, own_rates, resolve_schedule

#: size limits: beyond these a study would hang or exhaust memory before it could say so
MAX_SEEDS = 1000
MAX_CONFIGS = 2000
MAX_TRIALS = 20000
MAX_WIDTH = 65536        # units or channels in one layer
MAX_LAYERS = 256

class SpecError(UserError):
    """A study spec that cannot run; the message says where and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def check_text(what: str, value: str) -> str:
    """A name or label: not blank, at most 200 characters, no control characters (a terminal
    escape in a label would repaint the screen instead of showing the label)."""
    if not value.strip():
        raise ValueError(f"{what}={value!r} is blank; give it a name")
    if len(value) > 200:
        raise ValueError(f"{what} is {len(value)} characters long; keep it under 200")
    bad = [c for c in value if unicodedata.category(c) in ("Cc", "Cf") and c != " "]
    if bad:
        shown = ", ".join(repr(c) for c in dict.fromkeys(bad))
        raise ValueError(f"{what}={value!r} holds control characters ({shown}); write it as "
                         "plain text")
    return value


class DataSpec(_Strict):
    """Where the data come from and how it is split (the same split for every trial, unless
    ``resplit``: then the split is drawn again for every seed, from the seed).

    ``split = "kfold"``: k-fold cross-validation. The ``test`` share is held out first (the
    same rows for every fold); the rest is cut into ``folds`` parts (5 by default; stratified
    by class for classification), and each trial trains on all parts but one and validates on
    that one. ``repeats`` (default 1) cuts the rest again with another shuffle each time
    (repeated k-fold): folds × repeats trials per configuration and seed.
    """

    dataset: str | None = None
    csv: str | None = None
    npz: str | None = None
    target: str | int | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    split: Literal["holdout", "time", "kfold"] = "holdout"
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    standardize: bool = True
    resplit: bool = False
    #: k-fold cross-validation (split = "kfold"): parts, and how many times to cut them
    folds: int | None = None
    repeats: int | None = None
    #: filled in by the runner: a SHA-256 of the loaded data, part of every trial's key, so an
    #: edited file is new data (leave it out of a spec)
    fingerprint: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("dataset", "csv", "npz") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dataset (a name), csv (a file) or npz (a file)")
        if self.csv is not None and self.target is None:
            raise ValueError("csv needs target = the name or index of the target column")
        if self.target is not None and self.csv is None:
            raise ValueError(f"target={self.target!r} names a column of a csv file; a "
                             f"{given[0]} brings its own target: remove target")
        from optimlab.data import available

        names = available()
        if self.dataset is not None:
            if self.dataset not in names or self.dataset in ("csv", "npz"):
                raise ValueError(f"dataset={self.dataset!r} is unknown; available: "
                                 f"{', '.join(n for n in names if n not in ('csv', 'npz'))} "
                                 "(or csv = \"file.csv\" with target = \"column\")")
            takes = names[self.dataset]["parameters"]
        else:
            takes = {k: v for k, v in names[given[0]]["parameters"].items()
                     if k not in ("path", "target", "task", "name")}
        unknown = sorted(set(self.options) - set(takes))
        if unknown:
            source = self.dataset or given[0]
            raise ValueError(f"options {unknown} do not apply to {source}; it takes "
                             f"{', '.join(takes) or 'no options'}")
        check_number("val", self.val, low=0.0, high=0.9)
        check_number("test", self.test, low=0.0, high=0.9)
        if self.val == 0:
            raise ValueError("val must be > 0: the lab compares configurations on validation "
                             "data")
        if self.val + self.test >= 1:
            raise ValueError(f"val={self.val} + test={self.test} leaves nothing to train on; "
                             "make their sum less than 1")
        check_number("seed", self.seed, low=0, integer=True)
        if self.resplit and self.split == "time":
            raise ValueError("resplit=true draws a new random split per seed, but split = "
                             "\"time\" is not random; use one or the other")
        self._check_kfold()
        return self

    def _check_kfold(self) -> None:
        if self.split != "kfold":
            for name in ("folds", "repeats"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}={getattr(self, name)!r} applies to k-fold "
                                     "cross-validation: add split = \"kfold\", or remove "
                                     f"{name}")
            return
        if self.folds is not None:
            check_number("folds", self.folds, low=2, high=1000, integer=True)
        if self.repeats is not None:
            check_number("repeats", self.repeats, low=1, high=100, integer=True)
        if self.val != type(self).model_fields["val"].default:  # (a stored spec repeats it)
            raise ValueError(f"val={self.val!r} does not apply to split = \"kfold\": each fold "
                             "validates on 1/folds of the rows that are not test; remove val "
                             "(set folds instead)")
        if self.resplit:
            raise ValueError("resplit=true draws a new split per seed; with split = \"kfold\" "
                             "the folds already vary the split (and repeats cuts them again): "
                             "remove resplit")

    @property
    def n_folds(self) -> int:
        """Parts of the k-fold split (0 without one)."""
        return (self.folds or 5) if self.split == "kfold" else 0

    @property
    def fold_ids(self) -> list[int | None]:
        """The folds of every trial: ``repeat · folds + part`` for k-fold, else ``[None]``."""
        if self.split != "kfold":
            return [None]
        return list(range(self.n_folds * (self.repeats or 1)))

    def identity(self) -> dict[str, Any]:
        """What makes two studies' data the same source (everything but the content hash)."""
        return self.model_dump(exclude={"fingerprint"})

    def describe(self) -> str:
        """``dataset 'wine'`` / ``csv /path/x.csv (target 'y')``, with split and options."""
        if self.dataset is not None:
            source = f"dataset {self.dataset!r}"
        elif self.csv is not None:
            source = f"csv {self.csv} (target {self.target!r})"
        else:
            source = f"npz {self.npz}"
        extra = f", options {self.options}" if self.options else ""
        if self.split == "kfold":
            repeats = f" × {self.repeats} repeats" if (self.repeats or 1) > 1 else ""
            return (f"{source}{extra}, {self.n_folds}-fold split{repeats} test {self.test:g} "
                    f"seed {self.seed}")
        return (f"{source}{extra}, {self.split} split val {self.val:g} test {self.test:g} "
                f"seed {self.seed}" + (", resplit per seed" if self.resplit else ""))


class SWASpec(_Strict):
    """Stochastic weight averaging from ``start_epoch`` (0-based), at ``lr`` if given."""

    start_epoch: int
    lr: float | None = None
    anneal_epochs: int = 0


class EMASpec(_Strict):
    """An exponential moving average of the weights, w̄ ← β·w̄ + (1 − β)·w after every step."""

    decay: float = 0.999


class SnapshotSpec(_Strict):
    """Snapshot ensemble: ``cycles`` cosine cycles from lr down to ``lr_min``; the ensemble of
    the snapshots is what the trial is scored on."""

    cycles: int
    lr_min: float = 0.0


class PlateauSpec(_Strict):
    """Reduce-on-plateau on the study's monitored metric: lr × ``factor`` after ``patience``
    epochs without improvement."""

    factor: float = 0.1
    patience: int = 10
    cooldown: int = 0
    min_lr: float = 0.0
    min_delta: float = 1e-4


class LRFindSpec(_Strict):
    """The learning-rate range test of a configuration with ``lr = "find"``
    (:mod:`optimlab.train.lr_find`; defaults there): lr from ``start`` to ``end`` over at most
    ``num_steps`` updates, EWA ``beta``, stop at ``diverge`` × the minimum, the suggestion of
    ``rule`` ("minimum", "valley", "steepest") is the lr the trial trains with."""

    start: float | None = None
    end: float | None = None
    num_steps: int | None = None
    beta: float | None = None
    diverge: float | None = None
    rule: Literal["minimum", "valley", "steepest"] | None = None

    @model_validator(mode="after")
    def _check(self) -> LRFindSpec:
        from optimlab.train.lr_find import DEFAULTS, check_settings

        given = self.model_dump()
        check_settings(**{k: given[k] if given[k] is not None else DEFAULTS[k]
                          for k in DEFAULTS})
        return self


class TrainSpec(_Strict):
    """What one trial trains with. Every field may be set in [train], an axis or a config.

    ``lr = "find"`` runs the learning-rate range test (``lr_find``: its settings) on the
    trial's training data before it trains, and trains with the suggested lr. ``restarts = N``
    trains N independent initializations per seed (each a trial) and keeps the one with the
    best monitored validation value.
    """

    model: str | dict[str, Any] = "mlp"
    loss: str | dict[str, Any] | None = None
    metrics: list[str] | None = None
    optimizer: str = "sgd"
    lr: float | Literal["find"] | None = None
    lr_find: LRFindSpec | None = None
    optimizer_kwargs: dict[str, Any] = Field(default_factory=dict)
    schedule: dict[str, Any] | None = None
    schedule_unit: Literal["step", "epoch"] = "step"
    epochs: int | None = 20
    max_steps: int | None = None
    #: an integer, or "full" (also None from Python) for batch gradient descent
    batch_size: int | Literal["full"] | None = 64
    linear_scaling: bool = False
    base_batch_size: int = 64
    drop_last: bool = False
    accumulate: int = 1
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    early_stopping: int | None = None
    monitor: str | None = None
    swa: SWASpec | None = None
    ema: EMASpec | None = None
    snapshot: SnapshotSpec | None = None
    plateau: PlateauSpec | None = None
    layer_grads: bool = False
    restarts: int = 1

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        from optimlab.optim import available

        check_choice("optimizer", v, list(available()))
        return v

    @field_validator("batch_size")
    @classmethod
    def _full_batch(cls, v: int | str | None) -> int | None:
        return None if v == "full" else v  # type: ignore[return-value]

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | dict[str, Any]) -> str | dict[str, Any]:
        from optimlab.models.spec import normalize_spec

        s = normalize_spec(v)  # unknown type, field, activation, init; hidden, dropout ranges
        sizes = [*s.get("channels", []), *s.get("hidden", [])]
        if len(sizes) > MAX_LAYERS:
            raise ValueError(f"model has {len(sizes)} layers; the lab allows at most "
                             f"{MAX_LAYERS}")
        for size in sizes:
            if size > MAX_WIDTH:
                raise ValueError(f"model layer width {size} is over the limit of {MAX_WIDTH} "
                                 "units (it would not fit in memory); use narrower layers")
        return v

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if v is not None:
            from optimlab.models.losses import get_loss

            get_loss(v, None)  # unknown names and bad parameters; the task is checked later
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            from optimlab.train.metrics import get_metric

            for name in v:
                if not get_metric(name).scalar:
                    raise ValueError(f"metric {name!r} is not a single number; the lab stores "
                                     "numbers per epoch")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> TrainSpec:
        if self.lr is not None and self.lr != "find":
            check_number("lr", self.lr, low=0.0)
        if self.lr == "find" and self.linear_scaling:
            raise ValueError("lr=\"find\" measures the lr at this configuration's own batch "
                             "size, so linear_scaling has nothing to scale: remove "
                             "linear_scaling (or give lr a number)")
        check_number("restarts", self.restarts, low=1, high=1000, integer=True)
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs or max_steps")
        for name in ("epochs", "max_steps", "batch_size", "accumulate", "base_batch_size",
                     "early_stopping"):
            value = getattr(self, name)
            if value is not None:
                check_number(name, value, low=1, integer=True)
        for name in ("l1", "l2"):
            check_number(name, getattr(self, name), low=0.0)
        for name in ("clip_grad_norm", "clip_grad_value"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), low=0.0, low_open=True)
        if self.monitor is not None:
            check_monitor("monitor", self.monitor, self.metrics)
        self._check_optimizer()
        self._check_schedule()
        self._check_extras()
        return self

    def _check_optimizer(self) -> None:
        from optimlab.optim import available, create

        allowed = set(available()[self.optimizer]["defaults"]) - {"lr"}
        unknown = sorted(set(self.optimizer_kwargs) - allowed)
        if unknown:
            raise ValueError(f"optimizer_kwargs {unknown} do not apply to {self.optimizer}; it "
                             f"takes {', '.join(sorted(allowed))}")
        import torch

        probe = torch.zeros(1, requires_grad=True)  # builds it once: ranges and types fail here
        kwargs = dict(self.optimizer_kwargs)
        if isinstance(kwargs.get("betas"), list):
            kwargs["betas"] = tuple(kwargs["betas"])
        try:
            create(self.optimizer, [probe], **kwargs)
        except (TypeError, KeyError) as err:
            raise ValueError(f"optimizer_kwargs for {self.optimizer}: {err}") from None

    def _check_schedule(self) -> None:
        if self.schedule is None:
            return
        if "name" not in self.schedule:
            raise ValueError("schedule needs name = one of optimlab.schedules.available()")
        own = own_rates(self.schedule)
        if self.lr == "find" and (own or explicit_lrs(self.schedule)):
            raise ValueError(f"lr=\"find\" sets the learning rate, but schedule "
                             f"{self.schedule['name']!r} names its own "
                             f"({own or 'lr = ' + str(explicit_lrs(self.schedule)[0])}); write "
                             "the schedule without its rate: it then starts at the lr found")
        if own and self.lr is not None:
            raise ValueError(f"lr={self.lr:g} and schedule {self.schedule['name']!r} both set "
                             f"the learning rate ({own}); a schedule in a spec is relative to "
                             "lr: write it without its rate, or move lr out of [train] into "
                             "the configurations without this schedule")
        explicit = explicit_lrs(self.schedule)
        if self.lr not in (None, "find") and any(v != self.lr for v in explicit):
            raise ValueError(f"lr={self.lr:g} but schedule {self.schedule['name']!r} starts at "
                             f"lr={explicit[0]:g}; a schedule in a spec is relative to lr: "
                             "write it without lr (it then starts at lr), or give the same "
                             "value")
        from optimlab.schedules import create

        create(**resolve_schedule(self.schedule, 1.0))  # unknown names or arguments fail here
        if self.snapshot is not None:
            raise ValueError("snapshot sets the learning rate itself (cosine cycles); remove "
                             "the schedule, or the snapshot")

    def _check_extras(self) -> None:
        chosen = [k for k in ("swa", "ema", "snapshot") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join(chosen)} each choose the final weights; use one")
        if chosen and self.early_stopping:
            raise ValueError(f"early_stopping restores the best epoch's weights, and "
                             f"{chosen[0]} replaces them with its own; use one of the two")
        from optimlab.train.callbacks import EMA, SWA, ReduceLROnPlateau, SnapshotEnsemble

        if self.swa is not None:
            SWA(self.swa.start_epoch, self.swa.lr, self.swa.anneal_epochs)
            if self.epochs is not None and self.swa.start_epoch >= self.epochs:
                raise ValueError(f"swa.start_epoch={self.swa.start_epoch} but training runs "
                                 f"{self.epochs} epochs (0..{self.epochs - 1}); SWA would never "
                                 "average")
        if self.ema is not None:
            EMA(self.ema.decay)
        if self.snapshot is not None:
            SnapshotEnsemble(self.snapshot.cycles, lr_min=self.snapshot.lr_min)
            if self.epochs is not None and self.snapshot.cycles > self.epochs:
                raise ValueError(f"snapshot.cycles={self.snapshot.cycles} is more than the "
                                 f"{self.epochs} epochs")
        if self.plateau is not None:
            p = self.plateau
            ReduceLROnPlateau(factor=p.factor, patience=p.patience, cooldown=p.cooldown,
                              min_lr=p.min_lr, min_delta=p.min_delta)
        if self.monitor is not None and self.monitor.startswith("ema_") and self.ema is None:
            raise ValueError(f"monitor={self.monitor!r} is logged by ema; add ema = {{ decay = "
                             "0.999 }} or monitor a val_ metric")


def check_monitor(what: str, key: str, metrics: list[str] | None, task: str | None = None,
                  *, step_keys: bool = False) -> None:
    """``key`` must be a value the trials log: ``val_loss``, ``train_loss``, ``val_<metric>``
    or ``train_<metric>`` for a metric the trials compute (``metrics``, else the task's
    defaults), or ``ema_val_…`` (with ema); ``loss`` too where step keys are allowed."""
    from optimlab.train.metrics import default_metrics, get_metric

    if step_keys and key == "loss":
        return
    name = key.removeprefix("ema_")
    prefix = next((p for p in ("val_", "train_") if name.startswith(p)), None)
    if prefix is None:
        raise ValueError(f"{what}={key!r} is not a logged value; use val_loss, or val_ / "
                         "train_ followed by a metric (val_accuracy, train_loss, …)")
    metric = name.removeprefix(prefix)
    if metric == "loss":
        return
    chosen = metrics if metrics is not None else (default_metrics(task) if task else None)
    try:
        canonical = get_metric(metric, task).name
    except ValueError as err:
        raise ValueError(f"{what}={key!r}: {err}") from None
    if chosen is not None and canonical not in [get_metric(m).name for m in chosen]:
        raise ValueError(f"{what}={key!r}: the trials compute {', '.join(chosen)} (set "
                         f"metrics = [\"{metric}\", …] in [train] to add it); logged values: "
                         + ", ".join(f"val_{m}" for m in ["loss", *chosen]))


class TargetSpec(_Strict):
    metric: str
    value: float

    @model_validator(mode="after")
    def _known(self) -> TargetSpec:
        check_monitor("target.metric", self.metric, None, step_keys=True)
        check_number("target.value", self.value)
        return self


class ResourcesSpec(_Strict):
    """What one trial asks of a Ray cluster (``--executor ray``): CPUs and GPUs per task,
    fractions allowed (``num_gpus = 0.5``: two trials share a GPU). The local executor ignores
    it (``--workers`` sets its parallelism)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    @model_validator(mode="after")
    def _positive(self) -> ResourcesSpec:
        check_number("resources.num_cpus", self.num_cpus, low=0.0, high=1024.0, low_open=True)
        check_number("resources.num_gpus", self.num_gpus, low=0.0, high=64.0)
        return self


class StudySpec(_Strict):
    """The whole study: data, the base training settings, what to sweep, seeds and baseline."""

    name: str = Field(min_length=1)
    description: str = ""
    seeds: int | list[int] = 3
    baseline: str | None = None
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    data: DataSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    configs: list[dict[str, Any]] = Field(default_factory=list)
    target: TargetSpec | None = None
    #: per-trial resources on a Ray cluster; not part of the study's identity (like device)
    resources: ResourcesSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_text("name", v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int):
            check_number("seeds", v, low=1, high=MAX_SEEDS, integer=True)
        else:
            if not v or len(set(v)) != len(v):
                raise ValueError("seeds must be a count or a list of distinct integers")
            if len(v) > MAX_SEEDS:
                raise ValueError(f"seeds lists {len(v)} seeds; the lab allows at most "
                                 f"{MAX_SEEDS}")
            for s in v:
                check_number("seeds[]", s, low=0, high=2**31 - 1, integer=True)
        return v

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        size = 1
        for key, values in v.items():
            if not values:
                raise ValueError(f"axis {key!r} has no values")
            size *= len(values)
            if size > MAX_CONFIGS:
                raise ValueError(f"the axes make more than {MAX_CONFIGS} configurations "
                                 f"({' × '.join(str(len(x)) for x in v.values())}); sweep "
                                 "fewer values")
        return v

    @model_validator(mode="after")
    def _size(self) -> StudySpec:
        n = math.prod(len(x) for x in self.axes.values()) * max(1, len(self.configs))
        if n > MAX_CONFIGS:
            raise ValueError(f"the spec makes {n} configurations; the lab allows at most "
                             f"{MAX_CONFIGS}")
        if n * len(self.seed_list) > MAX_TRIALS:
            raise ValueError(f"the spec makes {n} configurations × {len(self.seed_list)} seeds "
                             f"= {n * len(self.seed_list)} trials; the lab allows at most "
                             f"{MAX_TRIALS}")
        check_trial_count(n, len(self.seed_list), len(self.data.fold_ids), self.train.restarts)
        if self.baseline is not None:
            check_text("baseline", self.baseline)
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


def check_trial_count(configs: int, seeds: int, folds: int, restarts: int) -> None:
    """ValueError when configurations × folds × seeds × restarts passes :data:`MAX_TRIALS`."""
    total = configs * folds * seeds * restarts
    if total > MAX_TRIALS:
        parts = [f"{configs} configurations"]
        if folds > 1:
            parts.append(f"{folds} folds")
        parts.append(f"{seeds} seeds")
        if restarts > 1:
            parts.append(f"{restarts} restarts")
        raise ValueError(f"the spec makes {' × '.join(parts)} = {total} trials; the lab "
                         f"allows at most {MAX_TRIALS}")


def first_error(err: ValidationError) -> str:
    """The first error of a validation, as ``where: message (got value)``."""
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    shown = f"{where}: " if where else ""
    return f"{shown}{msg} (got {e.get('input')!r})" if "input" in e and where else shown + msg
