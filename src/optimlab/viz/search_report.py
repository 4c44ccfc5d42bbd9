"""The report of a hyperparameter search: one self-contained HTML file, rebuilt from the store.

Sections: the answer in words (what ran, the best trial, what pruning saved, and the
confirmation's answer), the best value over trials, parameter importances (fANOVA), slice plots
of the value against the most important parameters, every trial's value after each epoch, the
pruned trials and the compute they saved, the confirmation's ranking and comparisons with the
baseline (the lab's statistics, as in a study report), the best trials and all trials, the spec,
the environment, how to read it. Same page rules as the study report
(:mod:`optimlab.viz.report`): CSS and images inline, one script allowed by its hash, a
Content-Security-Policy that loads nothing, every user string escaped.

>>> write_search_report("optimlab.db", "mlp-on-digits", out="search.html")
PosixPath('search.html')
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup

from optimlab.lab import answer, words
from optimlab.lab.store import Store
from optimlab.tune.results import SearchResults, load_search
from optimlab.tune.strategies import PRUNER_WORDS, SAMPLER_WORDS
from optimlab.viz import curves, search_plots
from optimlab.viz.report import _SCRIPT, Plot, _context, _environment, _toml

__all__ = ["render_search_report", "write_search_report"]

#: slice plots drawn for at most this many parameters (the most important first)
MAX_SLICES = 6
#: trials listed in the table of the best
TOP = 10


def write_search_report(db_path: str | os.PathLike[str], search: str | None = None,
                        out: str | os.PathLike[str] = "report.html",
                        png_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the report of ``search`` (the latest search when None) of the store ``db_path``
    to ``out``; each plot also as ``<png_dir>/<key>.png`` when given. Returns the path."""
    with Store(db_path, create=False) as store:
        results = load_search(store, search)
        html, plots = render_search_report(results, source=Path(db_path).name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    if png_dir is not None:
        folder = Path(png_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for plot in plots:
            (folder / f"{plot.key}.png").write_bytes(plot.png)
    return out


def render_search_report(results: SearchResults, *, source: str = "") -> tuple[str, list[Plot]]:
    """The HTML of a search's report and its plots."""
    metric = words.metric_words(results.monitor)
    figs: list[Plot] = []

    def add(key: str, title: str, caption: str, alt: str, fig: Any) -> None:
        figs.append(Plot(key, title, caption, alt, curves.to_png(fig)))

    better = "higher" if results.direction == "maximize" else "lower"
    add("search_history", "The best value over trials",
        f"Final {metric} of each trial ({better} is better) in the order the sampler drew "
        "them; the green line is the best complete trial so far. Pruned trials are grey "
        "diamonds at the value they were stopped with (after fewer epochs, so not comparable "
        "with complete ones); failed and diverged trials are red × on the bottom edge.",
        "Final value of each trial and the best so far", search_plots.value_history(results))
    importances, importance_note = results.importances()
    add("search_importance", "Parameter importance", importance_note,
        "Importance of each parameter",
        search_plots.importance_bars(importances, monitor=results.monitor))
    chosen = [k for k, _ in sorted(importances.items(), key=lambda kv: -kv[1])][:MAX_SLICES]
    if not chosen:
        chosen = results._all_params()[:MAX_SLICES]
    add("search_slices", "Slices: the value against each parameter",
        f"Final {metric} of every complete trial (dots, light = early, dark = late) and the "
        "value each pruned trial was stopped with (grey diamonds) against "
        + ("the most important parameters" if importances else "the parameters")
        + f" ({', '.join(chosen)}). Each panel ignores the other parameters: a trend seen "
        "here can be another parameter's doing.",
        "The value against each parameter", search_plots.slice_plots(results, chosen))
    add("search_curves", "Every trial, epoch by epoch",
        f"The {metric} after each epoch of every trial that trained: complete trials in blue, "
        "pruned trials in grey, ending at a diamond where the pruner stopped them, the best "
        "trial in green. This is what the pruner compares: a trial's value at an epoch "
        "against the other trials' values at that epoch.",
        "Value after each epoch of every trial", search_plots.trial_curves(results))
    a = results.confirmation
    confirmation: dict[str, Any] | None = None
    if a is not None:
        add("confirmation_final", f"Confirmation: final {words.metric_words(a.monitor)}",
            f"Final {words.metric_words(a.monitor)} of the confirmed configurations over "
            f"{words.plural(a.n_seeds, 'fresh seed')}: the dot is the mean, the bar its 95% "
            "Student-t interval, the open circles the seeds, a red × each seed that diverged "
            "or failed. The dotted line marks the baseline's mean.",
            "Final metric of the confirmed configurations",
            curves.final_metric(a.ranking, metric=a.monitor, baseline=a.baseline,
                                per_seed={c.label: c.final for c in a.configs}))
        lab = _context(a, percent=a.percent, target_text="", source=source, smooth=None)
        confirmation = {"name": results.confirmation_name, "rows": lab["rows"],
                        "comparisons": lab["comparisons"], "words": lab["words"],
                        "unit": lab["unit"], "diff_unit": lab["diff_unit"],
                        "family": lab["family"], "seeds_needed": lab["seeds_needed"],
                        "baseline": a.baseline, "variance": lab["variance"],
                        "how_to_read": answer.how_to_read(a), "n_seeds": a.n_seeds,
                        "mode": a.mode, "incomplete": lab["incomplete"]}
    context = _search_context(results, source)
    context.update(confirmation=confirmation, plots={p.key: p for p in figs},
                   importance_note=importance_note)
    context["script"] = Markup(_SCRIPT)
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    context["csp"] = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                      f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    html = _environment().get_template("search_report.html.j2").render(**context)
    return html, figs


def _search_context(r: SearchResults, source: str) -> dict[str, Any]:
    counts = r.counts
    n = len(r.trials)
    budgets = r.budgets

    def epochs(t: Any) -> str:
        trained = r.trained(t)
        budget = budgets.get(t.number)
        if "same_as" in t.user_attrs:
            return f"— (as trial {t.user_attrs['same_as']})"
        return f"{trained} / {budget}" if budget else str(trained)

    def note(t: Any) -> str:
        if "same_as" in t.user_attrs:
            return f"same configuration as trial {t.user_attrs['same_as']}: its result"
        return (t.error or "").strip().splitlines()[-1] if t.error else ""

    top = [{"rank": i + 1, "number": t.number, "value": r.num(t.value), "epochs": epochs(t),
            "params": r.param_text(t)} for i, t in enumerate(r.ranked[:TOP])]
    rows = [{"number": t.number, "state": t.state, "value": r.num(t.value), "epochs": epochs(t),
             "params": r.param_text(t), "note": note(t),
             "bad": t.state in ("failed", "diverged")} for t in r.trials]
    pruned = [{"number": t.number, "epochs": epochs(t), "value": r.num(t.value),
               "params": r.param_text(t)} for t in r.pruned]
    full, trained = r.epochs_full, r.epochs_trained
    spec = r.spec.model_dump(mode="json")
    spec = {k: v for k, v in spec.items() if k not in ("axes", "configs", "baseline")}
    settings = r.settings
    spec["search"] = settings.get("space") or {}
    spec["tune"] = {k: settings[k] for k in ("sampler", "pruner", "seed", "startup")
                    if settings.get(k) is not None}
    incomplete = ""
    if counts.get("running"):
        incomplete = (f"{words.plural(counts['running'], 'trial')} of this search had not "
                      "finished when this report was written (running, or interrupted): run the "
                      "search again to continue them, then rebuild this report.")
    unit = " (%)" if r.percent else ""
    return {
        "title": r.name, "search": r.name, "source": source,
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "description": r.spec.description, "n_trials": n, "counts": counts,
        "sampler": SAMPLER_WORDS[r.sampler], "pruner": PRUNER_WORDS[r.pruner],
        "words": words.metric_words(r.monitor), "unit": unit,
        "direction": "higher is better" if r.direction == "maximize" else "lower is better",
        "seed": r.spec.seed_list[0], "answer": r.answer(), "top": top, "rows": rows,
        "pruned": pruned, "epochs_full": full, "epochs_trained": trained,
        "saved": f"{1 - trained / full:.0%}" if full else "0%",
        "build": settings.get("build"), "spec": _toml(spec),
        "environment": {k: words.short(v) for k, v in sorted(r.environment.items())},
        "incomplete": incomplete, "how_to_read": how_to_read(r),
    }


def how_to_read(r: SearchResults) -> list[str]:
    """How to read a search's report, in a few sentences."""
    return [
        f"Each trial is one configuration drawn by {SAMPLER_WORDS[r.sampler]}, trained on one "
        f"seed ({r.spec.seed_list[0]}) and scored by its final "
        f"{words.metric_words(r.monitor)} on the validation split. The best of many such draws "
        "is optimistic: part of its lead is that seed's luck. The confirmation re-runs the best "
        "configurations over fresh seeds and is what the answer rests on.",
        "Pruning (Hyperband, successive halving, the median rule) stops a trial after an epoch "
        "where its value trails the other trials' at the same epoch; a pruned trial's value is "
        "the one it was stopped with, after fewer epochs. Only complete trials are ranked and "
        "used for the importances.",
        "Importance (fANOVA) is the share of the variation between trials that a random forest "
        "fitted to them attributes to each parameter alone; with few trials it is rough, and "
        "it says nothing of whether a parameter's best value is at the edge of its range "
        "(look at the slices for that).",
        "Every trial lives in the store with its parameters, its value after each epoch and "
        "its state; `optimlab report STORE --study NAME` rebuilds this page, and running the "
        "search again continues it.",
    ]
