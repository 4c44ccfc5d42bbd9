"""The store: one SQLite file that is the single source of truth for every study in it.

(Over 500 lines on purpose: the schema, its migrations, the row types and the queries are one
contract that changes together.)

Tables: ``meta`` (marks the file as optimlab's and gives the schema version), ``studies``,
``trials`` (configuration, seed, fold and restart, status, timings, environment, final and best
metrics), ``epochs`` (one row of metrics per trial and epoch), ``steps`` (loss, learning rate
and gradient norm per update, downsampled to at most ``MAX_STEP_ROWS`` per trial),
``layer_grads`` and ``lr_finds`` (the learning-rate range test of a trial with ``lr = "find"``:
its curve, suggestions and the lr it trained with).

Safety, by construction:

* WAL journal with ``synchronous=NORMAL``: readers never block the writer, and a ``kill -9`` at any
  moment leaves the file consistent (SQLite's journal rolls back an unfinished transaction).
* A trial's results are written in **one** transaction: a finished trial is in the store whole,
  or not at all.
* Claiming a trial is a ``BEGIN IMMEDIATE`` transaction, so two runners on one file never run
  the same trial, and lose no rows (the busy timeout makes writers wait for each other).
* A trial left ``running`` by a process that died is reclaimed: on this host when its process no
  longer exists, on any host when its heartbeat is older than ``stale_after`` seconds.
* A damaged, read-only or foreign file is a :class:`StoreError` that names the file and the fix,
  whatever method meets it first (never an ``sqlite3`` traceback).

Rows are read by column name (:class:`TrialRow`); a trial's results come in one
:class:`TrialResult`. NULL means "not measured" and reads as ``None`` (a target not reached has
no step); a metric that was measured but not finite keeps its value (JSON ``NaN``/``Infinity``).
The file carries its schema version (``meta.schema_version``); a file of an older version is
upgraded in place when it is opened (:data:`MIGRATIONS`), one of a newer version is refused.
Schema 1 (optimlab before named rows) wrote NaN as null in metric dicts: its rows are rewritten.

Hyperparameter searches (:mod:`optimlab.tune`) keep their state in three more tables of the same
file: ``searches`` (one per search: its lab study, its settings, the confirmation study),
``search_trials`` (each sampled trial: parameters, distributions, sampler and pruner attributes,
state, value, the lab trial that trained it) and ``search_values`` (the monitored value after
each epoch). Their queries live in :mod:`optimlab.tune.store`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from optimlab.errors import UserError

SCHEMA_VERSION = 4
MAX_STEP_ROWS = 2000
FINISHED = ("completed", "early_stopped", "diverged", "pruned")

#: hyperparameter searches (schema 4): a search is a lab study (its trials train the sampled
#: configurations) plus what the sampler and the pruner need, so a search continues from the
#: store alone; ``state`` is running, complete, pruned, failed or diverged; ``epochs`` how many
#: epochs the trial trained (where a pruned trial stopped)
_SEARCH_TABLES = """
CREATE TABLE IF NOT EXISTS searches (
    id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL UNIQUE REFERENCES studies(id),
    settings TEXT NOT NULL, confirmation_id INTEGER REFERENCES studies(id),
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS search_trials (
    search_id INTEGER NOT NULL REFERENCES searches(id), number INTEGER NOT NULL,
    trial_id INTEGER REFERENCES trials(id), key TEXT, state TEXT NOT NULL,
    params TEXT NOT NULL, distributions TEXT NOT NULL, system_attrs TEXT NOT NULL,
    user_attrs TEXT NOT NULL, value REAL, epochs INTEGER, error TEXT,
    host TEXT, pid INTEGER, run TEXT, heartbeat REAL, started REAL, finished REAL,
    PRIMARY KEY (search_id, number));
CREATE TABLE IF NOT EXISTS search_values (
    search_id INTEGER NOT NULL REFERENCES searches(id), number INTEGER NOT NULL,
    step INTEGER NOT NULL, value REAL, PRIMARY KEY (search_id, number, step));
"""

#: the current schema, for a new file (an older file is upgraded by MIGRATIONS)
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
    device TEXT, traceback TEXT, run TEXT, warnings TEXT, fold INTEGER, restart INTEGER,
    UNIQUE (study_id, key));
CREATE INDEX IF NOT EXISTS trials_by_status ON trials (study_id, status);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id INTEGER NOT NULL REFERENCES trials(id), epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL, PRIMARY KEY (trial_id, epoch));
CREATE TABLE IF NOT EXISTS steps (
    trial_id INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL,
    loss REAL, lr REAL, grad_norm REAL, PRIMARY KEY (trial_id, step));
CREATE TABLE IF NOT EXISTS layer_grads (
    trial_id INTEGER NOT NULL REFERENCES trials(id), epoch INTEGER NOT NULL,
    norms TEXT NOT NULL, PRIMARY KEY (trial_id, epoch));
CREATE TABLE IF NOT EXISTS lr_finds (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id), result TEXT NOT NULL);
""" + _SEARCH_TABLES

#: schema 1 → 2: the device a trial ran on, the traceback of a trial that failed by a bug, the
#: run that last claimed it (a failed trial is retried by a later run, not by the one it failed
#: in), warnings of its run (a corrupt checkpoint set aside), and per-layer gradient norms.
_SCHEMA_1_TO_2 = """
ALTER TABLE trials ADD COLUMN device TEXT;
ALTER TABLE trials ADD COLUMN traceback TEXT;
ALTER TABLE trials ADD COLUMN run TEXT;
ALTER TABLE trials ADD COLUMN warnings TEXT;
CREATE TABLE IF NOT EXISTS layer_grads (
    trial_id INTEGER NOT NULL REFERENCES trials(id), epoch INTEGER NOT NULL,
    norms TEXT NOT NULL, PRIMARY KEY (trial_id, epoch));
"""


#: schema 2 → 3: a trial's fold (k-fold cross-validation) and restart (random restarts), NULL
#: for the trials of ordinary studies; the learning-rate range tests of trials with lr = "find".
_SCHEMA_2_TO_3 = """
ALTER TABLE trials ADD COLUMN fold INTEGER;
ALTER TABLE trials ADD COLUMN restart INTEGER;
CREATE TABLE IF NOT EXISTS lr_finds (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id), result TEXT NOT NULL);
"""


class StoreError(UserError):
    """A store file that cannot be used (damaged, read-only, foreign, newer schema), or a study
    that cannot be stored as asked; the message says which file, why, and what to do."""


@dataclass
class TrialRow:
    """One trial as stored; ``None`` where nothing was measured (yet)."""

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
    device: str | None = None
    traceback: str | None = None
    run: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: the k-fold part it validates on, and its restart (None in an ordinary study)
    fold: int | None = None
    restart: int | None = None


_JSON_COLUMNS = ("config", "env", "final", "best", "target", "warnings")


@dataclass
class TrialResult:
    """What one finished trial hands to :meth:`Store.finish`, stored in one transaction.

    ``wall_time`` is the trial's own time (data already loaded, the worker started);
    ``train_time`` the sum of its epochs' times (training and evaluation). ``epochs`` are the
    history's records, ``step_rows`` its per-update columns (``step``, ``loss``, ``lr``,
    ``grad_norm``; downsampled to :data:`MAX_STEP_ROWS`), ``layer_grads`` one entry per epoch
    ``{"epoch", "mean": {layer: norm}, "min": {…}, "max": {…}}`` when the study monitors
    per-layer gradients; ``lr_find`` the range test of a trial with ``lr = "find"``
    (:meth:`optimlab.train.lr_find.LRFindResult.to_dict`).
    """

    status: str
    wall_time: float
    train_time: float
    steps: int
    stop_step: int | None
    reason: str
    env: dict[str, Any]
    final: dict[str, float]
    best: dict[str, Any]
    target: dict[str, Any] | None
    epochs: Sequence[dict[str, float]]
    step_rows: dict[str, list[float]]
    device: str = "cpu"
    layer_grads: Sequence[dict[str, Any]] = ()
    warnings: Sequence[str] = ()
    lr_find: dict[str, Any] | None = None


def _dumps(value: Any, *, sort_keys: bool = True) -> str:
    """JSON; a non-finite float is written as ``NaN``/``Infinity`` (Python's JSON reads them
    back), so null keeps meaning "not measured"."""
    return json.dumps(value, sort_keys=sort_keys, allow_nan=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _nan_for_null(v: Any) -> Any:
    """Schema 1 wrote a non-finite metric as null: read it back as NaN (for the migration)."""
    if v is None:
        return math.nan
    if isinstance(v, dict):
        return {k: _nan_for_null(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_nan_for_null(x) for x in v]
    return v


def _held(r: Any, host: str, now: float, stale_after: float) -> bool:
    """A running trial's process is alive (when on ``host``) and its heartbeat fresh."""
    alive = _pid_alive(r["pid"]) if r["host"] == host and r["pid"] is not None else True
    return alive and r["heartbeat"] is not None and now - r["heartbeat"] < stale_after


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


def _explain(path: Path, err: sqlite3.Error, timeout: float) -> str:
    """A sentence that says what is wrong with the file ``path`` and what to do."""
    text = str(err)
    low = text.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return (f"{path} is damaged ({text}): move it aside and run the study again into a new "
                f"file (--db); `sqlite3 {path} .recover` may save the rows that are intact")
    if "readonly" in low or "read-only" in low:
        return (f"{path} cannot be written ({text}): make the file and its folder writable, "
                "or give another --db")
    if "locked" in low or "busy" in low:
        return (f"{path} stayed locked by another process for {timeout:g} s ({text}); wait "
                "for it to finish or give another --db")
    return f"cannot use {path} ({text}); check the file and its folder, or give another --db"


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """Turn an ``sqlite3`` error in ``method`` into a :class:`StoreError` naming the file."""
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise StoreError(_explain(self.path, err, self.timeout)) from None
    return wrapper  # type: ignore[return-value]


class Store:
    """An optimlab store file. ``Store(path)`` creates it if absent and checks it if present
    (upgrading an older schema in place)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.read_only = False
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; give the store's file name (--db "
                             "FILE.db)")
        if not self.path.exists() and not create:
            raise StoreError(f"no store at {self.path}; run a study first (optimlab compare or "
                             "optimlab run SPEC)")
        if not self.path.exists() and not self.path.parent.is_dir():
            raise StoreError(f"cannot create the store {self.path}: the folder "
                             f"{self.path.parent} does not exist")
        try:
            self.conn = self._connect()
            if not self._tables() and not self.read_only:
                self._create()
            self._check()
        except sqlite3.Error as err:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            raise StoreError(f"{self.path} is not a usable SQLite file: "
                             f"{_explain(self.path, err, timeout)}") from None
        self.conn.row_factory = sqlite3.Row

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._write_ahead(conn)
        except sqlite3.OperationalError as err:
            if "readonly" not in str(err).lower() and "unable to open" not in str(err).lower():
                raise
            conn.close()  # a read-only file (or folder): open it for reading only
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout,
                                   isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self.read_only = True
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _write_ahead(self, conn: sqlite3.Connection) -> None:
        """``PRAGMA journal_mode = WAL``, tried again while another connection holds the lock:
        SQLite answers "locked" at once here (it does not wait for the busy timeout) when two
        connections switch a new file's journal mode together."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _create(self) -> None:
        """Write the schema into an empty file, in one ``BEGIN IMMEDIATE`` transaction: two
        processes (or threads) creating the file at once take turns, and the second finds the
        tables made (without the write lock first, each could hold a read lock the other's
        write waits for, and SQLite answers "locked" at once instead of waiting)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if not self._tables():
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self.conn.execute(statement)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('app', 'optimlab')")
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                  (str(SCHEMA_VERSION),))
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _check(self) -> None:
        tables = self._tables()
        if "meta" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not an optimlab store (no meta "
                             "table); give another path")
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("app") != "optimlab":
            raise StoreError(f"{self.path} is not an optimlab store (app={meta.get('app')!r})")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer optimlab (schema {version}); "
                             "upgrade optimlab to read it")
        if version < SCHEMA_VERSION:
            if self.read_only:
                raise StoreError(f"{self.path} was written by an older optimlab (schema "
                                 f"{version}) and is read-only here; make it writable once so "
                                 f"it can be upgraded to schema {SCHEMA_VERSION}")
            self._migrate()

    def _migrate(self) -> None:
        """Upgrade the file to :data:`SCHEMA_VERSION` in one transaction (all or nothing; a
        second process opening it at the same time waits, then finds it done)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            for step in MIGRATIONS[version - 1:SCHEMA_VERSION - 1]:
                step(self.conn)
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                              (str(SCHEMA_VERSION),))
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error): takes the write lock first."""
        if self.read_only:
            raise StoreError(f"{self.path} is read-only: make the file and its folder "
                             "writable, or give another --db")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # the error that got us here matters
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- studies and trials ------------------------------------------------------------------
    @_guarded
    def ensure_study(self, name: str, spec: dict[str, Any],
                     check: Callable[[dict[str, Any], list[str]], None] | None = None) -> int:
        """The study's id, created if new; its stored spec is updated to ``spec``.

        ``check(stored_spec, busy)`` runs first, inside the same transaction, when the study
        exists: ``busy`` lists the other live processes (``host:pid``) running its trials now.
        It raises to refuse the new spec (nothing is written then).
        """
        now = time.time()
        text = _dumps(spec, sort_keys=False)  # key order matters: axes order makes the labels
        with self.transaction() as c:
            row = c.execute("SELECT id, spec FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = c.execute("INSERT INTO studies (name, spec, created, updated) "
                                "VALUES (?, ?, ?, ?)", (name, text, now, now))
                return int(cur.lastrowid)  # type: ignore[arg-type]
            if check is not None:
                check(json.loads(row["spec"]), self._busy(c, int(row["id"])))
            c.execute("UPDATE studies SET spec = ?, updated = ? WHERE id = ?",
                      (text, now, row["id"]))
            return int(row["id"])

    def _busy(self, c: sqlite3.Connection, study_id: int, stale_after: float = 900.0
              ) -> list[str]:
        """Other processes that hold a running trial of the study and are alive."""
        host, me, now = socket.gethostname(), os.getpid(), time.time()
        out = []
        for r in c.execute("SELECT DISTINCT host, pid, heartbeat FROM trials WHERE study_id = ? "
                           "AND status = 'running'", (study_id,)):
            if r["host"] == host and r["pid"] is not None:
                if r["pid"] == me or not _pid_alive(r["pid"]):
                    continue
            elif r["heartbeat"] is None or now - r["heartbeat"] >= stale_after:
                continue
            out.append(f"{r['host']}:{r['pid']}")
        return sorted(set(out))

    @_guarded
    def add_trials(self, study_id: int, trials: Sequence[tuple[Any, ...]]) -> int:
        """Add (key, label, config, seed) or (key, label, config, seed, fold, restart) trials
        not yet in the study; return how many were new. The fold is NULL without k-fold, the
        restart NULL when the configuration does not restart (``config["restarts"]`` is 1)."""
        with self.transaction() as c:
            before = c.total_changes
            for position, trial in enumerate(trials):
                key, label, config, seed = trial[:4]
                fold, restart = (trial[4], trial[5]) if len(trial) > 4 else (None, 0)
                if config.get("restarts", 1) == 1:
                    restart = None
                c.execute("INSERT OR IGNORE INTO trials (study_id, key, label, config, seed, "
                          "position, fold, restart) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (study_id, key, label, _dumps(config), seed, position, fold, restart))
            return c.total_changes - before

    @_guarded
    def claim(self, study_id: int, keys: Sequence[str] | None = None, *, run: str | None = None,
              stale_after: float = 900.0) -> TrialRow | None:
        """Mark the next runnable trial ``running`` for this process and return it.

        Runnable: pending; failed in another run than ``run`` (the user may have fixed the
        cause since; within one run a failure is not retried); or running but abandoned — its
        process is gone (same host) or its heartbeat is older than ``stale_after`` seconds.
        """
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self.transaction() as c:
            rows = c.execute("SELECT id, key, status, host, pid, heartbeat, run FROM trials "
                             "WHERE study_id = ? AND status NOT IN "
                             f"({', '.join('?' * len(FINISHED))}) ORDER BY position",
                             (study_id, *FINISHED)).fetchall()
            wanted = set(keys) if keys is not None else None
            for r in rows:
                if wanted is not None and r["key"] not in wanted:
                    continue
                if r["status"] == "failed" and run is not None and r["run"] == run:
                    continue
                if r["status"] == "running" and _held(r, host, now, stale_after):
                    continue
                c.execute("UPDATE trials SET status = 'running', host = ?, pid = ?, "
                          "started = COALESCE(started, ?), heartbeat = ?, "
                          "attempts = attempts + 1, error = NULL, traceback = NULL, run = ? "
                          "WHERE id = ?", (host, pid, now, now, run, r["id"]))
                return self._rows("WHERE id = ?", (r["id"],))[0]
        return None

    @_guarded
    def held(self, trial_id: int, stale_after: float = 900.0) -> bool:
        """Whether the trial runs now: ``running`` under a live process (on this host) with a
        heartbeat younger than ``stale_after`` seconds (else :meth:`claim` may take it)."""
        r = self.conn.execute("SELECT status, host, pid, heartbeat FROM trials WHERE id = ?",
                              (trial_id,)).fetchone()
        return (r is not None and r["status"] == "running"
                and _held(r, socket.gethostname(), time.time(), stale_after))

    @_guarded
    def heartbeat(self, trial_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE trials SET heartbeat = ? WHERE id = ?", (time.time(), trial_id))

    @_guarded
    def finish(self, trial_id: int, result: TrialResult) -> None:
        """Record a finished trial and all its curves in one transaction."""
        r = result
        n = len(r.step_rows.get("step", []))
        keep = downsample(n)
        s = r.step_rows
        with self.transaction() as c:
            for table in ("epochs", "steps", "layer_grads", "lr_finds"):
                c.execute(f"DELETE FROM {table} WHERE trial_id = ?", (trial_id,))
            if r.lr_find is not None:
                c.execute("INSERT INTO lr_finds VALUES (?, ?)", (trial_id, _dumps(r.lr_find)))
            c.executemany("INSERT INTO epochs VALUES (?, ?, ?)",
                          [(trial_id, int(e["epoch"]), _dumps(e)) for e in r.epochs])
            c.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?)", [
                (trial_id, int(s["step"][i]), _num(s["loss"][i]), _num(s["lr"][i]),
                 _num(s["grad_norm"][i])) for i in keep])
            c.executemany("INSERT INTO layer_grads VALUES (?, ?, ?)",
                          [(trial_id, int(g["epoch"]), _dumps(g)) for g in r.layer_grads])
            c.execute("UPDATE trials SET status = ?, finished = ?, wall_time = ?, "
                      "train_time = ?, steps = ?, stop_step = ?, reason = ?, env = ?, "
                      "final = ?, best = ?, target = ?, device = ?, warnings = ?, error = NULL, "
                      "traceback = NULL WHERE id = ?",
                      (r.status, time.time(), r.wall_time, r.train_time, r.steps, r.stop_step,
                       r.reason, _dumps(r.env), _dumps(r.final), _dumps(r.best),
                       _dumps(r.target) if r.target is not None else None, r.device,
                       _dumps(list(r.warnings)) if r.warnings else None, trial_id))

    @_guarded
    def fail(self, trial_id: int, error: str, traceback: str | None = None,
             warnings: Sequence[str] = ()) -> None:
        """Record a failed trial: ``error`` is the one-line reason; ``traceback`` is kept when
        the failure was a bug (an unexpected exception), not a mistake in the input."""
        with self.transaction() as c:
            c.execute("UPDATE trials SET status = 'failed', error = ?, traceback = ?, "
                      "warnings = ?, finished = ? WHERE id = ?",
                      (error, traceback, _dumps(list(warnings)) if warnings else None,
                       time.time(), trial_id))

    # -- reading ---------------------------------------------------------------------------------
    @_guarded
    def studies(self) -> list[dict[str, Any]]:
        """Every study with its trial counts by status."""
        out = []
        for s in self.conn.execute(
                "SELECT id, name, created, updated FROM studies ORDER BY created").fetchall():
            counts = {r[0]: r[1] for r in self.conn.execute(
                "SELECT status, COUNT(*) FROM trials WHERE study_id = ? GROUP BY status",
                (s["id"],))}
            out.append({"id": s["id"], "name": s["name"], "created": s["created"],
                        "updated": s["updated"], "trials": sum(counts.values()),
                        "by_status": counts})
        return out

    @_guarded
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
                                 f"{', '.join(map(repr, names)) or 'none'}")
        return int(row["id"]), str(row["name"]), json.loads(row["spec"])

    def trial(self, trial_id: int) -> TrialRow:
        return self._rows("WHERE id = ?", (trial_id,))[0]

    def trials(self, study_id: int, keys: Sequence[str] | None = None) -> list[TrialRow]:
        rows = self._rows("WHERE study_id = ? ORDER BY position", (study_id,))
        if keys is not None:
            wanted = set(keys)
            rows = [r for r in rows if r.key in wanted]
        return rows

    @_guarded
    def _rows(self, where: str, args: tuple[Any, ...]) -> list[TrialRow]:
        names = [f.name for f in fields(TrialRow)]
        out = []
        for r in self.conn.execute(f"SELECT {', '.join(names)} FROM trials {where}", args):
            values = {n: _loads(r[n]) if n in _JSON_COLUMNS else r[n] for n in names}
            values["warnings"] = values["warnings"] or []
            out.append(TrialRow(**values))
        return out

    @_guarded
    def epochs(self, trial_id: int) -> list[dict[str, float]]:
        return [_loads(r["metrics"]) for r in self.conn.execute(
            "SELECT metrics FROM epochs WHERE trial_id = ? ORDER BY epoch", (trial_id,))]

    @_guarded
    def steps(self, trial_id: int) -> dict[str, list[float]]:
        """The per-update curves; NaN where a value was not finite (or not tracked), so the
        lists plot as they are."""
        rows = self.conn.execute("SELECT step, loss, lr, grad_norm FROM steps WHERE trial_id = ? "
                                 "ORDER BY step", (trial_id,)).fetchall()
        out: dict[str, list[float]] = {"step": [], "loss": [], "lr": [], "grad_norm": []}
        for r in rows:
            out["step"].append(r["step"])
            for k in ("loss", "lr", "grad_norm"):
                out[k].append(math.nan if r[k] is None else r[k])
        return out

    @_guarded
    def layer_grads(self, trial_id: int) -> list[dict[str, Any]]:
        """Per epoch ``{"epoch", "mean": {layer: norm}, "min": …, "max": …}`` (empty when the
        study did not monitor per-layer gradients)."""
        return [_loads(r["norms"]) for r in self.conn.execute(
            "SELECT norms FROM layer_grads WHERE trial_id = ? ORDER BY epoch", (trial_id,))]


    @_guarded
    def lr_find(self, trial_id: int) -> dict[str, Any] | None:
        """The range test of a trial with ``lr = "find"`` (None for any other trial)."""
        row = self.conn.execute("SELECT result FROM lr_finds WHERE trial_id = ?",
                                (trial_id,)).fetchone()
        return _loads(row["result"]) if row is not None else None


def _num(x: float) -> float | None:
    return x if x is not None and not math.isnan(x) else None


def _migrate_1_to_2(c: sqlite3.Connection) -> None:
    """Schema 1 → 2: new columns and table; metric dicts rewritten so that a non-finite value
    reads as NaN (schema 1 wrote null) and null means "not measured"; the device copied from
    the environment record."""
    for statement in filter(None, (s.strip() for s in _SCHEMA_1_TO_2.split(";"))):
        c.execute(statement)
    for tid, final, best, env in c.execute(
            "SELECT id, final, best, env FROM trials").fetchall():
        device = (json.loads(env) or {}).get("device") if env else None
        c.execute("UPDATE trials SET final = ?, best = ?, device = ? WHERE id = ?",
                  (_dumps(_nan_for_null(json.loads(final))) if final else final,
                   _dumps(_nan_for_null(json.loads(best))) if best else best, device, tid))
    for tid, epoch, metrics in c.execute("SELECT trial_id, epoch, metrics FROM epochs").fetchall():
        c.execute("UPDATE epochs SET metrics = ? WHERE trial_id = ? AND epoch = ?",
                  (_dumps(_nan_for_null(json.loads(metrics))), tid, epoch))


def _migrate_2_to_3(c: sqlite3.Connection) -> None:
    """Schema 2 → 3: a trial's fold and restart (NULL for every trial stored before: none had
    either), and the table of learning-rate range tests."""
    for statement in filter(None, (s.strip() for s in _SCHEMA_2_TO_3.split(";"))):
        c.execute(statement)


def _migrate_search_tables(c: sqlite3.Connection) -> None:
    """Schema 3 → 4: the tables of hyperparameter searches (:data:`_SEARCH_TABLES`); nothing
    else changes (a pruned trial is a new status, ``pruned``, which older files never hold)."""
    for statement in filter(None, (s.strip() for s in _SEARCH_TABLES.split(";"))):
        c.execute(statement)


#: MIGRATIONS[v - 1] upgrades schema v to v + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1_to_2, _migrate_2_to_3,
                                                          _migrate_search_tables]
