"""The README's and the examples' commands run as written, so the docs stay true.

Fast (default run): every example spec and the README's study validate; the README's quick
commands (validate, datasets, optimizers, explain) succeed; the README's Python snippets run and
the Trainer snippet's schedule lasts as long as its training. Slow (``-m slow``): the README's
study, ``compare``, ``list``, ``report``, ``paths`` and ``landscape`` commands, every
``optimlab run`` of the examples' READMEs, each in a temporary folder, and the step and seeds
benchmarks on tiny sizes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from optimlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLES = sorted((ROOT / "examples").glob("*/study.toml"))
FAST = {"validate", "datasets", "optimizers", "explain"}


def blocks(path: Path, lang: str) -> list[str]:
    """The fenced code blocks of ``path`` in language ``lang`` ("" for unlabelled ones)."""
    out, current, inside = [], [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == lang:
                    out.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return out


def commands(path: Path) -> list[list[str]]:
    """Every ``optimlab …`` line of the shell blocks of ``path`` (comments cut off)."""
    out = []
    for block in blocks(path, "bash") + blocks(path, ""):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith((".venv/bin/optimlab ", "optimlab ")):
                out.append(shlex.split(line)[1:])
    return out


def readme_study(folder: Path) -> Path:
    """The README's study spec (its one TOML block), written as study.toml in ``folder``."""
    (toml,) = blocks(README, "toml")
    path = folder / "study.toml"
    path.write_text(toml)
    return path


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_example_validates(spec: Path, capsys) -> None:
    assert main(["validate", str(spec)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "is valid" in out and "warning" not in out


def test_the_readme_quick_commands_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    readme_study(tmp_path)
    ran = 0
    for argv in commands(README):
        if argv[0] in FAST and not (argv[0] == "explain" and len(argv) > 1):
            assert main(argv) == 0, (argv, capsys.readouterr().err)
            ran += 1
    assert ran >= 2  # validate and explain at least


def test_the_readme_python_snippets_run_and_the_schedule_lasts(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for code in blocks(README, "python"):
        exec(compile(code, str(README), "exec"), namespace)
    history = namespace["history"]
    state = namespace["trainer"].state  # type: ignore[attr-defined]
    planned = state.max_epochs * state.steps_per_epoch  # what fit was asked to train
    assert namespace["trainer"].schedule.total >= planned  # type: ignore[attr-defined]
    assert history.epochs[-1]["lr"] > 0  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_readme_commands_run_in_order(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    readme_study(tmp_path)
    for argv in commands(README):
        if argv[0] == "compare":
            argv = [*argv, "--report", "report.html"]
        if argv[0] == "landscape":
            argv = [*argv, "--epochs", "2"]
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    assert main(["report", "optimlab.db", "-o", "again.html"]) == 0
    assert Path("again.html").is_file()


EXAMPLE_RUNS = [argv for readme in sorted((ROOT / "examples").glob("*/README.md"))
                for argv in commands(readme) if argv[0] == "run" and "NAME" not in argv[1]]



@pytest.mark.slow
@pytest.mark.parametrize("argv", EXAMPLE_RUNS, ids=[" ".join(a) for a in EXAMPLE_RUNS])
def test_the_examples_run_as_their_readmes_say(argv, tmp_path, capsys) -> None:
    spec = str(ROOT / argv[1])
    assert main(["run", spec, *argv[2:], "--db", str(tmp_path / "e.db"),
                 "--report", str(tmp_path / "e.html")]) == 0, capsys.readouterr().err


def test_the_readme_ddp_script_runs_under_torchrun(tmp_path) -> None:
    """The README's `train.py` (its one ``py`` block), as it says: torchrun, 2 processes."""
    (code,) = blocks(README, "py")
    script = tmp_path / "train.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("History(") == 1  # printed once, by rank 0


BENCH_RUNS = [
    ["optim_step.py", "--params", "40000", "--tensors", "4", "--rounds", "1", "--repeats", "1",
     "--only", "sgd", "adam"],
    ["optim_step.py", "--small", "--rounds", "1", "--repeats", "2", "--only", "adam", "sgd"],
    ["seeds.py", "--seeds", "2", "--epochs", "2", "--rounds", "1"],
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", BENCH_RUNS, ids=[" ".join(a[:2]) for a in BENCH_RUNS])
def test_the_benchmarks_run_on_small_arguments(argv) -> None:
    """The README's benchmark commands run (tiny sizes: a smoke test, no timing is checked)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / argv[0]), *argv[1:]],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("sgd", "adam",
                                                                           "digits", "cat"))]
    assert rows, done.stdout
