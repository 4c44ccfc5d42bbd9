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
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from optimlab.lab import answer, words
from optimlab.lab.analysis import Analysis, analyze, seed_curves
from optimlab.lab.store import FINISHED, Store
from optimlab.train.lr_find import LRFindResult

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
                 smooth: float | None = None, landscape: bool = False,
                 only: Sequence[str] | None = None,
                 analysis: Analysis | None = None) -> Path:
    """Write the report of ``study`` (the latest when None) of the store ``db_path`` to
    ``out``, one self-contained HTML file; also each plot as ``<png_dir>/<key>.png`` when
    ``png_dir`` is given. ``smooth`` (an EWA β in [0, 1)) smooths the learning curves and
    gradient norms; ``landscape`` adds the loss landscape of the top-ranked configuration (it
    trains one trial again: seconds for small models); ``only`` limits the curve plots to these
    configuration labels (default: all, or with more than 10 the best-ranked and the baseline).
    ``analysis``: the study already analysed (:func:`optimlab.lab.analysis.analyze`), so it is
    not analysed twice. Returns the path written.

    Raises :class:`optimlab.lab.store.StoreError` (a ValueError) for a missing or unusable
    store or an unknown study, ValueError for a bad ``smooth`` or an unknown label in ``only``.
    """
    _check_smooth(smooth)
    with Store(db_path, create=False) as store:
        report = render_report(store, study, smooth=smooth, source=Path(db_path).name,
                               landscape=landscape, only=only, analysis=analysis)
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


#: with more configurations than this, the curve plots draw the best-ranked and the baseline
MAX_DRAWN = 10


def drawn_labels(analysis: Analysis, only: Sequence[str] | None = None) -> list[str]:
    """The configurations the curve plots draw: ``only`` (checked against the study's labels),
    else all of them up to :data:`MAX_DRAWN`, else the first ``MAX_DRAWN`` of the ranking
    order with the baseline among them."""
    labels = [c.label for c in analysis.configs]
    if only:
        unknown = [x for x in only if x not in labels]
        if unknown:
            raise ValueError(f"--only: no configuration {', '.join(map(repr, unknown))} in "
                             f"study {analysis.study!r}; its labels are: {', '.join(labels)}")
        return [x for x in labels if x in set(only)]
    if len(labels) <= MAX_DRAWN:
        return labels
    order = [e.label for e in analysis.ranking]
    keep = order[:MAX_DRAWN]
    if analysis.baseline in labels and analysis.baseline not in keep:
        keep = [*keep[:MAX_DRAWN - 1], analysis.baseline]
    return [x for x in labels if x in set(keep)]


def render_report(store: Store, study: str | None = None, *, smooth: float | None = None,
                  band: str = "minmax", source: str = "", landscape: bool = False,
                  only: Sequence[str] | None = None,
                  analysis: Analysis | None = None) -> Report:
    """Analyse ``study`` of ``store`` (unless its ``analysis`` is given) and render the HTML
    (returned, not written).

    With ``landscape`` the report adds the loss landscape of the top-ranked configuration's
    first finished seed: the trial is trained again from the store (same weights on the CPU,
    checked against the stored final metric) and drawn by :mod:`optimlab.viz.landscape`.
    """
    from optimlab.viz import curves

    _check_smooth(smooth)
    if analysis is None:
        analysis = analyze(store, study)
    drawn = drawn_labels(analysis, only)
    per_config = {c.label: seed_curves(store, c) for c in analysis.configs if c.label in drawn}
    metric = words.metric_words(analysis.monitor)
    percent = analysis.percent
    smooth_note = (f" Each seed's curve is smoothed by an exponentially weighted average "
                   f"(β = {smooth:g}, bias-corrected) before averaging." if smooth is not None
                   else "")
    band_note = curves.band_words(band)  # type: ignore[arg-type]
    drawn_note = ""
    if len(drawn) < len(analysis.configs):
        drawn_note = (f" Drawn: {len(drawn)} of {len(analysis.configs)} configurations "
                      f"({words.names(drawn)}); `optimlab report --only LABEL …` picks others.")

    figs: list[Plot] = []

    def add(key: str, title: str, caption: str, alt: str, fig: Any) -> None:
        figs.append(Plot(key, title, caption, alt, curves.to_png(fig)))

    add("learning_curves", "Learning curves",
        f"Loss (log scale) and {metric.removeprefix('val ')} on the training (dashed) and "
        f"validation (solid) data after each epoch. Each line is the mean across seeds; "
        f"{band_note}.{smooth_note}{drawn_note}",
        "Learning curves of every configuration",
        curves.learning_curves(per_config, metric=analysis.monitor, band=band,  # type: ignore[arg-type]
                               smooth=smooth))
    add("learning_rate", "Learning rate",
        f"The learning rate used at each optimizer step (the schedule), per configuration."
        f"{drawn_note}", "Learning rate over steps", curves.learning_rate(per_config))
    add("final_metric", f"Final {metric}",
        f"Final {metric} per configuration, best rank first: the dot is the mean over the "
        "seeds with a finite value, the bar its 95% Student-t confidence interval, the open "
        "circles the individual seeds, and a red × at the left edge each seed that diverged "
        "or failed. The dotted line marks the baseline's mean. A configuration with fewer "
        "than two finite values has no bar and no rank.",
        f"Final {metric} with confidence intervals",
        curves.final_metric(analysis.ranking, metric=analysis.monitor,
                            baseline=analysis.baseline,
                            per_seed={c.label: c.final for c in analysis.configs}))
    target_text = ""
    if analysis.spec.target is not None:
        target_text = words.target_words(analysis.spec.target.metric,
                                         analysis.spec.target.value)
        add("time_to_target", f"Time to reach {target_text}",
            f"Optimizer steps (left) and training seconds (right) until {target_text} was first "
            "reached: the bar is the median over all seeds (a seed that never reached it "
            "counts as slowest), the error bar its distribution-free 95% interval (from 6 "
            "seeds; an arrow when its upper end was never reached), the dots the individual "
            "seeds, and the text how many seeds reached it. Steps are tested against the "
            "baseline; seconds are shown, not tested, since they depend on the machine's load "
            "while each trial ran.",
            "Steps and seconds to reach the target",
            curves.time_to_target(
                {c.label: c.steps_to_target for c in analysis.configs if c.steps_to_target},
                {c.label: c.seconds_to_target for c in analysis.configs
                 if c.seconds_to_target},
                target=target_text))
    add("grad_norms", "Gradient norms",
        f"Global L2 norm of the gradient (before clipping) at each optimizer step, log scale. "
        f"Each line is the geometric mean across seeds; {band_note}.{smooth_note}{drawn_note}",
        "Gradient norm over steps",
        curves.grad_norms(per_config, band=band, smooth=smooth))  # type: ignore[arg-type]

    _add_restarts_and_lr_finds(analysis, add)
    layer_grads = {c.label: {r.seed: store.layer_grads(r.id) for r in c.trials}
                   for c in analysis.configs}
    if any(g for runs in layer_grads.values() for g in runs.values()):
        from optimlab.viz.gradients import layer_grad_norms  # only studies that record them

        add("layer_grads", "Gradients per layer",
            "Each layer's gradient norm, averaged over the updates of each epoch, log scale: "
            "one line per layer from the first (dark) to the last (light), the geometric mean "
            "across seeds. First layers far below the last ones mean vanishing gradients.",
            "Gradient norm of each layer over epochs", layer_grad_norms(layer_grads))
    landscape_note = ""
    if landscape and analysis.ranking:
        landscape_note = _add_landscape(store, analysis, figs)

    context = _context(analysis, percent=percent, target_text=target_text, source=source,
                       smooth=smooth)
    context["landscape_note"] = landscape_note
    context["plots"] = {p.key: p for p in figs}
    context["script"] = Markup(_SCRIPT)
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    context["csp"] = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                      f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    html = _environment().get_template("report.html.j2").render(**context)
    return Report(html=html, plots=figs, analysis=analysis)


def _add_restarts_and_lr_finds(analysis: Analysis, add: Any) -> None:
    """The plots of restarts and of the learning-rate range tests, for studies that have them
    (their words are in the answer: :func:`optimlab.lab.answer.restart_sentences`,
    :func:`~optimlab.lab.answer.lr_found_sentences`)."""
    restarted = {c.label: c.restarts for c in analysis.configs
                 if c.restarts is not None and c.restarts.chosen}
    if restarted:
        from optimlab.viz.restarts import restarts_figure  # only studies with restarts

        metric = words.metric_words(analysis.monitor)
        add("restarts", "Random restarts",
            f"Every restart's final {metric} (left) and test value (right), one cluster of "
            f"points per {analysis.pair}: the filled point is the restart kept, the best on "
            "validation; the open ones are the others. The spread of a cluster is what a new "
            "initialization changes; the right panel shows whether the choice made on "
            "validation holds on test data.",
            "Final validation and test values of every restart",
            restarts_figure(restarted, metric=analysis.monitor))
    found = {c.label: [LRFindResult.from_dict(f) for f in c.lr_finds.values()]
             for c in analysis.configs if c.lr_finds}
    if found:
        from optimlab.viz.lr_find import range_test_figure  # only studies with lr = "find"

        rule = next(iter(found.values()))[0].rule
        add("lr_find", "Learning-rate range tests",
            f"The range test each trial of lr = \"find\" ran on its training data before "
            f"training: the training loss (smoothed by a bias-corrected EWA) against the lr, "
            f"log scale, one line per trial. Markers: the suggestions of the three rules; the "
            f"filled one ({rule}) is the lr the trial trained with; × where the test stopped "
            f"because the loss blew up.",
            "Loss against learning rate in each trial's range test",
            range_test_figure(found, rule=rule))


def _add_landscape(store: Store, analysis: Analysis, figs: list[Plot]) -> str:
    """Landscape plots of the best configuration's first finished seed; returns a note."""
    # lazy: only a report with --landscape replays a trial and draws its landscape
    from optimlab.viz.curves import to_png
    from optimlab.viz.landscape import trial_landscape

    best = analysis.config(analysis.ranking[0].label)
    seeds = [r.seed for r in best.trials if r.status in FINISHED]
    if not seeds:
        return ""
    result = trial_landscape(store, analysis.study, best.label, seeds[0], grid=25)
    nums = result.numbers
    line = to_png(result.figures["landscape_line"])
    sliced = to_png(result.figures["landscape_slice"])
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


def _context(analysis: Analysis, *, percent: bool, target_text: str, source: str,
             smooth: float | None) -> dict[str, Any]:
    from optimlab.viz.curves import colors

    metric = words.metric_words(analysis.monitor)
    unit = " (%)" if percent else ""

    def num(v: float) -> str:
        return words.num(v, percent)

    differing = _differing_settings([c.settings for c in analysis.configs])
    palette = colors([c.label for c in analysis.configs])
    by_label = {c.label: c for c in analysis.configs}
    rows = []
    for entry in analysis.ranking:
        c = by_label[entry.label]
        s = c.summary_final
        rows.append({
            "rank": entry.rank if entry.rank is not None else words.DASH,
            "ranked": entry.rank is not None, "top": entry.rank == 1,
            "label": c.label, "baseline": c.label == analysis.baseline,
            "color": palette[c.label],
            "settings": _settings_text(c.settings, differing),
            "mean": num(s.mean), "ci": words.interval(s.ci_low, s.ci_high, percent),
            "std": num(s.std), "best": num(c.summary_best.mean),
            "test": num(c.summary_test.mean), "seeds": f"{s.n_finite}/{s.n}",
            "diverged": c.diverged, "failed": c.failed, "unfinished": c.unfinished,
            "time": words.seconds(c.time_per_seed),
        })
    comparisons = []
    for label, comp in analysis.comparisons.items():
        comparisons.append({
            "label": label, "statement": comp.statement, "color": palette[label],
            "diff": words.num(comp.mean_diff, percent, signed=True),
            "ci": words.interval(comp.ci_low, comp.ci_high, percent),
            "p": words.p_value(comp.p_value, prefix=False),
            "p_adj": words.p_value(comp.p_adjusted, prefix=False),
            "wins": f"{comp.wins}/{comp.n_pairs}",
            "prob": f"{words.fmt(comp.prob, 2)} [{words.fmt(comp.prob_low, 2)}, "
                    f"{words.fmt(comp.prob_high, 2)}]" if comp.n_pairs else words.DASH,
            "failed": f"{comp.candidate_failed}/{comp.n_pairs}",
            "verdict": _VERDICT_WORDS[comp.verdict], "better": comp.better,
        })
    targets = []
    if analysis.spec.target is not None:
        for c in analysis.configs:
            if c.steps_to_target is not None and c.seconds_to_target is not None:
                vs = analysis.target_comparisons.get("steps", {}).get(c.label)
                targets.append({
                    "label": c.label, "color": palette[c.label],
                    "steps": c.steps_to_target.statement,
                    "seconds": words.seconds(c.seconds_to_target.median)
                    if c.seconds_to_target.reached else words.DASH,
                    "verdict": _TARGET_WORDS[vs.verdict] if vs is not None else "baseline",
                })
    failures = [{"label": c.label, "seed": seed, "reason": reason}
                for c in analysis.configs for seed, reason in c.failures]
    env = {k: words.short(v) for k, v in sorted(analysis.environment.items())}
    return {
        "title": analysis.study, "study": analysis.study, "description": analysis.spec.description,
        "source": source, "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "monitor": analysis.monitor, "words": metric, "unit": unit, "mode": analysis.mode,
        "diff_unit": " (points)" if percent else "",
        "direction": "higher is better" if analysis.mode == "max" else "lower is better",
        "baseline": analysis.baseline, "rows": rows, "comparisons": comparisons,
        "answer": answer.answer(analysis), "incomplete": _incomplete(analysis),
        "n_seeds": analysis.n_seeds, "how_to_read": answer.how_to_read(analysis),
        "variance": answer.variance(analysis),
        "family": analysis.family, "seeds_needed": analysis.seeds_needed,
        "target": target_text, "targets": targets, "smooth": smooth,
        "failures": failures,
        "spec": _toml(analysis.spec.model_dump(mode="json")),
        "environment": env, "n_configs": len(analysis.configs),
        "n_trials": sum(len(c.trials) for c in analysis.configs),
        "units": f"{analysis.pair}s", "pair": analysis.pair.removesuffix(" pair"),
        "unit_header": "folds × seeds" if analysis.kfold else "seeds",
        "rests_on": _rests_on_words(analysis),
        "restart_sentences": answer.restart_sentences(analysis),
        "lr_sentences": answer.lr_found_sentences(analysis),
    }


def _rests_on_words(analysis: Analysis) -> str:
    """``× 3 seeds``, ``× 5 folds × 3 seeds``, with ``, best of 3 restarts``."""
    seeds = len(analysis.spec.seed_list)
    text = f"× {seeds} seed{'s' if seeds != 1 else ''}"
    if analysis.kfold:
        text = f"× {analysis.folds} folds {text}"
    if analysis.n_restarts > 1:
        text += f", best of {analysis.n_restarts} restarts"
    return text


_VERDICT_WORDS = {"better": "better", "worse": "worse", "unclear": "no clear difference",
                  "identical": "identical", "too few seeds": "too few seeds to tell",
                  "no data": "no paired seeds"}
_TARGET_WORDS = {"better": "faster", "worse": "slower", "unclear": "no clear difference",
                 "identical": "identical", "too few seeds": "too few seeds to tell",
                 "no data": "no paired seeds"}


def _incomplete(analysis: Analysis) -> str:
    """A warning when trials have not finished, else ""."""
    counts: dict[str, int] = {}
    for c in analysis.configs:
        for t in c.trials:
            if t.status not in FINISHED:
                counts[t.status] = counts.get(t.status, 0) + 1
    if not counts:
        return ""
    total = sum(c.n for c in analysis.configs)
    missing = sum(counts.values())
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (f"This study is incomplete: {missing} of {total} trials have not finished "
            f"({detail}). The numbers below use only the finished trials (a failed trial "
            "counts as its configuration's worst value); run the study again to finish it "
            "(finished trials are kept) and rebuild this report.")


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
    return ", ".join(f"{k}={words.short(flat[k])}" for k in shown)


def _toml(spec: Mapping[str, Any]) -> str:
    """The spec as TOML, the format studies are written in, by ``tomli_w`` (null values,
    which TOML cannot hold, are left out: they mean "the default")."""

    def drop(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): drop(x) for k, x in v.items()
                    if x is not None and not (isinstance(x, Mapping) and not x)}
        if isinstance(v, list | tuple):
            return [drop(x) for x in v if x is not None]
        return v

    top = {k: v for k, v in drop(spec).items() if v != []}  # no empty axes/configs lists
    return tomli_w.dumps(top)
