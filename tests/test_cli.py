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


# -- no tracebacks: every listed case is a message and exit 2; a bug is exit 1 with a log ------
@pytest.mark.parametrize("argv, words", [
    (["run", "s.toml", "--threads", "-1"], ["--threads", "-1 is not a positive integer"]),
    (["run", "s.toml", "--workers", "0"], ["--workers", "0 is not a positive integer"]),
    (["compare", "--workers", "-3"], ["--workers", "-3 is not a positive integer"]),
    (["compare", "--name", ""], ["--name", "is blank"]),
    (["compare", "--device", "tpu"], ["--device", "invalid choice"]),
])
def test_bad_flags_are_refused_by_the_parser(argv, words, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err


def test_report_into_an_existing_folder_is_refused_and_leaves_nothing(tmp_path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("seeds = 2", "seeds = 1"))
    db = tmp_path / "s.db"
    assert main(["run", str(spec), "--db", str(db), "--report", "", "--json"]) == 0
    capsys.readouterr()
    (tmp_path / "out").mkdir()
    assert main(["report", str(db), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "is a folder; give a file name" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.tmp")) and not list((tmp_path / "out").iterdir())


def test_an_unwritable_report_path_is_refused_before_any_training(tmp_path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    (tmp_path / "afile").write_text("x")
    db = tmp_path / "s.db"
    assert main(["run", str(spec), "--db", str(db), "--report",
                 str(tmp_path / "afile" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "--report" in err and "is a file, not a folder" in err
    assert not db.exists()  # nothing ran


def test_a_damaged_store_is_a_clear_message(tmp_path, capsys) -> None:
    import shutil

    db = tmp_path / "g.db"
    shutil.copy(Path(__file__).parent / "data" / "store-v1.db", db)
    main(["list", str(db)])
    capsys.readouterr()
    with open(db, "r+b") as fh:
        for page in range(2, db.stat().st_size // 4096):
            fh.seek(page * 4096 + 40)
            fh.write(b"garbage" * 300)
    codes = [main(["list", str(db), "--study", "v1-study"]),
             main(["report", str(db), "-o", str(tmp_path / "r.html")])]
    err = capsys.readouterr().err
    assert codes == [2, 2] and "is damaged" in err and "Traceback" not in err


def test_markup_in_labels_and_names_is_shown_as_text(tmp_path, capsys) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace('name = "cli-study"', 'name = "[bold]study[/bold]"').replace(
        '[axes]\noptimizer = ["sgd", "adam"]',
        '[[configs]]\nlabel = "[/bold]x"\noptimizer = "sgd"\n[[configs]]\nlabel = "[red]y"\n'
        'optimizer = "adam"').replace('baseline = "sgd"', 'baseline = "[/bold]x"'))
    db = tmp_path / "s.db"
    assert main(["run", str(spec), "--db", str(db), "--report", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert "[/bold]x" in out and "[red]y" in out and "[bold]study[/bold]" in out
    assert main(["list", str(db), "--study", "[bold]study[/bold]"]) == 0
    assert "[/bold]x" in capsys.readouterr().out
    assert main(["validate", str(spec)]) == 0
    assert "[/bold]x" in capsys.readouterr().out


def test_a_file_that_is_not_a_checkpoint_or_spec_is_named_not_echoed(tmp_path, capsys) -> None:
    secret = "SECRET-TOKEN-1234"
    csv = tmp_path / "file.csv"
    csv.write_text(f"a,b\n{secret},2\n")
    assert main(["landscape", "--checkpoint", str(csv)]) == 2
    blob = tmp_path / "spec.toml"
    blob.write_bytes(b"\xff\xfe" + secret.encode() + b"\x00\x89PNG")
    assert main(["validate", str(blob)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable optimlab checkpoint" in err and "is not UTF-8 text" in err
    assert secret not in err and "weights_only" not in err and "Traceback" not in err


def test_an_unexpected_error_is_a_bug_exit_1_with_its_traceback_in_a_log(
        tmp_path, capsys, monkeypatch) -> None:
    import optimlab.commands.datasets as datasets

    def broken(args):  # a third-party function failing: not the user's mistake
        return json.loads("{not json")

    monkeypatch.setattr(datasets, "run", broken)
    monkeypatch.setenv("OPTIMLAB_LOG_DIR", str(tmp_path))
    assert main(["datasets"]) == 1
    err = capsys.readouterr().err
    assert "a bug in optimlab" in err and "JSONDecodeError" in err and "Traceback" not in err
    logs = list(tmp_path.glob("optimlab-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "Traceback (most recent call last)" in logs[0].read_text()


def test_only_the_projects_own_errors_are_user_errors() -> None:
    from optimlab._checks import check_number
    from optimlab.errors import UserError, is_user_error

    def raised(fn):  # type: ignore[no-untyped-def]
        try:
            fn()
        except Exception as err:  # the point is to look at any error
            return err
        raise AssertionError("no error")

    assert is_user_error(UserError("x"))
    assert is_user_error(raised(lambda: check_number("lr", -1, low=0)))
    assert not is_user_error(raised(lambda: json.loads("{")))
    assert not is_user_error(raised(lambda: {}["key"]))
