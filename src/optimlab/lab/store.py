"""The store: one SQLite file that is the single source of truth for every study in it.

Tables: ``meta`` (marks the file as optimlab's and gives the schema version), ``studies``,
``trials`` (configuration, seed, status, timings, environment, final and best metrics),
``epochs`` (one row of metrics per trial and epoch) and ``steps`` (loss, learning rate and
gradient norm per update, downsampled to at most ``MAX_STEP_ROWS`` per trial).

Safety, by construction:

* WAL journal with ``synchronous=NORMAL``: readers never block the writer, and a ``kill -9`` at any
  moment leaves the file consistent (SQLite's journal rolls back an unfinished transaction).
* A trial's results are written in **one** transaction: a finished trial is in the store whole,
  or not at all.
* Claiming a trial is a ``BEGIN IMMEDIATE`` transaction, so two runners on one file never run
  the same trial, and lose no rows (the busy timeout makes writers wait for each other).
* A trial left ``running`` by a process that died is reclaimed: on this host when its process no
  longer exists, on any host when its heartbeat is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MAX_STEP_ROWS = 2000
FINISHED = ("completed", "early_stopped", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id),
    key TEXT NOT NULL, label TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    host TEXT, pid INTEGER, started REAL, heartbeat REAL, finished REAL,
    wall_time REAL, train_time REAL, steps INTEGER, stop_step INTEGER, reason TEXT,
    error TEXT, env TEXT, final TEXT, best TEXT, target TEXT,
    UNIQUE (study_id, key));
CREATE INDEX IF NOT EXISTS trials_by_status ON trials (study_id, status);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id INTEGER NOT NULL REFERENCES trials(id), epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL, PRIMARY KEY (trial_id, epoch));
CREATE TABLE IF NOT EXISTS steps (
    trial_id INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL,
    loss REAL, lr REAL, grad_norm REAL, PRIMARY KEY (trial_id, step));
"""


class StoreError(ValueError):
    """A store file that cannot be used (corrupt, foreign, newer schema); says which and why."""


@dataclass
class TrialRow:
    """One trial as stored."""

    id: int
    study_id: int
    key: str
    label: str
    config: dict[str, Any]
    seed: int
    position: int
    status: str
    attempts: int
    host: str | None
    pid: int | None
    started: float | None
    finished: float | None
    wall_time: float | None
    train_time: float | None
    steps: int | None
    stop_step: int | None
    reason: str | None
    error: str | None
    env: dict[str, Any] | None
    final: dict[str, float] | None
    best: dict[str, Any] | None
    target: dict[str, Any] | None


def _dumps(value: Any, *, sort_keys: bool = True) -> str:
    """JSON with NaN/Inf as null (JSON has no NaN; ``_loads`` turns null back into NaN)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), sort_keys=sort_keys)


def _loads(text: str | None) -> Any:
    if text is None:
        return None

    def fix(v: Any) -> Any:
        if v is None:
            return math.nan
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(json.loads(text))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def downsample(n: int, limit: int = MAX_STEP_ROWS) -> list[int]:
    """Indices of at most ``limit`` of ``n`` rows, evenly spread, first and last kept."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


class Store:
    """An optimlab store file. ``Store(path)`` creates it if absent and checks it if present."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 timeout: float = 60.0) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise StoreError(f"no store at {self.path}; run a study first (optimlab compare or "
                             "optimlab run SPEC)")
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            if fresh:  # idempotent statements: two processes creating the file at once agree
                self.conn.executescript(_SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('app', 'optimlab')")
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                  (str(SCHEMA_VERSION),))
            else:
                self._check()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a usable SQLite file ({err}); give another "
                             "path or move this file away") from None

    def _check(self) -> None:
        tables = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not an optimlab store (no meta "
                             "table); give another path")
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        if meta.get("app") != "optimlab":
            raise StoreError(f"{self.path} is not an optimlab store (app={meta.get('app')!r})")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer optimlab (schema {version}); "
                             "upgrade optimlab to read it")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error): takes the write lock first."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- studies and trials ------------------------------------------------------------------
    def ensure_study(self, name: str, spec: dict[str, Any]) -> int:
        """The study's id, created if new; its stored spec is updated to ``spec``."""
        now = time.time()
        text = _dumps(spec, sort_keys=False)  # key order matters: axes order makes the labels
        with self.transaction() as c:
            row = c.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = c.execute("INSERT INTO studies (name, spec, created, updated) "
                                "VALUES (?, ?, ?, ?)", (name, text, now, now))
                return int(cur.lastrowid)  # type: ignore[arg-type]
            c.execute("UPDATE studies SET spec = ?, updated = ? WHERE id = ?",
                      (text, now, row[0]))
            return int(row[0])

    def add_trials(self, study_id: int,
                   trials: Sequence[tuple[str, str, dict[str, Any], int]]) -> int:
        """Add (key, label, config, seed) trials not yet in the study; return how many were new."""
        with self.transaction() as c:
            before = c.total_changes
            for position, (key, label, config, seed) in enumerate(trials):
                c.execute("INSERT OR IGNORE INTO trials (study_id, key, label, config, seed, "
                          "position) VALUES (?, ?, ?, ?, ?, ?)",
                          (study_id, key, label, _dumps(config), seed, position))
            return c.total_changes - before

    def claim(self, study_id: int, keys: Sequence[str] | None = None, *,
              stale_after: float = 900.0) -> TrialRow | None:
        """Mark the next runnable trial ``running`` for this process and return it.

        Runnable: pending, failed (retried once more), or running but abandoned — its process
        is gone (same host) or its heartbeat is older than ``stale_after`` seconds.
        """
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self.transaction() as c:
            rows = c.execute("SELECT id, key, status, host, pid, heartbeat, attempts FROM trials "
                             "WHERE study_id = ? AND status NOT IN (?, ?, ?) ORDER BY position",
                             (study_id, *FINISHED)).fetchall()
            wanted = set(keys) if keys is not None else None
            for tid, key, status, t_host, t_pid, beat, attempts in rows:
                if wanted is not None and key not in wanted:
                    continue
                if status == "failed" and attempts >= 2:
                    continue
                if status == "running":
                    alive = (_pid_alive(t_pid) if t_host == host and t_pid is not None
                             else True)
                    fresh = beat is not None and now - beat < stale_after
                    if alive and fresh:
                        continue
                c.execute("UPDATE trials SET status = 'running', host = ?, pid = ?, "
                          "started = COALESCE(started, ?), heartbeat = ?, "
                          "attempts = attempts + 1, error = NULL WHERE id = ?",
                          (host, pid, now, now, tid))
                return self.trial(tid)
        return None

    def heartbeat(self, trial_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE trials SET heartbeat = ? WHERE id = ?", (time.time(), trial_id))

    def finish(self, trial_id: int, *, status: str, wall_time: float, train_time: float,
               steps: int, stop_step: int | None, reason: str, env: dict[str, Any],
               final: dict[str, float], best: dict[str, Any], target: dict[str, Any] | None,
               epochs: Sequence[dict[str, float]], step_rows: dict[str, list[float]]) -> None:
        """Record a finished trial and all its curves in one transaction."""
        n = len(step_rows.get("step", []))
        keep = downsample(n)
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE trial_id = ?", (trial_id,))
            c.execute("DELETE FROM steps WHERE trial_id = ?", (trial_id,))
            c.executemany("INSERT INTO epochs VALUES (?, ?, ?)",
                          [(trial_id, int(e["epoch"]), _dumps(e)) for e in epochs])
            c.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?)", [
                (trial_id, int(step_rows["step"][i]), _num(step_rows["loss"][i]),
                 _num(step_rows["lr"][i]), _num(step_rows["grad_norm"][i])) for i in keep])
            c.execute("UPDATE trials SET status = ?, finished = ?, wall_time = ?, "
                      "train_time = ?, steps = ?, stop_step = ?, reason = ?, env = ?, "
                      "final = ?, best = ?, target = ?, error = NULL WHERE id = ?",
                      (status, time.time(), wall_time, train_time, steps, stop_step, reason,
                       _dumps(env), _dumps(final), _dumps(best),
                       _dumps(target) if target is not None else None, trial_id))

    def fail(self, trial_id: int, error: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE trials SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                      (error, time.time(), trial_id))

    # -- reading ---------------------------------------------------------------------------------
    def studies(self) -> list[dict[str, Any]]:
        """Every study with its trial counts by status."""
        out = []
        for sid, name, created, updated in self.conn.execute(
                "SELECT id, name, created, updated FROM studies ORDER BY created"):
            counts = dict(self.conn.execute(
                "SELECT status, COUNT(*) FROM trials WHERE study_id = ? GROUP BY status", (sid,)))
            out.append({"id": sid, "name": name, "created": created, "updated": updated,
                        "trials": sum(counts.values()), "by_status": counts})
        return out

    def study(self, name: str | None = None) -> tuple[int, str, dict[str, Any]]:
        """(id, name, spec) of the study called ``name`` (the only or latest one when None)."""
        if name is None:
            row = self.conn.execute(
                "SELECT id, name, spec FROM studies ORDER BY updated DESC LIMIT 1").fetchone()
            if row is None:
                raise StoreError(f"{self.path} holds no study yet")
        else:
            row = self.conn.execute("SELECT id, name, spec FROM studies WHERE name = ?",
                                    (name,)).fetchone()
            if row is None:
                names = [s["name"] for s in self.studies()]
                raise StoreError(f"no study {name!r} in {self.path}; it has: "
                                 f"{', '.join(names) or 'none'}")
        return int(row[0]), str(row[1]), json.loads(row[2])

    def trial(self, trial_id: int) -> TrialRow:
        return self._rows("WHERE id = ?", (trial_id,))[0]

    def trials(self, study_id: int, keys: Sequence[str] | None = None) -> list[TrialRow]:
        rows = self._rows("WHERE study_id = ? ORDER BY position", (study_id,))
        if keys is not None:
            wanted = set(keys)
            rows = [r for r in rows if r.key in wanted]
        return rows

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[TrialRow]:
        cols = ("id, study_id, key, label, config, seed, position, status, attempts, host, pid, "
                "started, finished, wall_time, train_time, steps, stop_step, reason, error, env, "
                "final, best, target")
        out = []
        for r in self.conn.execute(f"SELECT {cols} FROM trials {where}", args):
            out.append(TrialRow(*r[:4], json.loads(r[4]), *r[5:19], _loads(r[19]),
                                _loads(r[20]), _loads(r[21]), _loads(r[22])))
        return out

    def epochs(self, trial_id: int) -> list[dict[str, float]]:
        return [_loads(m) for (m,) in self.conn.execute(
            "SELECT metrics FROM epochs WHERE trial_id = ? ORDER BY epoch", (trial_id,))]

    def steps(self, trial_id: int) -> dict[str, list[float]]:
        rows = self.conn.execute("SELECT step, loss, lr, grad_norm FROM steps WHERE trial_id = ? "
                                 "ORDER BY step", (trial_id,)).fetchall()
        out: dict[str, list[float]] = {"step": [], "loss": [], "lr": [], "grad_norm": []}
        for step, loss, lr, gn in rows:
            out["step"].append(step)
            out["loss"].append(math.nan if loss is None else loss)
            out["lr"].append(math.nan if lr is None else lr)
            out["grad_norm"].append(math.nan if gn is None else gn)
        return out


def _num(x: float) -> float | None:
    return x if x is not None and math.isfinite(x) else None
