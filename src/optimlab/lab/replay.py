"""Replaying a stored trial: train it again from the store, to look inside it.

The store keeps a trial's results, not its weights. A trial is (configuration, seed) with every
setting in the store, and training is deterministic on the CPU for a given thread count, so
training it again gives the very weights the study produced — with any callbacks added, such as
a ``TrajectoryRecorder`` for a loss landscape. :class:`Replay` says whether the replay
reproduced the stored final value of the study's metric (a different machine or thread count
may change the last digits).

>>> with Store("optimlab.db", create=False) as store:
...     replay = replay_trial(store, None, "adam", 0, [TrajectoryRecorder(every=5)])
>>> replay.reproduces, replay.trainer.model
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optimlab.data.splits import Split
from optimlab.lab.runner import build_trainer, monitor_for, prepare_data
from optimlab.lab.spec import StudySpec, TrainSpec, parse_spec
from optimlab.lab.store import FINISHED, Store, TrialRow
from optimlab.lab.trial import final_metrics
from optimlab.schedules.base import ScheduleEndsEarly
from optimlab.train import Trainer
from optimlab.train.callbacks import Callback
from optimlab.train.restarts import restart_seed


@dataclass
class Replay:
    """A trial trained again: its Trainer (model, history), the study's spec, the stored row,
    the data split, and the study's metric as stored and as replayed."""

    trainer: Trainer
    spec: StudySpec
    row: TrialRow
    split: Split
    monitor: str
    stored: Any
    replayed: Any

    @property
    def reproduces(self) -> bool:
        """Whether the replay ended on the stored final value of ``monitor``, exactly."""
        return self.stored == self.replayed


def find_trial(store: Store, study: str | None, label: str | None,
               seed: int) -> tuple[StudySpec, TrialRow]:
    """The spec and the finished trial ``(label, seed)`` of ``study`` (the latest study when
    None; the first configuration when ``label`` is None); ValueError naming what exists."""
    study_id, name, spec_data = store.study(study)
    rows = [r for r in store.trials(study_id) if r.status in FINISHED]
    labels = list(dict.fromkeys(r.label for r in rows))
    if not labels:
        raise ValueError(f"study {name!r} in {store.path} has no finished trial yet")
    label = labels[0] if label is None else label
    match = [r for r in rows if r.label == label and r.seed == seed]
    if not match:
        seeds = sorted({r.seed for r in rows if r.label == label})
        raise ValueError(f"study {name!r} has no finished trial {label!r} with seed {seed}; "
                         f"configurations: {', '.join(labels)}"
                         + (f"; seeds of {label!r}: {seeds}" if seeds else ""))
    return parse_spec(spec_data), match[0]


def replay_trial(store: Store, study: str | None, label: str | None, seed: int,
                 callbacks: Sequence[Callback] = ()) -> Replay:
    """Train the finished trial ``(label, seed)`` of ``study`` again from its stored settings
    (same data split — the seed's own with ``resplit``, its fold's with k-fold —, the seed of
    its restart, the same settings and the callbacks they ask for, such as early stopping; no
    checkpoints), with ``callbacks`` added. In a study with k-fold or restarts, the first
    finished trial of that seed (its lowest fold and restart) is replayed; a trial of
    ``lr = "find"`` trains at the lr its stored range test chose. The replayed value is scored
    as the trial was (:func:`~optimlab.lab.trial.final_metrics`: the restored epoch after early
    stopping, the averaged weights with SWA/EMA)."""
    spec, row = find_trial(store, study, label, seed)
    split = prepare_data(spec.data, row.seed, row.fold)  # its seed's split, its fold
    settings = TrainSpec.model_validate(row.config).model_dump()  # later fields: defaults
    if settings.get("lr") == "find":  # the lr its range test chose, as stored
        found = store.lr_find(row.id) or {}
        if not isinstance(found.get("lr"), int | float):
            raise ValueError(f"trial {row.label!r} (seed {row.seed}) has lr = \"find\" but no "
                             "stored range test to take its lr from")
        settings["lr"] = found["lr"]
    trainer = build_trainer(spec, settings, restart_seed(row.seed, row.restart or 0), split,
                            list(callbacks))
    with warnings.catch_warnings():  # the study's checks reported it when it ran
        warnings.simplefilter("ignore", ScheduleEndsEarly)
        trainer.fit(split.train, split.val, epochs=settings["epochs"],
                    max_steps=settings["max_steps"], batch_size=settings["batch_size"],
                    drop_last=settings["drop_last"])
    monitor = settings.get("monitor") or monitor_for(spec, split.train.task)
    assert trainer.history is not None
    final = final_metrics(trainer, trainer.history, split, settings)
    return Replay(trainer=trainer, spec=spec, row=row, split=split, monitor=monitor,
                  stored=(row.final or {}).get(monitor), replayed=final.get(monitor))
