"""The report of a study: one self-contained HTML file, rebuilt from the store at any time.

:func:`write_report` reads a study from its store, analyses it (:func:`optimlab.lab.analysis
.analyze`), draws the plots (:mod:`optimlab.viz.curves`) and writes **one** HTML file that needs
nothing else: CSS inline, images inline as ``data:`` URIs, no external script, font or link,
and a Content-Security-Policy that forbids loading anything from anywhere (so it opens the same
from a laptop, an e-mail attachment or an air-gapped cluster).

Sections: the answer in words (the winner and how sure), the ranking with intervals, the
comparisons with the baseline, learning curves, learning rate, final metric, time to target (if
the study has a target), gradient norms, the spec, the environment, how to read the report.

Every string that comes from the user (study name, labels, spec values) is escaped by Jinja2's
autoescape: a study called ``<script>…</script>`` is shown as text.

>>> write_report("runs.db", out="report.html", png_dir="plots", smooth=0.6)
PosixPath('report.html')
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from optimlab.lab import stats
from optimlab.lab.analysis import Analysis, ConfigResult, analyze, curves
from optimlab.lab.store import FINISHED, Store

__all__ = ["Plot", "Report", "render_report", "write_report"]

#: the page's only script: marks <body data-images-ok="true|false"> once every image decoded
_SCRIPT = ("window.addEventListener('load', function () {"
           " var imgs = Array.prototype.slice.call(document.images);"
           " document.body.dataset.imagesOk = String(imgs.length > 0 && imgs.every("
           "function (i) { return i.complete && i.naturalWidth > 0; }));"
           " document.body.dataset.images = String(imgs.length); });")


@dataclass(frozen=True)
class Plot:
    """One figure of the report: its section ``key`` (also the PNG's file name), heading,
    caption, alt text and PNG bytes."""

    key: str
    title: str
    caption: str
    alt: str
    png: bytes

    @property
    def b64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Report:
    """A rendered report: the HTML text and the plots embedded in it."""

    html: str
    plots: list[Plot]
    analysis: Analysis


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def write_report(db_path: str | os.PathLike[str], study: str | None = None,
                 out: str | os.PathLike[str] = "report.html",
                 png_dir: str | os.PathLike[str] | None = None,
                 smooth: float | None = None, landscape: bool = False) -> Path:
    """Write the report of ``study`` (the latest when None) of the store ``db_path`` to
    ``out``, one self-contained HTML file; also each plot as ``<png_dir>/<key>.png`` when
    ``png_dir`` is given. ``smooth`` (an EWA β in [0, 1)) smooths the learning curves and
    gradient norms; ``landscape`` adds the loss landscape of the top-ranked configuration (it
    trains one trial again: seconds for small models). Returns the path written.

    Raises :class:`optimlab.lab.store.StoreError` (a ValueError) for a missing or unusable
    store or an unknown study, ValueError for a bad ``smooth``.
    """
    _check_smooth(smooth)
    with Store(db_path, create=False) as store:
        report = render_report(store, study, smooth=smooth, source=Path(db_path).name,
                               landscape=landscape)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(report.html, encoding="utf-8")
    os.replace(tmp, out)
    if png_dir is not None:
        folder = Path(png_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for plot in report.plots:
            (folder / f"{plot.key}.png").write_bytes(plot.png)
    return out


def render_report(store: Store, study: str | None = None, *, smooth: float | None = None,
                  band: str = "minmax", source: str = "", landscape: bool = False) -> Report:
    """Analyse ``study`` of ``store`` and render the HTML (returned, not written).

    With ``landscape`` the report adds the loss landscape of the top-ranked configuration's
    first finished seed: the trial is trained again from the store (same weights on the CPU,
    checked against the stored final metric) and drawn by :mod:`optimlab.viz.landscape`.
    """
    from optimlab.viz import curves as plots

    _check_smooth(smooth)
    a = analyze(store, study)
    per_config = {c.label: curves(store, c) for c in a.configs}
    words = stats.metric_words(a.monitor)
    values = [v for c in a.configs for v in (*c.final.values(), *c.best.values())]
    percent = stats.is_proportion_metric(a.monitor, values)
    smooth_note = (f" Each seed's curve is smoothed by an exponentially weighted average "
                   f"(β = {smooth:g}, bias-corrected) before averaging." if smooth is not None
                   else "")
    band_note = plots.band_words(band)  # type: ignore[arg-type]

    figs: list[Plot] = []

    def add(key: str, title: str, caption: str, alt: str, fig: Any) -> None:
        figs.append(Plot(key, title, caption, alt, plots.to_png(fig)))

    add("learning_curves", "Learning curves",
        f"Loss and {words.removeprefix('val ')} on the training (dashed) and validation (solid) "
        f"data after each epoch. Each line is the mean across seeds; {band_note}.{smooth_note}",
        "Learning curves of every configuration",
        plots.learning_curves(per_config, metric=a.monitor, band=band,  # type: ignore[arg-type]
                              smooth=smooth))
    add("learning_rate", "Learning rate",
        "The learning rate used at each optimizer step (the schedule), per configuration.",
        "Learning rate over steps", plots.learning_rate(per_config))
    add("final_metric", f"Final {words}",
        f"Final {words} per configuration, best rank at the top: the dot is the mean over seeds, "
        "the bar its 95% bootstrap confidence interval, the open circles the individual seeds. "
        "The dotted line marks the baseline's mean.",
        f"Final {words} with confidence intervals",
        plots.final_metric(a.ranking, metric=a.monitor, baseline=a.baseline,
                           per_seed={c.label: c.final for c in a.configs}))
    target_text = ""
    if a.spec.target is not None:
        target_text = _target_words(a.spec.target.metric, a.spec.target.value)
        add("time_to_target", f"Time to reach {target_text}",
            f"Optimizer steps (left) and training seconds (right) until {target_text} was first "
            "reached: the bar is the mean over the seeds that reached it, the error bar its 95% "
            "interval (when at least two seeds reached it), and the text how many seeds did.",
            "Steps and seconds to reach the target",
            plots.time_to_target(
                {c.label: c.steps_to_target for c in a.configs if c.steps_to_target},
                {c.label: c.seconds_to_target for c in a.configs if c.seconds_to_target},
                target=target_text))
    add("grad_norms", "Gradient norms",
        f"Global L2 norm of the gradient (before clipping) at each optimizer step, log scale. "
        f"Each line is the geometric mean across seeds; {band_note}.{smooth_note}",
        "Gradient norm over steps",
        plots.grad_norms(per_config, band=band, smooth=smooth))  # type: ignore[arg-type]

    layer_grads = {c.label: {r.seed: store.layer_grads(r.id) for r in c.trials}
                   for c in a.configs}
    if any(g for runs in layer_grads.values() for g in runs.values()):
        from optimlab.viz.gradients import layer_grad_norms  # only studies that record them

        add("layer_grads", "Gradients per layer",
            "Each layer's gradient norm, averaged over the updates of each epoch, log scale: "
            "one line per layer from the first (dark) to the last (light), the geometric mean "
            "across seeds. First layers far below the last ones mean vanishing gradients.",
            "Gradient norm of each layer over epochs", layer_grad_norms(layer_grads))
    landscape_note = ""
    if landscape and a.ranking:
        landscape_note = _add_landscape(store, a, figs)

    context = _context(a, percent=percent, target_text=target_text, source=source,
                       smooth=smooth)
    context["landscape_note"] = landscape_note
    context["plots"] = {p.key: p for p in figs}
    context["script"] = Markup(_SCRIPT)
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    context["csp"] = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                      f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    html = _environment().get_template("report.html.j2").render(**context)
    return Report(html=html, plots=figs, analysis=a)


def _add_landscape(store: Store, a: Any, figs: list[Plot]) -> str:
    """Landscape plots of the best configuration's first finished seed; returns a note."""
    import tempfile

    from optimlab.lab.store import FINISHED
    from optimlab.viz.landscape import landscape_report

    best = a.config(a.ranking[0].label)
    seeds = [r.seed for r in best.trials if r.status in FINISHED]
    if not seeds:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        result = landscape_report(grid=25, out=tmp, db=store.path, study=a.study,
                                  config=best.label, trial_seed=seeds[0])
        nums = result.numbers
        line = (Path(tmp) / "landscape_line.png").read_bytes()
        sliced = (Path(tmp) / "landscape_slice.png").read_bytes()
    same = ("its final metric equals the stored one, so these are the study's weights"
            if nums.get("reproduces_store") else
            "note: its final metric differs from the stored one (a different machine or thread "
            "count changes the last digits), so these weights are a close replay, not the "
            "study's own")
    figs.append(Plot("landscape_line", f"Loss landscape of {best.label}: the straight line",
                     "Training and validation loss along θ(α) = (1 − α)·θ₀ + α·θ₁ from the "
                     "initial weights θ₀ (α = 0) to the final weights θ₁ (α = 1) (Goodfellow "
                     "et al., 2015).", "Loss along the line from initial to final weights", line))
    figs.append(Plot("landscape_slice", f"Loss landscape of {best.label}: 2-D slices",
                     "Left: the training loss on the plane of the training path's two principal "
                     "directions, with the path. Right: the loss around the final weights along "
                     "two random filter-normalized directions (Li et al., 2018).",
                     "Loss landscape slices with the training path", sliced))
    return (f"The top-ranked configuration, {best.label} (seed {seeds[0]}), trained again from "
            f"the store: {same}. Sharpness (mean loss increase at radius "
            f"{nums.get('sharpness_radius')} along filter-normalized directions): "
            f"{nums.get('sharpness', float('nan')):.3g}.")


# --------------------------------------------------------------------------------------------
# Building the context
# --------------------------------------------------------------------------------------------


def _environment() -> Environment:
    return Environment(loader=PackageLoader("optimlab.viz", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


def _check_smooth(smooth: float | None) -> None:
    if smooth is not None and (isinstance(smooth, bool) or not 0.0 <= float(smooth) < 1.0):
        raise ValueError(f"smooth must be an EWA β in [0, 1) such as 0.6; got {smooth!r}")


def _context(a: Analysis, *, percent: bool, target_text: str, source: str,
             smooth: float | None) -> dict[str, Any]:
    words = stats.metric_words(a.monitor)
    unit = " (%)" if percent else ""

    def num(v: float) -> str:
        return _num(v, percent)

    from optimlab.viz.curves import colors

    differing = _differing_settings([c.settings for c in a.configs])
    palette = colors([c.label for c in a.configs])
    by_label = {c.label: c for c in a.configs}
    rows = []
    for entry in a.ranking:
        c = by_label[entry.label]
        s = c.summary_final
        rows.append({
            "rank": entry.rank, "label": c.label, "baseline": c.label == a.baseline,
            "color": palette[c.label],
            "settings": _settings_text(c.settings, differing),
            "mean": num(s.mean), "ci": _interval(s.ci_low, s.ci_high, percent),
            "std": num(s.std), "best": num(c.summary_best.mean),
            "test": num(c.summary_test.mean), "seeds": f"{s.n_finite}/{s.n}",
            "diverged": c.diverged, "failed": c.failed, "unfinished": c.unfinished,
            "time": _seconds(_time_per_seed(c)),
        })
    comparisons = []
    for label, comp in a.comparisons.items():
        comparisons.append({
            "label": label, "statement": comp.statement, "color": palette[label],
            "diff": _num(comp.mean_diff, percent, signed=True),
            "ci": _interval(comp.ci_low, comp.ci_high, percent),
            "p": _p(comp.p_value), "wins": f"{comp.wins}/{comp.n_pairs}",
            "verdict": {True: "better", False: "worse", None: "no clear difference"}[comp.better],
            "better": comp.better,
        })
    n_seeds = max((c.n for c in a.configs), default=0)
    targets = []
    if a.spec.target is not None:
        for c in a.configs:
            if c.steps_to_target is not None and c.seconds_to_target is not None:
                targets.append({"label": c.label, "steps": c.steps_to_target.statement,
                                "seconds": _seconds(c.seconds_to_target.summary.mean)
                                if c.seconds_to_target.reached else "—"})
    env = {k: _short(v) for k, v in sorted(a.environment.items())}
    return {
        "title": a.study, "study": a.study, "description": a.spec.description,
        "source": source, "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "monitor": a.monitor, "words": words, "unit": unit, "mode": a.mode,
        "diff_unit": " (points)" if percent else "",
        "direction": "higher is better" if a.mode == "max" else "lower is better",
        "baseline": a.baseline, "rows": rows, "comparisons": comparisons,
        "answer": _answer(a, percent), "incomplete": _incomplete(a),
        "n_seeds": n_seeds, "how_to_read": _how_to_read(a, n_seeds),
        "target": target_text, "targets": targets, "smooth": smooth,
        "spec": _toml(a.spec.model_dump(mode="json")),
        "environment": env, "n_configs": len(a.configs),
        "n_trials": sum(c.n for c in a.configs),
    }


def _answer(a: Analysis, percent: bool) -> list[str]:
    """The answer in a few sentences: who wins, by how much, how sure."""
    words = stats.metric_words(a.monitor)
    finite = [e for e in a.ranking if math.isfinite(e.summary.mean)]
    if not finite:
        return [f"No configuration has a finished run with a finite final {words} yet, so "
                "there is nothing to compare."]
    best = finite[0]
    top = [e for e in finite if e.rank == best.rank]
    s = best.summary
    pct = "%" if percent else ""
    value = f"{_num(s.mean, percent)}{pct}"
    seeds = f"{s.n_finite} seed{'s' if s.n_finite != 1 else ''}"
    ci = _interval(s.ci_low, s.ci_high, percent)
    ci_text = f"95% CI {ci}" if ci != "—" else "no interval: a single seed says nothing of " \
                                                 "the spread"
    out = []
    if len(finite) == 1:
        out.append(f"Only {best.label} has finished runs: final {words} {value} on average over "
                   f"{seeds} ({ci_text}).")
    elif len(top) == 1:
        second = finite[1]
        ahead = (f"ahead of {second.label} ({_num(second.summary.mean, percent)}{pct})")
        if ci != "—" and _interval(second.summary.ci_low, second.summary.ci_high,
                                   percent) != "—":
            ahead += "; the intervals of the first two do not overlap"
        else:
            ahead += ", but without intervals (too few seeds) this order is not a statistical " \
                     "result"
        out.append(f"{best.label} is the best configuration: final {words} {value} on average "
                   f"over {seeds} ({ci_text}), {ahead}.")
    else:
        names = ", ".join(e.label for e in top)
        extreme = "highest" if a.mode == "max" else "lowest"
        out.append(f"There is no single winner: {names} share rank 1 on final {words} — their "
                   "95% intervals overlap, so these runs cannot tell them apart. "
                   f"{best.label} has the {extreme} mean ({value}, {ci_text}).")
    comp = a.comparisons.get(best.label)
    if comp is not None:
        n = comp.n_pairs
        if n < 2:
            out.append(f"Against the baseline {a.baseline}, {best.label} cannot be compared "
                       f"yet: {n} paired seed{'s' if n != 1 else ''} (a paired comparison "
                       "needs at least two seeds finished by both).")
        elif comp.better is True and comp.significant:
            out.append(f"Against the baseline {a.baseline} the result is clear: paired by seed, "
                       f"the 95% interval of {best.label}'s gain excludes zero and the Wilcoxon "
                       f"test agrees ({_p(comp.p_value, words=True)}, better on "
                       f"{comp.wins}/{n} seeds).")
        elif comp.better is True:
            why = (f"cannot confirm it with {n} paired seeds ({_p(comp.p_value, words=True)}; "
                   f"the smallest p it can give with {n} seeds is {_p_min(n):.2g})"
                   if _p_min(n) >= 0.05 else
                   f"does not confirm it ({_p(comp.p_value, words=True)})")
            out.append(f"Against the baseline {a.baseline}, paired by seed, the 95% interval of "
                       f"the difference excludes zero and {best.label} is better on "
                       f"{comp.wins}/{n} seeds, but the Wilcoxon test {why}. Fairly sure, not "
                       "proven: run more seeds to be sure.")
        elif comp.better is None:
            out.append(f"Against the baseline {a.baseline}, paired by seed, {best.label}'s "
                       f"difference is not clear (its 95% interval includes zero, "
                       f"{_p(comp.p_value, words=True)}, better on {comp.wins}/{n} seeds): "
                       "treat the two as tied.")
        else:
            out.append(f"Paired by seed, though, {best.label} is worse than the baseline "
                       f"{a.baseline}: the 95% interval of the difference lies on the bad side "
                       f"of zero (better on {comp.wins}/{n} seeds). Prefer the paired result "
                       "to the means.")
    elif best.label == a.baseline and a.comparisons:
        worse = [lab for lab, c in a.comparisons.items() if c.better is False]
        unclear = [lab for lab, c in a.comparisons.items() if c.better is not False]
        parts = []
        if worse:
            parts.append(f"clearly better than {', '.join(worse)}")
        if unclear:
            parts.append(f"not clearly different from {', '.join(unclear)}")
        out.append(f"{best.label} is also the baseline: paired by seed, it is "
                   f"{' and '.join(parts)}.")
    trouble = [(c.label, c.diverged, c.failed, c.n) for c in a.configs if c.diverged or c.failed]
    if trouble:
        out.append("Some runs did not finish normally: " + "; ".join(
            f"{label}: " + ", ".join(part for part in (
                f"{d}/{n} diverged" if d else "", f"{f}/{n} failed" if f else "") if part)
            for label, d, f, n in trouble)
            + ". Those seeds are left out of the statistics.")
    return out


def _incomplete(a: Analysis) -> str:
    """A warning when trials have not finished, else ""."""
    counts: dict[str, int] = {}
    for c in a.configs:
        for t in c.trials:
            if t.status not in FINISHED:
                counts[t.status] = counts.get(t.status, 0) + 1
    if not counts:
        return ""
    total = sum(c.n for c in a.configs)
    missing = sum(counts.values())
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"This study is incomplete: {missing} of {total} trials have not finished "
            f"({detail}). The numbers below use only the finished trials; run the study again "
            "to finish it (finished trials are kept) and rebuild this report.")


def _how_to_read(a: Analysis, n: int) -> list[str]:
    out = [
        "Every configuration was trained on the same data split with each seed; a seed fixes "
        "the initialization and the order of the batches, so differences between seeds show "
        "how much the result depends on luck.",
        "Intervals are 95% bootstrap confidence intervals (BCa) of the mean over seeds. With "
        "few seeds (fewer than about 10) bootstrap intervals are too narrow: read them as a "
        "rough guide, not a guarantee.",
        "Ranks: configurations are sorted by mean; one whose interval overlaps that of the "
        "first configuration of a tier joins that tier and shares its rank (a tie: these runs "
        "cannot separate them), so ranks can run 1, 1, 3.",
        f"Comparisons with the baseline ({a.baseline}) are paired: the difference is taken "
        "seed by seed, which removes the luck the two runs of a seed share. \"Better\" means "
        "the interval of the mean difference lies entirely on the good side of zero; p is the "
        "two-sided Wilcoxon signed-rank test of the paired differences.",
    ]
    if n:
        pmin = _p_min(n)
        if pmin >= 0.05:
            out.append(f"With {n} seeds the Wilcoxon test cannot reach p < 0.05 however large "
                       f"the difference (its smallest possible p is 2/2^{n} = {pmin:.2g}); it "
                       "needs at least 6 seeds. Here, trust the interval and the seed wins, "
                       "and run more seeds for a firm answer.")
        else:
            out.append(f"With {n} seeds the smallest p the Wilcoxon test can give is "
                       f"{pmin:.2g}, so p < 0.05 is reachable.")
    return out


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _p_min(n: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p-value with ``n`` pairs: 2 / 2ⁿ."""
    return min(1.0, 2.0 / 2.0**n)


def _num(v: float, percent: bool, *, signed: bool = False) -> str:
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "—"
    sign = "+" if signed else ""
    text = f"{v * 100:{sign}.1f}" if percent else f"{v:{sign}.4g}"
    return text.replace("-", "\u2212")


def _interval(low: float, high: float, percent: bool) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"[{_num(low, percent)}, {_num(high, percent)}]"


def _p(p: float, *, words: bool = False) -> str:
    if not math.isfinite(p):
        text = "n/a"
    elif p < 0.001:
        return "p < 0.001"
    else:
        text = f"{p:.2g}"
    return f"p = {text}" if words else text


def _seconds(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    if s < 60:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _time_per_seed(c: ConfigResult) -> float:
    times = [t.wall_time for t in c.trials if t.wall_time is not None]
    return sum(times) / len(times) if times else math.nan


def _target_words(metric: str, value: float) -> str:
    words = stats.metric_words(metric)
    if stats.is_proportion_metric(metric, [value]):
        return f"{value * 100:g}% {words}"
    return f"{words} {value:g}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _differing_settings(settings: list[dict[str, Any]]) -> list[str]:
    """The (dotted) setting names whose values are not the same in every configuration."""
    flat = [_flatten(s) for s in settings]
    keys = sorted({k for f in flat for k in f})
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str)
                                    for f in flat}) > 1]


def _settings_text(settings: dict[str, Any], keys: list[str]) -> str:
    """The settings that set this configuration apart (keys another configuration sets but this
    one leaves at its default are not shown)."""
    flat = _flatten(settings)
    if "batch_size" in flat and flat["batch_size"] is None:
        flat["batch_size"] = "full"  # batch gradient descent: worth saying, not a default
    shown = [k for k in keys if flat.get(k) is not None and flat.get(k) not in ({}, [])]
    return ", ".join(f"{k}={_short(flat[k])}" for k in shown)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml(spec: Mapping[str, Any]) -> str:
    """The spec as TOML, the format studies are written in (null values, which TOML cannot
    hold, are left out: they mean "the default")."""

    def key(k: str) -> str:
        return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") \
                if math.isinf(v) else repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()
                                   if x is not None) + "}"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
        return json.dumps(str(v), ensure_ascii=False)

    def body(d: Mapping[str, Any]) -> list[str]:
        return [f"{key(k)} = {value(v)}" for k, v in d.items()
                if v is not None and not (isinstance(v, Mapping) and not v)]

    lines = body({k: v for k, v in spec.items() if not isinstance(v, Mapping | list)
                  or (isinstance(v, list) and k != "configs")})
    for k, v in spec.items():
        if isinstance(v, Mapping) and v:
            lines += ["", f"[{key(k)}]", *body(v)]
    for config in spec.get("configs") or []:
        lines += ["", "[[configs]]", *body(config)]
    return "\n".join(lines) + "\n"
