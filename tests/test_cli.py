"""The ``optimlab`` command: every subcommand's help, JSON output, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from optimlab.cli import build_parser, main

COMMANDS = ["compare", "run", "validate", "report", "list", "datasets", "optimizers",
            "paths", "landscape", "explain"]


def test_every_command_has_help(capsys) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert "usage: optimlab " + name in capsys.readouterr().out
    assert set(sub.choices) >= {"compare", "run", "validate", "list", "datasets", "optimizers"}


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    assert main([]) == 2
    assert "usage: optimlab" in capsys.readouterr().out


def test_optimizers_and_datasets_as_json(capsys) -> None:
    assert main(["optimizers", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert names["adam"]["defaults"]["lr"] == 0.001
    assert main(["datasets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["digits"]["task"] == "multiclass"


SPEC = """
name = "cli-study"
seeds = 2
baseline = "sgd"

[data]
dataset = "iris"
val = 0.2
test = 0.2

[train]
model = { type = "mlp", hidden = [8] }
epochs = 2
batch_size = 16
lr = 0.05

[axes]
optimizer = ["sgd", "adam"]
"""


def test_validate_accepts_a_good_spec_and_names_the_line_of_a_bad_one(tmp_path, capsys) -> None:
    good = tmp_path / "good.toml"
    good.write_text(SPEC)
    assert main(["validate", str(good)]) == 0
    assert "2 configurations × 2 seeds = 4 trials" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("batch_size = 16", "batch_size = 0"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:14" in err and "batch_size=0" in err and "Traceback" not in err


def test_run_then_list_then_rerun_skips(tmp_path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    db = tmp_path / "s.db"
    assert main(["run", str(spec), "--db", str(db), "--report", "", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["counts"] == {"completed": 4}
    assert {r["label"] for r in result["ranking"]} == {"sgd", "adam"}
    assert result["comparisons"][0]["statement"].startswith("adam")
    assert main(["list", str(db), "--json"]) == 0
    studies = json.loads(capsys.readouterr().out)
    assert studies[0]["name"] == "cli-study" and studies[0]["trials"] == 4
    assert main(["list", str(db), "--study", "cli-study"]) == 0
    assert "completed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["run", "missing.toml"], ["no spec file at missing.toml"]),
    (["compare", "--dataset", "nope"], ["dataset='nope' is unknown"]),
    (["compare", "--optimizers", "adamm"], ["unknown optimizer 'adamm'"]),
    (["compare", "--csv", "x.csv"], ["--csv needs --target"]),
    (["list", "no-such.db"], ["no store at no-such.db"]),
])
def test_user_mistakes_exit_2_with_a_message_and_no_traceback(argv, words, capsys, tmp_path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err


def test_a_corrupt_store_is_a_user_error(tmp_path, capsys) -> None:
    db = tmp_path / "bad.db"
    db.write_bytes(b"\x00garbage" * 64)
    assert main(["list", str(db)]) == 2
    assert "not a usable SQLite file" in capsys.readouterr().err


def test_the_installed_command_runs_as_a_program(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "optimlab", "validate", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no spec file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_end_to_end_writes_the_store_and_the_report(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["compare", "--optimizers", "sgd", "adam", "gd", "--seeds", "2", "--epochs", "2",
                 "--db", "c.db", "--report", "c.html"])
    assert code == 0
    assert Path("c.db").stat().st_size > 0
    html = Path("c.html").read_text()
    assert "Adam" in html and "SGD" in html
