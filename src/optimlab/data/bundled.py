"""Small real datasets that ship inside scikit-learn (no network): digits, iris, wine,
breast_cancer (classification) and diabetes (regression)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimlab.data.dataset import Dataset

# name → (the scikit-learn loader's name in sklearn.datasets, task, description)
BUNDLED: dict[str, tuple[str, str, str]] = {
    "digits": ("load_digits", "multiclass",
               "8×8 handwritten digits 0–9, pixel intensities 0–16 (flattened to 64 features)"),
    "iris": ("load_iris", "multiclass", "Fisher's iris: 4 flower measurements, 3 species"),
    "wine": ("load_wine", "multiclass", "13 chemical measurements of wines from 3 cultivars"),
    "breast_cancer": ("load_breast_cancer", "binary",
                      "Wisconsin diagnostic: 30 cell-nucleus features, malignant(0)/benign(1)"),
    "diabetes": ("load_diabetes", "regression",
                 "10 baseline variables → disease progression after one year (regression)"),
}


def load_bundled(name: str) -> Dataset:
    """Load one of ``BUNDLED`` (features as given by scikit-learn, not standardized)."""
    if name not in BUNDLED:
        raise ValueError(f"{name!r} is not a bundled dataset; choose one of {sorted(BUNDLED)}")
    # here, not at the top: listing the datasets (the catalog reads BUNDLED) needs neither
    # scikit-learn nor torch
    from sklearn import datasets as skd

    from optimlab.data.dataset import Dataset

    loader, task, description = BUNDLED[name]
    bunch = getattr(skd, loader)()
    names = [str(f) for f in bunch.feature_names] if "feature_names" in bunch else None
    info: dict[str, Any] = {"description": description, "source": "scikit-learn"}
    n_classes = None
    if task != "regression":
        target_names = bunch.get("target_names")
        info["classes"] = [str(c) for c in target_names] if target_names is not None else None
        n_classes = len(target_names)
    return Dataset(bunch.data, bunch.target, task, n_classes, name, names, info)  # type: ignore[arg-type]
