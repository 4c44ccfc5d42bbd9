"""The HTML report: self-contained, escaped, complete, and rendered by a real browser.

The browser test runs Debian's headless Chromium on the written file and checks three things:

* the page renders: ``--dump-dom`` gives the DOM after the load event, and it holds every
  section (by id);
* every image decoded: the report's one inline script sets ``<body data-images-ok>`` to whether
  each ``<img>`` has ``naturalWidth > 0`` once the page has loaded (and ``data-images`` to how
  many there are) — the dumped DOM carries both attributes;
* no console message: with ``--enable-logging=stderr`` Chromium prints every console message
  of the page (uncaught errors, CSP violations, ``console.*``) as a ``CONSOLE`` line with
  ``source: file://<the report>``; the report must produce none. A deliberately broken page is
  run through the same checks first, so a check that could never fail would be caught.
"""

from __future__ import annotations

import base64
import html as html_lib
import re
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from optimlab.cli import main
from optimlab.lab.analysis import analyze
from optimlab.lab.runner import register_study, run_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store, StoreError
from optimlab.viz.report import _toml, write_report

CHROMIUM = Path("/usr/bin/chromium")
XSS = "<script>alert(1)</script>"
BOLD = "<b>bold</b> adam"
SECTIONS = ["answer", "ranking", "statistics", "learning-curves", "learning-rate",
            "final-metric", "time-to-target", "gradient-norms", "spec", "environment",
            "how-to-read"]
PLOTS = ["learning_curves", "learning_rate", "final_metric", "time_to_target", "grad_norms"]


def _spec(name: str, **changes: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": name, "seeds": 2, "baseline": "sgd",
        "data": {"dataset": "iris", "val": 0.2, "test": 0.2},
        "train": {"model": {"type": "mlp", "hidden": [16]}, "epochs": 3, "batch_size": 16,
                  "lr": 0.05},
        "axes": {"optimizer": ["sgd", "adam"]},
        "target": {"metric": "val_accuracy", "value": 0.8}}
    spec.update(changes)
    return spec


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store, three studies: "t" (complete, with a target), a hostile one (a script for a
    name, markup in a label), and "partial" (one seed finished, the second still pending)."""
    path = tmp_path_factory.mktemp("store") / "s.db"
    run_study(parse_spec(_spec("t")), path)
    run_study(parse_spec(_spec(
        XSS, axes={}, target=None,
        configs=[{"label": "sgd", "optimizer": "sgd"},
                 {"label": BOLD, "optimizer": "adam"}],
        train={"model": {"type": "mlp", "hidden": [8]}, "epochs": 2, "batch_size": 32,
               "lr": 0.05})), path)
    partial = _spec("partial", seeds=1, target=None,
                    train={"model": {"type": "mlp", "hidden": [8]}, "epochs": 2,
                           "batch_size": 32, "lr": 0.05})
    run_study(parse_spec(partial), path)
    with Store(path) as store:  # a second seed, registered but never run
        register_study(store, parse_spec({**partial, "seeds": 2}))
    return path


@pytest.fixture(scope="module")
def report(db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("report")
    out = write_report(db, "t", out=folder / "report.html", png_dir=folder / "png",
                       smooth=0.5)
    return out, folder / "png", out.read_text(encoding="utf-8")


# -- the file --------------------------------------------------------------------------------


def test_report_is_self_contained(report: tuple[Path, Path, str]) -> None:
    path, _, html = report
    assert path.is_file() and html.startswith("<!DOCTYPE html>")
    # nothing is fetched: no external URL anywhere, no src/href/url() other than data: and #
    assert "http://" not in html and "https://" not in html
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
    refs += re.findall(r"""url\(\s*["']?([^"')]+)""", html)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs), refs
    assert "<link" not in html and "@import" not in html
    assert "default-src &#39;none&#39;" in html  # the CSP that forbids loading anything
    assert len(html) < 1_500_000


def test_report_holds_labels_statements_and_one_image_per_plot(
        db: Path, report: tuple[Path, Path, str]) -> None:
    _, _, html = report
    with Store(db, create=False) as store:
        a = analyze(store, "t")
    for c in a.configs:
        assert f'<span class="label">{c.label}</span>' in html
    assert a.comparisons
    for comp in a.comparisons.values():
        assert comp.statement in html
    for c in a.configs:
        assert c.steps_to_target is not None and c.steps_to_target.statement in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(PLOTS) == html.count("<img")
    for b64 in images:
        assert base64.b64decode(b64, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    for section in SECTIONS:
        assert f'id="{section}"' in html
    assert "The answer" in html and "Too few seeds to tell" in html
    assert "seeds would be needed" in html
    assert "incomplete" not in html.lower().split("</header>")[0]


def test_pngs_written_beside_it(report: tuple[Path, Path, str]) -> None:
    _, png_dir, html = report
    files = sorted(p.stem for p in png_dir.glob("*.png"))
    assert files == sorted(PLOTS)
    for p in png_dir.glob("*.png"):
        assert base64.b64encode(p.read_bytes()).decode() in html  # the same image, inline


def test_user_strings_are_escaped(db: Path, tmp_path: Path) -> None:
    html = write_report(db, XSS, out=tmp_path / "x.html").read_text(encoding="utf-8")
    assert XSS not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; adam" in html
    assert html.count("<script") == 1  # the report's own, nothing injected
    assert html.count('<img src="data:image/png;base64,') == len(PLOTS) - 1  # no target


def test_incomplete_study_says_so_at_the_top(db: Path, tmp_path: Path) -> None:
    html = write_report(db, "partial", out=tmp_path / "p.html").read_text(encoding="utf-8")
    header = html.split("</header>")[0]
    assert 'id="incomplete"' in header
    assert "2 of 4 trials have not finished (2 pending)" in header
    # one seed each: no interval, no rank, said in words
    assert "a single seed says nothing of the spread" in html
    assert "1 paired seed" in html


def test_bad_arguments(db: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        write_report(tmp_path / "missing.db", out=tmp_path / "r.html")
    with pytest.raises(StoreError, match="no study 'nope'"):
        write_report(db, "nope", out=tmp_path / "r.html")
    with pytest.raises(ValueError, match="smooth"):
        write_report(db, "t", out=tmp_path / "r.html", smooth=1.0)
    assert not (tmp_path / "r.html").exists()


def test_spec_is_shown_as_toml(db: Path) -> None:
    with Store(db, create=False) as store:
        spec = analyze(store, "t").spec.model_dump(mode="json")
    parsed = tomllib.loads(_toml(spec))

    def drop_none(v: object) -> object:
        if isinstance(v, dict):
            return {k: drop_none(x) for k, x in v.items() if x is not None and x != {}}
        return v

    assert parsed == {k: v for k, v in drop_none(spec).items() if v != [] and v != {}}


def test_plots_without_data_still_draw() -> None:
    from optimlab.viz import curves as plots

    for fig in (plots.learning_curves({}, metric="val_loss"), plots.learning_rate({}),
                plots.final_metric([], metric="val_accuracy"),
                plots.time_to_target({}, {}), plots.grad_norms({"a": {0: {"steps": {}}}})):
        assert plots.to_png(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="smooth"):
        plots.learning_curves({}, metric="val_loss", smooth=1.5)


# -- the command ------------------------------------------------------------------------------


def test_cli(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.html"
    assert main(["report", str(db), "--study", "t", "-o", str(out), "--png",
                 str(tmp_path / "png"), "--smooth", "0.6"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file() and len(list((tmp_path / "png").glob("*.png"))) == len(PLOTS)
    assert main(["report", str(tmp_path / "missing.db")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert main(["report", str(db), "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


# -- a real browser ---------------------------------------------------------------------------


def _chromium(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``page``; return stdout and the console lines about the page."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}",
           "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines()
               if ("CONSOLE" in line or "Uncaught" in line) and page.name in line]
    return done.stdout, console


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at "
                                                  "/usr/bin/chromium")
def test_renders_in_headless_chromium(report: tuple[Path, Path, str], tmp_path: Path) -> None:
    # the checks catch a broken page: an uncaught error, an image that does not decode
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report[2])
    bad = tmp_path / "broken.html"
    bad.write_text(html.replace("</main>", '<img src="data:image/png;base64,AAAA"><script>'
                                           "undefinedFunction();</script></main>"),
                   encoding="utf-8")
    dom, console = _chromium(bad, tmp_path, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console), console
    assert 'data-images-ok="false"' in dom

    path = report[0]
    dom, console = _chromium(path, tmp_path, "--dump-dom")
    assert console == []
    assert f'data-images="{len(PLOTS)}"' in dom and 'data-images-ok="true"' in dom
    for section in SECTIONS:
        assert f'id="{section}"' in dom

    shot = tmp_path / "shot.png"
    _, console = _chromium(path, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
                           "--hide-scrollbars")
    assert console == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    assert float(np.std(pixels[:800])) > 0.05  # the top of the page is not blank



def test_the_report_can_include_the_best_configurations_landscape(tmp_path) -> None:

    spec = parse_spec({"name": "land", "seeds": 1, "data": {"dataset": "iris", "val": 0.2},
                       "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 3,
                                 "batch_size": 16, "lr": 0.05},
                       "axes": {"optimizer": ["sgd", "adam"]}})
    run_study(spec, tmp_path / "s.db")
    out = write_report(tmp_path / "s.db", out=tmp_path / "r.html", png_dir=tmp_path / "png",
                       landscape=True)
    html = out.read_text()
    assert 'id="landscape"' in html and "so these are the study&#39;s weights" in html
    assert (tmp_path / "png" / "landscape_slice.png").stat().st_size > 0
    plain = write_report(tmp_path / "s.db", out=tmp_path / "plain.html")
    assert 'id="landscape"' not in plain.read_text()


# -- the words of the answer, in a real browser ----------------------------------------------


def _words_spec(name: str, seeds: int, configs: list[dict[str, object]]) -> dict[str, object]:
    return {"name": name, "seeds": seeds, "baseline": "slow",
            "data": {"dataset": "iris", "val": 0.3, "test": 0.2},
            "train": {"model": {"type": "mlp", "hidden": [8]}, "epochs": 3, "batch_size": 16},
            "configs": configs}


SLOW = {"label": "slow", "optimizer": "sgd", "lr": 0.001}
FAST = {"label": "fast", "optimizer": "sgd", "lr": 0.3}
BOOM = {"label": "boom", "optimizer": "sgd", "lr": 1e6}


@pytest.fixture(scope="module")
def words_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two studies: "clear" (6 seeds, a large difference: one comparison, so 6 seeds allow a
    corrected verdict) and "diverged" (3 seeds, one configuration that diverges every time)."""
    path = tmp_path_factory.mktemp("words") / "w.db"
    run_study(parse_spec(_words_spec("clear", 6, [SLOW, FAST])), path, threads=1)
    run_study(parse_spec(_words_spec("diverged", 3, [SLOW, FAST, BOOM])), path, threads=1)
    return path


def _answer_text(dom: str) -> str:
    section = dom.split('<section id="answer">')[1].split("</section>")[0]
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", section))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's headless Chromium at "
                                                  "/usr/bin/chromium")
def test_the_answer_in_words_in_headless_chromium(words_db: Path, report: tuple[Path, Path, str],
                                                 tmp_path: Path) -> None:
    clear = write_report(words_db, "clear", out=tmp_path / "clear.html")
    diverged = write_report(words_db, "diverged", out=tmp_path / "diverged.html")

    dom, console = _chromium(clear, tmp_path, "--dump-dom")
    assert console == []
    text = " ".join(_answer_text(dom).split())
    assert "fast is the best configuration on final val accuracy: it is clearly better than " \
           "every other ranked configuration (paired by seed, Holm-corrected over the " \
           "study's 1 comparison)" in text
    assert "(0 of 6 diverged)" in text and "clearly better than the baseline: fast" in text

    dom, console = _chromium(diverged, tmp_path, "--dump-dom")
    assert console == []
    text = " ".join(_answer_text(dom).split())
    assert "Too few seeds to tell which configuration is best: with 3 seeds" in text
    assert "7 seeds would be needed" in text  # 3 pairs: 2/2^7 ≤ 0.05/3 < 2/2^6
    assert "Not ranked (fewer than two seeds with a finite value): boom (3 of 3 diverged)" \
        in text
    assert "boom: 3 of 3 diverged. Each counts against its configuration" in text
    whole = html_lib.unescape(dom)
    assert "boom: 3 of 3 diverged, slow: 0 of 3 diverged" in whole  # the comparison

    dom, console = _chromium(report[0], tmp_path, "--dump-dom")  # 2 seeds, with a target
    text = " ".join(_answer_text(dom).split())
    assert "Too few seeds to tell" in text and "seeds would be needed" in text
    assert "Time to reach 80% val accuracy, in optimizer steps" in text


# -- many configurations, failures, one label for time ----------------------------------------


def _fake_curves(n: int) -> dict[str, dict[int, dict[str, object]]]:
    epochs = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1),
               "train_accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e}
              for e in range(4)]
    steps = {"step": [1, 2, 3], "loss": [2.0, 1.0, 0.5], "lr": [0.1] * 3,
             "grad_norm": [1.0, 0.5, 0.2]}
    return {f"config {i:02d}": {0: {"epochs": epochs, "steps": steps}} for i in range(n)}


def test_sixteen_configurations_stay_readable() -> None:
    from optimlab.viz import curves

    labels = [f"config {i:02d}" for i in range(18)] + ["adam", "adam (lr=0.01)"]
    palette = curves.colors(labels)
    assert len(set(palette.values())) == len(labels)  # distinct, even for two "adam"s
    assert curves.colors(list(reversed(labels))) == palette  # whatever the order
    assert curves.colors(["sgd", "adam"]) == {"sgd": "#3a3a3a", "adam": "#e69f00"}

    per_config = _fake_curves(16)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    learning = curves.learning_curves(per_config, metric="val_accuracy")
    loss_ax, acc_ax = learning.axes[:2]
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    for fig in (learning, curves.learning_rate(per_config), curves.grad_norms(per_config)):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:  # entirely to the right of the data
                assert legend.get_window_extent(renderer).x0 >= \
                    ax.get_window_extent(renderer).x1


def test_only_picks_the_configurations_drawn(db: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from optimlab.viz.report import MAX_DRAWN, drawn_labels

    out = write_report(db, "t", out=tmp_path / "only.html", only=["adam"])
    page = out.read_text(encoding="utf-8")
    assert "Drawn: 1 of 2 configurations (adam)" in page
    with pytest.raises(ValueError, match="no configuration 'nope'"):
        write_report(db, "t", out=tmp_path / "x.html", only=["nope"])
    assert main(["report", str(db), "--study", "t", "--only", "sgd", "-o",
                 str(tmp_path / "cli.html")]) == 0
    assert "Drawn: 1 of 2 configurations (sgd)" in (tmp_path / "cli.html").read_text()
    assert main(["report", str(db), "--study", "t", "--only", "nope"]) == 2
    assert "no configuration 'nope'" in capsys.readouterr().err

    labels = [f"c{i:02d}" for i in range(14)]
    fake = SimpleNamespace(configs=[SimpleNamespace(label=x) for x in labels],
                           ranking=[SimpleNamespace(label=x) for x in reversed(labels)],
                           baseline="c00", study="s")
    drawn = drawn_labels(fake)  # type: ignore[arg-type]
    assert len(drawn) == MAX_DRAWN and "c00" in drawn and "c13" in drawn and "c04" not in drawn


def test_failure_reasons_are_shown_in_the_summary_and_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import optimlab.lab.trial as trial

    real = trial.build_trainer

    def fragile(spec: object, settings: dict[str, object], seed: int, *a: object,
                **kw: object) -> object:
        if settings["optimizer"] == "adam" and seed == 1:
            raise RuntimeError("the GPU caught fire")
        return real(spec, settings, seed, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(trial, "build_trainer", fragile)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "fragile"\nseeds = 2\nbaseline = "sgd"\n[data]\ndataset = "iris"\n'
                    '[train]\nmodel = { type = "mlp", hidden = [8] }\nepochs = 1\n'
                    '[axes]\noptimizer = ["sgd", "adam"]\n')
    code = main(["run", str(spec), "--db", str(tmp_path / "f.db"), "--report",
                 str(tmp_path / "f.html")])
    out = capsys.readouterr().out
    assert code == 1
    assert "Failed trials:" in out and "adam (seed 1): RuntimeError: the GPU caught fire" in out
    assert "time / seed" in out  # the report's name for the time column
    page = (tmp_path / "f.html").read_text(encoding="utf-8")
    assert 'id="failures"' in page and "RuntimeError: the GPU caught fire" in page
    assert "time / seed" in page
    assert "1 of 2 failed" in html_lib.unescape(page)
