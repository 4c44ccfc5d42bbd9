"""Callbacks for ``Trainer``: react to training events through small, independent objects."""

from optimlab.train.callbacks.averaging import EMA, SWA, recompute_bn
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import ModelCheckpoint, read_checkpoint
from optimlab.train.callbacks.early_stopping import EarlyStopping
from optimlab.train.callbacks.snapshot import SnapshotEnsemble

__all__ = ["EMA", "SWA", "Callback", "EarlyStopping", "ModelCheckpoint", "SnapshotEnsemble",
           "State", "read_checkpoint", "recompute_bn"]
