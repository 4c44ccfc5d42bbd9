"""Callbacks for ``Trainer``: react to training events through small, independent objects."""

from optimlab.train.callbacks.averaging import EMA, SWA, recompute_bn
from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import ModelCheckpoint, read_checkpoint
from optimlab.train.callbacks.early_stopping import EarlyStopping
from optimlab.train.callbacks.logging import CSVLogger, JSONLogger, TensorBoardLogger
from optimlab.train.callbacks.monitor import GradientMonitor, GradientWarning, TimeToTarget
from optimlab.train.callbacks.plateau import ReduceLROnPlateau
from optimlab.train.callbacks.progress import ProgressBar
from optimlab.train.callbacks.report import EpochReport, Pruned
from optimlab.train.callbacks.snapshot import SnapshotEnsemble

__all__ = ["EMA", "SWA", "CSVLogger", "Callback", "EarlyStopping", "EpochReport",
           "GradientMonitor", "GradientWarning", "JSONLogger", "ModelCheckpoint", "ProgressBar",
           "Pruned", "ReduceLROnPlateau", "SnapshotEnsemble", "State", "TensorBoardLogger",
           "TimeToTarget", "read_checkpoint", "recompute_bn"]
