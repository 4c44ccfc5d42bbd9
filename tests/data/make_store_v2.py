"""Make a store with schema-2 code (optimlab at commit e480fe8, before k-fold and restarts):
an ordinary study with completed, diverged and failed trials and a target. Run with that
commit's ``src`` first on the path: ``PYTHONPATH=/path/to/e480fe8/src python make_store_v2.py
store-v2.db``."""
import sys

from optimlab.lab.runner import run_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import SCHEMA_VERSION, Store

assert SCHEMA_VERSION == 2, SCHEMA_VERSION
spec = parse_spec({"name": "v2-study", "seeds": 2, "baseline": "0.05",
    "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
    "train": {"model": {"type": "mlp", "hidden": [4]}, "epochs": 2, "batch_size": 16,
              "optimizer": "sgd"},
    "axes": {"lr": [0.05, 1e6]},
    "target": {"metric": "val_accuracy", "value": 0.65}})
out = run_study(spec, sys.argv[1])
print(out)
with Store(sys.argv[1]) as s:
    sid = s.study()[0]
    rows = s.trials(sid)
    s.fail(rows[-1].id, "ValueError: made to fail for the fixture")
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.conn.execute("PRAGMA journal_mode = DELETE")
