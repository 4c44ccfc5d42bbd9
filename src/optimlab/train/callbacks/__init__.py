"""Callbacks for ``Trainer``: react to training events through small, independent objects."""

from optimlab.train.callbacks.base import Callback, State
from optimlab.train.callbacks.checkpoint import ModelCheckpoint, read_checkpoint
from optimlab.train.callbacks.early_stopping import EarlyStopping

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "State", "read_checkpoint"]
