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
    assert "The answer" in html and "Wilcoxon test cannot reach p &lt; 0.05" in html
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
    assert "cannot be compared yet: 1 paired seed" in html  # one seed each: no statistics


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
        spec = analyze(store, "t", n_resamples=99).spec.model_dump(mode="json")
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
