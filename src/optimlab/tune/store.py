"""A search in the store: its row, its trials and their values after each epoch.

A search is a lab study (``studies``; its trials, in ``trials``, are the configurations the
search trained, one per distinct configuration) plus the tables of :mod:`optimlab.lab.store`'s
schema 4: ``searches`` (the search's settings and the confirmation study it links to),
``search_trials`` (each trial the sampler drew: number, parameters and their distributions,
the attributes Optuna's sampler and pruner set, state, value, epochs trained, the lab trial
that trained it and the process that owns it while it runs) and ``search_values`` (the
monitored value after each epoch: what the pruners compare). Everything is written through the
lab's connection, in ``BEGIN IMMEDIATE`` transactions, so the store stays the single source of
truth: a kill at any moment leaves each transaction done or not.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab.store import Store, StoreError, _guarded, _pid_alive

__all__ = ["STATES", "SearchTrial", "abandoned", "add_search_trial", "ensure_search",
           "finish_search_trial", "is_search", "link_confirmation", "record_value", "search_row",
           "search_trials", "set_system_attrs", "take_over"]

#: the states of a search trial (running, then one of the others)
STATES = ("running", "complete", "pruned", "failed", "diverged")
FINAL_STATES = STATES[1:]


@dataclass
class SearchTrial:
    """One trial of a search as stored. ``params`` are Optuna's values (labels for
    categorical choices), ``distributions`` Optuna's JSON for each, ``values`` the monitored
    value after each epoch (step = epochs trained; None where it was not finite)."""

    number: int
    state: str
    params: dict[str, Any]
    distributions: dict[str, str]
    system_attrs: dict[str, Any]
    user_attrs: dict[str, Any]
    value: float | None
    epochs: int | None
    error: str | None
    trial_id: int | None
    key: str | None
    host: str | None
    pid: int | None
    run: str | None
    heartbeat: float | None
    started: float | None
    finished: float | None
    values: dict[int, float | None] = field(default_factory=dict)

    @property
    def finished_state(self) -> bool:
        return self.state in FINAL_STATES


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@_guarded
def is_search(store: Store, study_id: int) -> bool:
    """Whether the lab study ``study_id`` is the study of a search."""
    return store.conn.execute("SELECT 1 FROM searches WHERE study_id = ?",
                              (study_id,)).fetchone() is not None


@_guarded
def search_row(store: Store, study_id: int) -> dict[str, Any] | None:
    """The search of lab study ``study_id``: id, settings, confirmation study id."""
    row = store.conn.execute("SELECT id, settings, confirmation_id, created, updated FROM "
                             "searches WHERE study_id = ?", (study_id,)).fetchone()
    if row is None:
        return None
    return {"id": int(row["id"]), "settings": json.loads(row["settings"]),
            "confirmation_id": row["confirmation_id"], "created": row["created"],
            "updated": row["updated"]}


@_guarded
def ensure_search(store: Store, study_id: int, settings: dict[str, Any],
                  check: Callable[[dict[str, Any]], None]) -> int:
    """The id of the search of study ``study_id``, created with ``settings`` if new; when it
    exists, ``check(stored_settings)`` runs first (it raises to refuse)."""
    now = time.time()
    with store.transaction() as c:
        row = c.execute("SELECT id, settings FROM searches WHERE study_id = ?",
                        (study_id,)).fetchone()
        if row is None:
            cur = c.execute("INSERT INTO searches (study_id, settings, created, updated) "
                            "VALUES (?, ?, ?, ?)", (study_id, json.dumps(settings), now, now))
            return int(cur.lastrowid)  # type: ignore[arg-type]
        check(json.loads(row["settings"]))
        c.execute("UPDATE searches SET updated = ? WHERE id = ?", (now, row["id"]))
        return int(row["id"])


def search_trials(conn: sqlite3.Connection, search_id: int) -> list[SearchTrial]:
    """Every trial of the search, by number, with its values after each epoch."""
    values: dict[int, dict[int, float | None]] = {}
    for r in conn.execute("SELECT number, step, value FROM search_values WHERE search_id = ? "
                          "ORDER BY number, step", (search_id,)):
        values.setdefault(int(r[0]), {})[int(r[1])] = r[2]
    out = []
    for r in conn.execute("SELECT number, state, params, distributions, system_attrs, "
                          "user_attrs, value, epochs, error, trial_id, key, host, pid, run, "
                          "heartbeat, started, finished FROM search_trials WHERE search_id = ? "
                          "ORDER BY number", (search_id,)):
        out.append(SearchTrial(
            number=int(r[0]), state=r[1], params=json.loads(r[2]),
            distributions=json.loads(r[3]), system_attrs=json.loads(r[4]),
            user_attrs=json.loads(r[5]), value=r[6], epochs=r[7], error=r[8], trial_id=r[9],
            key=r[10], host=r[11], pid=r[12], run=r[13], heartbeat=r[14], started=r[15],
            finished=r[16], values=values.get(int(r[0]), {})))
    return out


def abandoned(trial: SearchTrial, stale_after: float = 900.0) -> bool:
    """A running trial whose process is gone: on this host its pid no longer exists;
    elsewhere its heartbeat is older than ``stale_after`` seconds."""
    if trial.state != "running":
        return False
    if trial.host == socket.gethostname() and trial.pid is not None:
        if trial.pid == os.getpid():
            return False
        if not _pid_alive(trial.pid):
            return True
    return trial.heartbeat is None or time.time() - trial.heartbeat >= stale_after


def take_over(conn: sqlite3.Connection, search_id: int, number: int, run: str) -> None:
    """Make this process the owner of an abandoned running trial (inside a transaction)."""
    now = time.time()
    conn.execute("UPDATE search_trials SET host = ?, pid = ?, run = ?, heartbeat = ? WHERE "
                 "search_id = ? AND number = ?",
                 (socket.gethostname(), os.getpid(), run, now, search_id, number))


def add_search_trial(conn: sqlite3.Connection, search_id: int, study_id: int, number: int,
                     frozen: Any, *, run: str, key: str | None = None, label: str = "",
                     config: dict[str, Any] | None = None, seed: int = 0,
                     error: str | None = None) -> int | None:
    """Record trial ``number`` as Optuna drew it (``frozen``: its FrozenTrial), owned by this
    process, and the lab trial that trains its configuration (``key``; added unless the study
    has it already: a configuration drawn twice is trained once). With ``error`` the trial is
    recorded as failed (its settings could not train). Returns the lab trial's id. Runs inside
    a transaction."""
    from optuna.distributions import distribution_to_json

    now = time.time()
    trial_id = None
    if key is not None and config is not None:
        conn.execute("INSERT OR IGNORE INTO trials (study_id, key, label, config, seed, "
                     "position) VALUES (?, ?, ?, ?, ?, ?)",
                     (study_id, key, label, json.dumps(config, sort_keys=True, allow_nan=True),
                      seed, number))
        trial_id = int(conn.execute("SELECT id FROM trials WHERE study_id = ? AND key = ?",
                                    (study_id, key)).fetchone()[0])
    conn.execute(
        "INSERT INTO search_trials (search_id, number, trial_id, key, state, params, "
        "distributions, system_attrs, user_attrs, error, host, pid, run, heartbeat, started, "
        "finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (search_id, number, trial_id, key, "failed" if error else "running",
         json.dumps(frozen.params),
         json.dumps({k: distribution_to_json(d) for k, d in frozen.distributions.items()}),
         json.dumps(frozen.system_attrs, default=str), json.dumps(frozen.user_attrs,
                                                                   default=str),
         error, socket.gethostname(), os.getpid(), run, now, now, now if error else None))
    return trial_id


@_guarded
def record_value(store: Store, search_id: int, number: int, step: int, value: float) -> None:
    """The monitored value after ``step`` epochs (written again by a resumed trial: the same
    value), and the trial's heartbeat."""
    with store.transaction() as c:
        c.execute("INSERT OR REPLACE INTO search_values VALUES (?, ?, ?, ?)",
                  (search_id, number, step, _num(value)))
        c.execute("UPDATE search_trials SET heartbeat = ? WHERE search_id = ? AND number = ?",
                  (time.time(), search_id, number))


@_guarded
def heartbeat(store: Store, search_id: int, number: int) -> None:
    with store.transaction() as c:
        c.execute("UPDATE search_trials SET heartbeat = ? WHERE search_id = ? AND number = ?",
                  (time.time(), search_id, number))


@_guarded
def set_system_attrs(store: Store, search_id: int, number: int, attrs: dict[str, Any]) -> None:
    """Replace the Optuna system attributes of a trial (a pruner's rungs)."""
    with store.transaction() as c:
        c.execute("UPDATE search_trials SET system_attrs = ? WHERE search_id = ? AND number = ?",
                  (json.dumps(attrs, default=str), search_id, number))


@_guarded
def finish_search_trial(store: Store, search_id: int, number: int, *, state: str,
                        value: float | None, epochs: int | None, error: str | None,
                        values: Sequence[tuple[int, float | None]],
                        user_attrs: dict[str, Any] | None = None) -> None:
    """Record how trial ``number`` ended, with its values after each epoch (from the lab
    trial's record), in one transaction. Idempotent: the same record gives the same row."""
    if state not in FINAL_STATES:
        raise ValueError(f"state={state!r}: a finished search trial is one of {FINAL_STATES}")
    with store.transaction() as c:
        c.execute("DELETE FROM search_values WHERE search_id = ? AND number = ?",
                  (search_id, number))
        c.executemany("INSERT INTO search_values VALUES (?, ?, ?, ?)",
                      [(search_id, number, step, _num(v)) for step, v in values])
        c.execute("UPDATE search_trials SET state = ?, value = ?, epochs = ?, error = ?, "
                  "finished = ?, user_attrs = COALESCE(?, user_attrs) WHERE search_id = ? "
                  "AND number = ?",
                  (state, _num(value), epochs, error, time.time(),
                   json.dumps(user_attrs, default=str) if user_attrs is not None else None,
                   search_id, number))


@_guarded
def link_confirmation(store: Store, search_id: int, study_id: int) -> None:
    """Link the confirmation study to its search."""
    with store.transaction() as c:
        c.execute("UPDATE searches SET confirmation_id = ?, updated = ? WHERE id = ?",
                  (study_id, time.time(), search_id))


@_guarded
def read_trials(store: Store, search_id: int) -> list[SearchTrial]:
    """:func:`search_trials` through the store's connection (outside a transaction)."""
    return search_trials(store.conn, search_id)


def check_store(store: Store) -> None:
    """Refuse a store opened read-only for a search that must write."""
    if store.read_only:
        raise StoreError(f"{store.path} is read-only: a search writes its trials there; make "
                         "it writable or give another --db")
