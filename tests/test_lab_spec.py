"""Every bad input is caught by ``optimlab validate`` (and so before the first trial of ``run``):
the spec, its data, each configuration built for the data — each error naming the thing and the
fix, exit code 2, no traceback. And the spec's meaning: lr has one owner, axes × configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimlab.cli import main
from optimlab.lab.checks import check_study
from optimlab.lab.grid import configurations
from optimlab.lab.spec import SpecError, parse_spec

BASE = """
name = "v"
seeds = 1
[data]
{data}
[train]
model = {model}
epochs = 2
batch_size = 16
{train}
{rest}
"""

MLP = '{ type = "mlp", hidden = [8] }'


def spec_text(data: str = 'dataset = "iris"', model: str = MLP, train: str = "",
              rest: str = "") -> str:
    return BASE.format(data=data, model=model, train=train, rest=rest)


def validate(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


GOOD_CSV = "a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(20))

# (what, spec text pieces, data files to write, words every message must hold)
CASES = [
    # the model spec
    ("unknown activation", {"model": '{ type = "mlp", hidden = [8], activation = "relux" }'},
     {}, ["activation", "relux"]),
    ("unknown init", {"model": '{ type = "mlp", hidden = [8], init = "hee" }'}, {},
     ["init", "hee"]),
    ("unknown model type", {"model": '{ type = "transformer" }'}, {},
     ["type='transformer'", "mlp"]),
    ("hidden size zero", {"model": '{ type = "mlp", hidden = [0] }'}, {},
     ["hidden[0]=0", "positive integer"]),
    ("hidden size not an int", {"model": '{ type = "mlp", hidden = [8.5] }'}, {},
     ["hidden[0]=8.5", "positive integer"]),
    ("dropout of 1", {"model": '{ type = "mlp", hidden = [8], dropout = 1.0 }'}, {},
     ["dropout=1.0", "[0, 1)"]),
    ("unknown loss", {"train": 'loss = "crossentropyy"'}, {}, ["crossentropyy"]),
    ("loss for another task", {"train": 'loss = "mse"'}, {}, ["mse", "multiclass"]),
    ("unknown metric", {"train": 'metrics = ["acc"]'}, {}, ["acc", "accuracy"]),
    ("momentum out of range",
     {"train": 'optimizer = "momentum"\noptimizer_kwargs = { momentum = 1.5 }'}, {},
     ["momentum", "1.5"]),
    ("betas mistyped", {"train": 'optimizer = "adam"\noptimizer_kwargs = { betas = "0.9" }'},
     {}, ["betas"]),
    ("unknown optimizer argument", {"train": 'optimizer_kwargs = { momentun = 0.9 }'}, {},
     ["momentun", "takes"]),
    # the spec's own values
    ("epochs = true", {}, {}, ["epochs", "integer", "True"]),
    ("val + test >= 1", {"data": 'dataset = "iris"\nval = 0.5\ntest = 0.5'}, {},
     ["val=0.5 + test=0.5", "less than 1"]),
    ("unknown dataset option", {"data": 'dataset = "moons"\noptions = { nn = 100 }'}, {},
     ["nn", "moons", "takes"]),
    ("bad dataset option value", {"data": 'dataset = "moons"\noptions = { n = -5 }'}, {},
     ["moons", "n"]),
    ("monitor of no metric", {"train": 'monitor = "val_foo"'}, {}, ["val_foo", "foo"]),
    ("monitor not computed", {"train": 'metrics = ["accuracy"]\nmonitor = "val_f1_macro"'},
     {}, ["val_f1_macro", "metrics"]),
    ("target metric unknown", {"rest": '[target]\nmetric = "val_acc"\nvalue = 0.9'}, {},
     ["val_acc"]),
    ("target metric not computed",
     {"train": 'metrics = ["accuracy"]', "rest": '[target]\nmetric = "val_f1_macro"\n'
      'value = 0.9'}, {}, ["target.metric", "val_f1_macro"]),
    ("task binary on 3 classes", {"data": 'dataset = "iris"\ntask = "binary"'}, {},
     ["task = 'binary'", "iris", "3 classes"]),
    ("blank name", {"rest": ""}, {}, None),  # replaced below: name = "  "
    ("duplicate configurations",
     {"rest": '[[configs]]\nlabel = "a"\noptimizer = "adam"\n[[configs]]\nlabel = "b"\n'
      'optimizer = "adam"'}, {}, ["'a' and 'b'", "identical settings"]),
    ("control characters in a label",
     {"rest": '[[configs]]\nlabel = "\\u001b[31mred"\noptimizer = "adam"'}, {},
     ["control characters", "plain text"]),
    ("lr with a schedule of its own lr",
     {"train": 'lr = 0.5\nschedule = { name = "cosine", lr = 0.001, total = 10 }'}, {},
     ["lr=0.5", "lr=0.001", "relative to lr"]),
    ("lr with a schedule of its own rates",
     {"train": 'lr = 0.5\nschedule = { name = "one_cycle", max_lr = 1.0, total_steps = 20 }'},
     {}, ["one_cycle", "max_lr"]),
    ("swa and early stopping",
     {"train": 'early_stopping = 2\nswa = { start_epoch = 1 }'}, {},
     ["early_stopping", "swa"]),
    ("swa after the last epoch", {"train": 'swa = { start_epoch = 5 }'}, {},
     ["swa.start_epoch=5", "2 epochs"]),
    # size limits
    ("too many seeds", {"rest": ""}, {}, None),  # replaced below: seeds = 10**9
    ("too wide", {"model": '{ type = "mlp", hidden = [1000000000] }'}, {},
     ["1000000000", "65536"]),
    ("too large a grid",
     {"rest": '[axes]\nlr = [' + ", ".join(f"{0.001 * (i + 1):g}" for i in range(60)) + ']\n'
      'l2 = [' + ", ".join(f"{0.001 * (i + 1):g}" for i in range(60)) + ']'}, {},
     ["configurations", "2000"]),
    # the data itself
    ("missing file", {"data": 'csv = "nope.csv"\ntarget = "label"'}, {},
     ["nope.csv", "does not exist"]),
    ("missing column", {"data": 'csv = "d.csv"\ntarget = "y"'}, {"d.csv": GOOD_CSV},
     ["target='y'", "columns are"]),
    ("non-numeric feature", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": "a,b,label\n1,red,x\n2,blue,y\n3,red,x\n4,red,y\n"},
     ["column 'b'", "not numeric", "encode"]),
    ("NaN in a feature", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": "a,b,label\n1,2,x\n2,,y\n3,4,x\n4,5,y\n"},
     ["column 'b'", "line 3", "fill them in or drop"]),
    ("inf in a feature", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": "a,b,label\n1,2,x\n2,inf,y\n3,4,x\n4,5,y\n"},
     ["column 'b'", "infinite", "line 3"]),
    ("one row", {"data": 'csv = "d.csv"\ntarget = "label"'}, {"d.csv": "a,b,label\n1,2,x\n"},
     ["1 row", "at least 3"]),
    ("one class", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": "a,b,label\n1,2,x\n2,3,x\n3,4,x\n4,5,x\n"},
     ["single class", "two classes"]),
    ("empty file", {"data": 'csv = "d.csv"\ntarget = "label"'}, {"d.csv": ""}, ["is empty"]),
    ("header only", {"data": 'csv = "d.csv"\ntarget = "label"'}, {"d.csv": "a,b,label\n"},
     ["header but no data rows"]),
    ("ragged rows", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": "a,b,label\n1,2,x\n3,4\n5,6,y\n"}, ["line 3 has 2 fields", "delimiter"]),
    ("non-UTF-8 file", {"data": 'csv = "d.csv"\ntarget = "label"'},
     {"d.csv": b"a,b,label\n1,2,caf\xe9\n3,4,x\n5,6,caf\xe9\n7,8,x\n"},
     ["not UTF-8", "line 2", "iconv"]),
    ("not an npz", {"data": 'npz = "d.npz"'}, {"d.npz": "just text\n"},
     ["not a numpy .npz archive", "savez"]),
    ("no GPU", {}, {}, ["cuda", "no GPU"]),
]


@pytest.mark.parametrize("what, pieces, files, words", CASES, ids=[c[0] for c in CASES])
def test_validate_names_each_bad_input_and_its_fix(tmp_path, capsys, what, pieces, files,
                                                   words) -> None:
    text = spec_text(**pieces)
    if what == "blank name":
        text, words = text.replace('name = "v"', 'name = "   "'), ["name", "blank"]
    if what == "epochs = true":
        text = text.replace("epochs = 2", "epochs = true")
    if what == "too many seeds":
        text, words = text.replace("seeds = 1", "seeds = 1000000000"), ["seeds", "1000"]
    if what == "no GPU":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        text = text.replace('name = "v"', 'name = "v"\ndevice = "cuda"')
    for name, content in files.items():
        write(tmp_path / name, content)
    code, out = validate(tmp_path, text, capsys)
    assert code == 2, out
    assert "Traceback" not in out
    for word in words:
        assert word in out, (word, out)


def test_validate_reports_the_data_and_each_configuration(tmp_path, capsys) -> None:
    code, out = validate(tmp_path, spec_text(rest='[axes]\noptimizer = ["sgd", "adam"]'),
                         capsys)
    assert code == 0, out
    assert "150 rows × 4 features (multiclass, 3 classes) → 120 train / 15 val / 15 test" in out
    assert "- sgd (67 parameters)" in out


def test_a_schedule_that_ends_early_is_a_warning(tmp_path, capsys) -> None:
    """iris: 120 train rows / batch 16 = 8 updates per epoch, 2 epochs = 16 updates."""
    code, out = validate(tmp_path, spec_text(
        train='lr = 0.5\nschedule = { name = "cosine", total = 10 }'), capsys)
    assert code == 0, out
    assert "warning:" in out and "reaches its end at step 10 but training runs 16 steps" in out
    assert "last 6 train at lr = 0" in out and "total = 16" in out


def test_lr_has_one_owner_schedules_are_relative() -> None:
    spec = parse_spec({"name": "s", "data": {"dataset": "iris"},
                       "train": {"lr": 0.5, "schedule": {"name": "cosine", "total": 10}}})
    from optimlab.lab.runner import build_trainer
    from optimlab.lab.studydata import prepare_data

    split = prepare_data(spec.data)
    settings = configurations(spec)[0][1]
    trainer = build_trainer(spec, settings, 0, split, [])
    assert trainer.schedule(0) == 0.5 and trainer.schedule(10) == 0.0
    scaled = {**settings, "linear_scaling": True, "batch_size": 128, "base_batch_size": 64}
    trainer = build_trainer(spec, scaled, 0, split, [])
    assert trainer.schedule(0) == pytest.approx(1.0)  # the whole schedule × 128/64
    assert trainer.lr == pytest.approx(1.0)
    # the same value written twice is one owner
    parse_spec({"name": "s", "data": {"dataset": "iris"},
                "train": {"lr": 0.5, "schedule": {"name": "cosine", "lr": 0.5, "total": 10}}})


def test_axes_apply_to_every_config() -> None:
    spec = parse_spec({"name": "x", "data": {"dataset": "iris"},
                       "axes": {"lr": [0.1, 0.01]},
                       "configs": [{"label": "sgd", "optimizer": "sgd"},
                                   {"label": "adam", "optimizer": "adam"}]})
    got = [(label, s["optimizer"], s["lr"]) for label, s in configurations(spec)]
    assert got == [("sgd, lr=0.1", "sgd", 0.1), ("sgd, lr=0.01", "sgd", 0.01),
                   ("adam, lr=0.1", "adam", 0.1), ("adam, lr=0.01", "adam", 0.01)]
    with pytest.raises(SpecError, match="sets lr, which the axes sweep"):
        configurations(parse_spec({"name": "x", "data": {"dataset": "iris"},
                                   "axes": {"lr": [0.1, 0.01]},
                                   "configs": [{"label": "a", "lr": 0.5}]}))


def test_strict_values_and_json_validate(tmp_path, capsys) -> None:
    with pytest.raises(SpecError, match="epochs"):
        parse_spec({"name": "x", "data": {"dataset": "iris"}, "train": {"epochs": 2.5}})
    assert validate(tmp_path, spec_text(), capsys)[0] == 0
    path = tmp_path / "spec.toml"
    assert main(["validate", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"]["rows"] == 150 and result["device"] == "cpu"
    assert len(result["data"]["fingerprint"]) == 16


def test_check_study_fills_in_the_fingerprint() -> None:
    spec = parse_spec({"name": "x", "data": {"dataset": "iris"}})
    checked, facts = check_study(spec)
    assert spec.data.fingerprint is None
    assert checked.data.fingerprint == facts.fingerprint
    assert check_study(spec)[1].fingerprint == facts.fingerprint  # stable
