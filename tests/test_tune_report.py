"""``optimlab tune`` and the report of a search: the command's output and exit codes, the
confirmation study linked to the search, the self-contained HTML (rendered by headless Chromium)
and ``optimlab report`` on a search."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from optimlab.cli import main
from optimlab.lab.store import Store
from optimlab.tune.results import load_search
from optimlab.tune.store import search_row

CHROMIUM = Path("/usr/bin/chromium")
SPEC = """
name = "{name}"
description = "a small search"

[data]
dataset = "iris"
val = 0.3

[train]
model = {{ type = "mlp", hidden = [8] }}
epochs = 9
batch_size = 16
optimizer = "sgd"
lr = 0.01

[search]
lr = {{ low = 0.001, high = 0.3, log = true }}
optimizer = ["sgd", "adam"]
"optimizer_kwargs.momentum" = {{ low = 0.5, high = 0.95, when = {{ optimizer = "sgd" }} }}

[tune]
trials = 10
sampler = "tpe"
startup = 3
pruner = "hyperband"
confirm = 2
confirm_seeds = 3
"""
SECTIONS = ["answer", "history", "importance", "slices", "curves", "pruning", "confirmation",
            "best-trials", "trials", "spec", "environment", "how-to-read"]
PLOTS = ["search_history", "search_importance", "search_slices", "search_curves",
         "confirmation_final"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """One search with Hyperband and a confirmation, run by the command: (store, report,
    stdout, stderr)."""
    folder = tmp_path_factory.mktemp("tune")
    spec = folder / "search.toml"
    spec.write_text(SPEC.format(name="<b>s</b>"))
    db, html = folder / "s.db", folder / "s.html"
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["tune", str(spec), "--db", str(db), "-o", str(html)])
    assert code == 0, err.getvalue()
    return db, html, out.getvalue(), err.getvalue()


def test_the_command_prints_each_trial_the_best_and_the_confirmation(searched) -> None:
    db, html, out, err = searched
    assert "trial 0:" in err and "trial 9:" in err and "pruned after" in err
    assert "confirmation: trial" in err and "[train] (seed 1)" in err
    assert "the best trials" in out and "The best search trial is trial" in out
    assert "Confirmation: trial" in out and "over 3 seeds the search did not use" in out
    assert "(confirmation): final val accuracy across seeds" in out  # the lab's ranking
    assert f"report: {html}" in out
    with Store(db) as store:
        r = load_search(store, "<b>s</b>")
        assert len(r.trials) == 10 and r.confirmation is not None
        row = search_row(store, store.study("<b>s</b>")[0])
        assert row is not None and row["confirmation_id"] == store.study(
            "<b>s</b> (confirmation)")[0]
        a = r.confirmation
        assert {c.label for c in a.configs} == {"[train]", *(f"trial {t.number}"
                                                              for t in r.ranked[:2])}
        assert a.baseline == "[train]" and a.n_seeds == 3
        assert all(t.seed in (1, 2, 3) for c in a.configs for t in c.trials)  # fresh seeds


def test_a_rerun_trains_nothing_and_json_says_the_same(searched, capsys) -> None:
    db, _, _, _ = searched
    spec = db.parent / "search.toml"
    assert main(["tune", str(spec), "--db", str(db), "-o", "", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["search"] == "<b>s</b>" and len(data["trials"]) == 10
    assert sum(data["counts"].values()) == 10 and data["best"]["state"] == "complete"
    assert data["confirmation"]["baseline"] == "[train]"
    assert data["epochs_trained"] < data["epochs_full"] == 90
    with Store(db) as store:
        assert all(r.attempts == 1 for r in store.trials(store.study("<b>s</b>")[0]))


def test_the_report_is_self_contained_and_complete(searched) -> None:
    _, path, _, _ = searched
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs), refs
    assert "default-src &#39;none&#39;" in html and "<link" not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(PLOTS) == html.count("<img")
    for b64 in images:
        assert base64.b64decode(b64, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert "<b>s</b>" not in html and "&lt;b&gt;s&lt;/b&gt;" in html  # escaped
    assert "Pruning stopped" in html and "Parameter importance" in html
    assert "vs [train] on val accuracy" in html  # the lab's paired comparisons


def test_optimlab_report_on_a_search_writes_the_search_report(searched, tmp_path,
                                                               capsys) -> None:
    db, _, _, _ = searched
    out = tmp_path / "again.html"
    assert main(["report", str(db), "--study", "<b>s</b>", "-o", str(out), "--png",
                 str(tmp_path / "png")]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'id="importance"' in html and "optimlab hyperparameter search" in html
    assert sorted(p.stem for p in (tmp_path / "png").glob("*.png")) == sorted(PLOTS)
    assert main(["report", str(db), "--study", "<b>s</b>", "--smooth", "0.5", "-o",
                 str(out)]) == 2
    assert "applies to a study's report" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at "
                                                  "/usr/bin/chromium")
def test_the_search_report_renders_in_headless_chromium(searched, tmp_path) -> None:
    _, path, _, _ = searched
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--dump-dom", path.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines()
               if ("CONSOLE" in line or "Uncaught" in line) and path.name in line]
    assert console == []  # no script error, no CSP violation
    dom = done.stdout
    assert f'data-images="{len(PLOTS)}"' in dom and 'data-images-ok="true"' in dom
    for section in SECTIONS:
        assert f'id="{section}"' in dom


def test_a_search_without_confirmation_says_why_its_best_is_optimistic(tmp_path,
                                                                       capsys) -> None:
    spec = tmp_path / "n.toml"
    spec.write_text(SPEC.format(name="n").replace("trials = 10", "trials = 3")
                    .replace('pruner = "hyperband"', 'pruner = "none"'))
    assert main(["tune", str(spec), "--db", str(tmp_path / "n.db"), "--confirm", "0", "-o",
                 str(tmp_path / "n.html"), "--sampler", "random"]) == 0
    out = capsys.readouterr().out
    assert "No confirmation was run" in out and "overstates" in out
    html = (tmp_path / "n.html").read_text(encoding="utf-8")
    assert 'id="confirmation"' not in html and "No trial was pruned" in html


ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tuning"


def test_the_tuning_example_validates(capsys) -> None:
    assert main(["validate", str(EXAMPLE / "search.toml")]) == 0
    out = capsys.readouterr().out
    assert "is a valid search" in out and "warning" not in out


@pytest.mark.slow
def test_the_tuning_example_runs_as_its_readme_says(tmp_path, capsys) -> None:
    lines = [line.split(" #")[0].split() for line in
             (EXAMPLE / "README.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("optimlab tune ")]
    assert lines
    for argv in lines:
        assert main([*argv[1:2], str(ROOT / argv[2]), *argv[3:], "--db",
                     str(tmp_path / "e.db"), "-o", str(tmp_path / "e.html")]) == 0, \
            capsys.readouterr().err
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "The search ran 40 trials" in out and "over 8 seeds the search did not use" in out
