"""The course's worked examples, computed step by step with optimlab's own pieces.

Each topic is a module with ``run(out_dir: Path) -> TopicResult``: it recomputes the notes'
example (optimizers driven with fixed gradients, schedules evaluated, real data measured), saves
its figure as a PNG in ``out_dir``, and lists where the numbers printed in the notes differ from
the computed ones. ``optimlab explain TOPIC`` renders the result.

>>> from optimlab.viz import explain
>>> list(explain.available())[:3]
['ewa', 'momentum', 'rmsprop']
>>> result = explain.run("ewa", Path("."))      # doctest: +SKIP
>>> result.key_numbers["v_beta_0.9"][:2]        # doctest: +SKIP
[1.8, 3.92]
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from optimlab.viz.explain.base import NotesCheck, Table, TopicResult

#: topic name → one line saying what it shows (in the order ``optimlab explain`` lists them)
TOPICS: dict[str, str] = {
    "ewa": "exponentially weighted average of the temperature example, β = 0.9 / 0.98, with "
           "and without bias correction; the ≈ 1/(1−β) window",
    "momentum": "one weight with and without momentum; the EWA and heavy-ball forms coincide "
                "when α is scaled by 1−β; a ravine",
    "rmsprop": "two weights whose gradients differ in scale: effective step α/(√s+ε) per "
               "iteration; ε inside vs outside the root",
    "adam": "the two-weight example (a rare feature fires at batch 3): moments, bias "
            "corrections and steps per batch",
    "minibatch": "measured mini-batch gradient variance on digits for B = 1 … N against σ²/B "
                 "and σ²/B·(N−B)/(N−1)",
    "schedules": "the learning-rate decay schedules over 100 epochs on one plot",
    "init": "activation std and gradient norm through 10 layers: zeros / small normal / "
            "Xavier / He with sigmoid, tanh, ReLU",
    "dropout": "inverted dropout keeps the expected activation; train vs eval mode, measured",
    "batchnorm": "batch vs running statistics for B = 2 … 256; layer / group norm do not "
                 "depend on the batch",
    "lr-find": "the learning-rate range test on cat-vs-dog, step by step (EWA with bias "
               "correction, stop rule, suggestions), and the notes' lr-vs-batch-size table "
               "tested at B = 16 … 128",
}


def available() -> dict[str, str]:
    """Every topic with its one-line description."""
    return dict(TOPICS)


def run(topic: str, out_dir: Path | str = ".") -> TopicResult:
    """Compute ``topic`` and save its figure(s) in ``out_dir``; ValueError for an unknown one."""
    key = topic.lower().strip() if isinstance(topic, str) else topic
    if key not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; choose one of: {', '.join(TOPICS)}")
    module = importlib.import_module(f"{__name__}.{key.replace('-', '_')}")
    with one_thread():
        return module.run(Path(out_dir))


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread, restoring the setting after. The topics' tensors are small:
    a thread pool costs more than it saves, and much more on a busy machine."""
    import torch  # lazy: `optimlab explain` lists the topics without loading torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["TOPICS", "NotesCheck", "Table", "TopicResult", "available", "run"]
