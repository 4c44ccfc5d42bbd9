"""The search space and the search spec: what each parameter draws, conditions, and every bad
input refused before anything trains, with the parameter, the value and the line."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from optimlab.cli import main
from optimlab.lab.spec import SpecError
from optimlab.tune import space as space_module
from optimlab.tune.space import parse_space
from optimlab.tune.spec import load_search_spec, parse_search_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

HEAD = """name = "s"

[data]
dataset = "iris"

[train]
model = { type = "mlp", hidden = [8] }
epochs = 2
optimizer = "sgd"
lr = 0.05

"""


def _write(tmp_path: Path, body: str, name: str = "search.toml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def _base() -> dict:
    return parse_search_spec({"name": "s", "data": {"dataset": "iris"},
                              "search": {"lr": [0.1]}}).study.train.model_dump()


# -- what a space draws --------------------------------------------------------------------
CONDITIONAL = {
    "optimizer": ["sgd", "momentum", "nesterov", "adam", "adamw"],
    "optimizer_kwargs.momentum": {"low": 0.8, "high": 0.99,
                                  "when": {"optimizer": ["momentum", "nesterov"]}},
    "optimizer_kwargs.betas.1": {"low": 0.99, "high": 0.9999,
                                 "when": {"optimizer": ["adam", "adamw"]}},
    "schedule": [{"name": "constant"}, {"name": "exponential", "rate": 0.95}],
    "schedule.rate": {"low": 0.8, "high": 0.99, "when": {"schedule": "exponential"}},
    "model.hidden": {"layers": {"low": 1, "high": 3}, "units": {"low": 4, "high": 64,
                                                                 "log": True}},
    "model.dropout": {"low": 0.0, "high": 0.5, "when": {"model.hidden.layers": [2, 3]}},
}


def test_a_conditional_parameter_never_appears_when_its_parent_is_not_chosen() -> None:
    base = _base()
    space = parse_space(CONDITIONAL, base)
    space.check(base)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {"momentum": 0, "betas": 0, "rate": 0, "units3": 0, "dropout": 0}
    for _ in range(300):
        trial = study.ask()
        drawn = space.suggest(trial)
        settings, _ = space.apply(base, drawn)
        has_momentum = drawn["optimizer"] in ("momentum", "nesterov")
        assert ("optimizer_kwargs.momentum" in trial.params) == has_momentum
        assert ("momentum" in settings["optimizer_kwargs"]) == has_momentum
        has_betas = drawn["optimizer"] in ("adam", "adamw")
        assert ("optimizer_kwargs.betas.1" in trial.params) == has_betas
        if has_betas:  # β₁ stays the optimizer's default, β₂ is drawn
            assert settings["optimizer_kwargs"]["betas"][0] == 0.9
        assert ("schedule.rate" in trial.params) == (drawn["schedule"] == "exponential")
        if drawn["schedule"] == "constant":
            assert settings["schedule"] == {"name": "constant"}
        n = drawn["model.hidden.layers"]
        assert [f"model.hidden.units{i}" in trial.params for i in (1, 2, 3)] == \
            [i <= n for i in (1, 2, 3)]
        assert len(settings["model"]["hidden"]) == n
        assert ("model.dropout" in trial.params) == (n >= 2)
        study.tell(trial, 0.0)
        seen["momentum"] += has_momentum
        seen["betas"] += has_betas
        seen["rate"] += "schedule.rate" in trial.params
        seen["units3"] += n == 3
        seen["dropout"] += n >= 2
    assert all(v > 30 for v in seen.values()), seen  # each branch was taken


def test_ranges_steps_and_logs_draw_what_they_say() -> None:
    space = parse_space({"lr": {"low": 1e-4, "high": 1.0, "log": True},
                         "epochs": {"low": 5, "high": 30, "step": 5},
                         "l2": {"low": 0.0, "high": 0.3, "step": 0.1}}, _base())
    assert space.param("lr").kind == "float" and space.param("epochs").kind == "int"
    assert space.param("l2").grid() == [0.0, 0.1, 0.2, 0.3]  # exact decimals, no 0.30000000004
    assert space.param("epochs").grid() == [5, 10, 15, 20, 25, 30]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    lrs = []
    for _ in range(400):
        trial = study.ask()
        drawn = space.suggest(trial)
        assert drawn["epochs"] in range(5, 31, 5) and drawn["l2"] in (0.0, 0.1, 0.2, 0.3)
        lrs.append(drawn["lr"])
        study.tell(trial, 0.0)
    below = sum(v < 1e-2 for v in lrs) / len(lrs)  # log-uniform: half the decades below 1e-2
    assert 0.4 < below < 0.6


def test_the_docstring_example_is_a_valid_space() -> None:
    text = space_module.__doc__.split(".. code-block:: toml")[1].split("* **float**")[0]
    import textwrap
    import tomllib

    raw = tomllib.loads(textwrap.dedent(text))["search"]
    base = parse_search_spec({"name": "s", "data": {"dataset": "iris"},
                              "train": {"epochs": 30}, "search": {"lr": [0.1]}}
                             ).study.train.model_dump()
    space = parse_space(raw, base)
    assert len(space.check(base)) > 10
    assert "model.hidden" in space.names


# -- bad input -----------------------------------------------------------------------------
BAD = [
    ('lr = { low = 0.1, high = 0.1 }', 13, ["search.lr", "empty"]),
    ('lr = { low = 0.5, high = 0.1 }', 13, ["search.lr", "low=0.5 > high=0.1"]),
    ('lr = { low = 0.0, high = 0.1, log = true }', 13, ["search.lr", "log = true needs low > 0"]),
    ('widht = [1, 2]', 13, ["search.widht", "'widht' is not a setting"]),
    ('"model.widht" = [8, 16]', 13, ["search.model.widht", "widht"]),
    ('epochs = { low = 1, high = 10, step = 4 }', 13,
     ["search.epochs", "step=4 does not divide the range [1, 10]"]),
    ('l2 = { low = 0.0, high = 0.25, step = 0.1 }', 13, ["search.l2", "does not divide"]),
    ('"model.dropout" = { low = 0, high = 1 }', 13,
     ["search.model.dropout", "integers", "write the bounds as floats"]),
    ('batch_size = []', 13, ["search.batch_size", "empty"]),
    ('batch_size = [16, 16]', 13, ["search.batch_size", "listed twice"]),
    ('lr = { low = 0.001, high = 0.1, scale = "log" }', 13, ["search.lr", "unknown key scale"]),
    ('lr = 0.1', 13, ["search.lr", "0.1 is a single value", "set it in [train]"]),
    ('optimizer = ["sgd", "adamx"]', 13, ["search.optimizer", "adamx"]),
    ('optimizer = ["sgd", "adam"]\n"optimizer_kwargs.momentum" = { low = 0.8, high = 0.99, '
     'when = { optimizer = ["momentum"] } }', 14, ["when.optimizer='momentum'", "not one of"]),
    ('"optimizer_kwargs.momentum" = { low = 0.8, high = 0.99, when = { optim = ["sgd"] } }', 13,
     ["'optim' is not a parameter"]),
    ('"optimizer_kwargs.alpha" = { low = 0.8, high = 0.99 }', 13,
     ["search.optimizer_kwargs.alpha", "['alpha'] do not apply to sgd"]),
    ('"optimizer_kwargs.betas.1" = { low = 0.99, high = 0.999 }', 13,
     ["search.optimizer_kwargs.betas.1", "optimizer 'sgd' takes no betas", "when"]),
    ('lr = { low = 1e-4, high = 2e3, log = true }\n"model.hidden" = { layers = { low = 1, high = '
     '2 }, units = { low = 0, high = 8 } }', 14, ["model.hidden.units", "low=0"]),
    ('"data.val" = [0.1, 0.2]', 13, ["search.data.val", "only data.standardize"]),
]


@pytest.mark.parametrize("body, line, words", BAD, ids=[b[0][:40] for b in BAD])
def test_bad_search_input_exits_2_naming_the_parameter_and_line(body, line, words, tmp_path,
                                                                 capsys) -> None:
    path = _write(tmp_path, "[search]\n" + body + "\n")
    with pytest.raises(SpecError) as info:
        load_search_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    for w in words:
        assert w in message, message
    assert main(["tune", str(path), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert words[0] in err and "Traceback" not in err


@pytest.mark.parametrize("flag, value", [("--sampler", "bayes"), ("--pruner", "asha"),
                                         ("--trials", "0"), ("--timeout", "-3"),
                                         ("--confirm", "-1")])
def test_bad_flags_exit_2_naming_them(flag, value, tmp_path, capsys) -> None:
    path = _write(tmp_path, "[search]\nlr = [0.1, 0.2]\n")
    with pytest.raises(SystemExit) as info:
        main(["tune", str(path), flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err


@pytest.mark.parametrize("tune, words", [
    ('sampler = "bayes"', ["tune.sampler", "'tpe', 'gp', 'random' or 'grid'", "bayes"]),
    ('pruner = "asha"', ["tune.pruner", "'hyperband', 'halving', 'median' or 'none'"]),
    ('trials = 0', ["tune.trials", "out of range"]),
    ('samplr = "tpe"', ["tune.samplr", "allowed: trials, sampler"]),
    ('confirm_seeds = 1', ["confirm_seeds", "out of range"]),
])
def test_bad_tune_options_name_the_key_and_line(tune, words, tmp_path, capsys) -> None:
    path = _write(tmp_path, "[search]\nlr = [0.1, 0.2]\n\n[tune]\n" + tune + "\n")
    with pytest.raises(SpecError) as info:
        load_search_spec(path)
    assert str(info.value).startswith(f"{path}:16:"), str(info.value)
    for w in words:
        assert w in str(info.value)
    assert main(["tune", str(path), "--db", str(tmp_path / "x.db")]) == 2


def test_a_grid_needs_finite_values(tmp_path) -> None:
    path = _write(tmp_path, '[search]\nlr = { low = 0.01, high = 0.1, log = true }\n\n'
                            '[tune]\nsampler = "grid"\n')
    with pytest.raises(SpecError, match=r"search\.lr: a grid needs a finite set of values"):
        load_search_spec(path)


@pytest.mark.parametrize("extra, words", [
    ('baseline = "x"\n', "the baseline of a search is [train] itself"),
    ('[axes]\noptimizer = ["sgd", "adam"]\n', "move each axis into [search]"),
])
def test_a_search_spec_has_no_axes_or_baseline(extra, words, tmp_path) -> None:
    text = HEAD.replace('name = "s"\n', 'name = "s"\n' + extra) if "baseline" in extra \
        else HEAD + extra
    path = tmp_path / "s.toml"
    path.write_text(text + "\n[search]\nlr = [0.1, 0.2]\n")
    with pytest.raises(SpecError, match=re.escape(words)):
        load_search_spec(path)


def test_no_search_table_says_what_to_add(tmp_path) -> None:
    path = _write(tmp_path, "")
    with pytest.raises(SpecError, match=r"no \[search\] table"):
        load_search_spec(path)


def test_a_cycle_of_conditions_is_refused() -> None:
    with pytest.raises(SpecError, match="form a cycle"):
        parse_space({"optimizer": {"choices": ["sgd", "adam"], "when": {"batch_size": [16]}},
                     "batch_size": {"choices": [16, 32], "when": {"optimizer": ["sgd"]}}},
                    _base())


def test_validate_checks_a_search_spec_on_its_data(tmp_path, capsys) -> None:
    path = _write(tmp_path, '[search]\nlr = { low = 1e-3, high = 0.3, log = true }\n'
                            '"model.hidden" = { layers = { low = 1, high = 2 }, units = '
                            '{ low = 4, high = 32 } }\n\n[tune]\nconfirm = 3\n')
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "is a valid search" in out and "model.hidden: 1–2 layers" in out
    assert "configurations built on the data" in out
    assert "8 seeds are needed" in out  # 3 + the baseline = 6 pairs: 5 seeds cannot tell
    bad = _write(tmp_path, '[search]\n"model.hidden" = { layers = { low = 1, high = 2 }, '
                           'units = { low = 4, high = 32 } }\n', name="bad.toml")
    bad.write_text(bad.read_text().replace('dataset = "iris"', 'dataset = "iris"\n'
                                           'options = { n = 5 }'))
    assert main(["validate", str(bad)]) == 2
