"""Dataset validation: every bad input is refused with a message naming the row/column."""

import numpy as np
import pytest
import torch

from optimlab.data import Dataset, infer_task


def test_basic_properties_and_conversion():
    ds = Dataset(np.arange(12, dtype=np.float64).reshape(4, 3), np.array([0, 1, 2, 1]),
                 "multiclass", name="toy", feature_names=["a", "b", "c"])
    assert ds.X.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert len(ds) == 4 and ds.n_features == 3 and ds.n_classes == 3
    assert ds.feature_shape == (3,)


def test_image_features_are_the_flat_size():
    ds = Dataset(torch.zeros(5, 3, 4, 4), torch.zeros(5, dtype=torch.int64), "multiclass", 10)
    assert ds.n_features == 48 and ds.feature_shape == (3, 4, 4)


def test_subset_and_to_keep_metadata():
    ds = Dataset(torch.randn(10, 2), torch.arange(10) % 2, "binary", info={"k": 1})
    sub = ds.subset([3, 1, 7])
    assert torch.equal(sub.X, ds.X[[3, 1, 7]]) and sub.task == "binary" and sub.info["k"] == 1
    mask = torch.zeros(10, dtype=torch.bool)
    mask[:4] = True
    assert len(ds.subset(mask)) == 4 and len(ds.subset(slice(2, 5))) == 3
    assert ds.to("cpu").X.device.type == "cpu"
    with pytest.raises(ValueError, match="indices"):
        ds.subset([10])


def test_nan_in_X_names_rows_and_column():
    X = torch.randn(30, 3)
    X[17, 2] = float("nan")
    X[20, 0] = float("nan")
    X[25, 1] = float("nan")
    with pytest.raises(ValueError, match=r"X has 3 rows with NaN \(first at row 17, column 2 'c'\)"
                                         r"; drop or impute them"):
        Dataset(X, torch.zeros(30), "regression", feature_names=["a", "b", "c"])


def test_inf_in_y_named():
    y = torch.zeros(5)
    y[3] = float("inf")
    with pytest.raises(ValueError, match=r"y has 1 rows with Inf \(first at row 3\)"):
        Dataset(torch.zeros(5, 2), y, "regression")


def test_label_out_of_range():
    with pytest.raises(ValueError, match=r"outside 0\.\.2 \(first: 5 at row 2\)"):
        Dataset(torch.zeros(4, 2), torch.tensor([0, 1, 5, 2]), "multiclass", n_classes=3)
    with pytest.raises(ValueError, match=r"outside 0\.\.1 \(first: -1 at row 0\)"):
        Dataset(torch.zeros(2, 2), torch.tensor([-1, 1]), "binary")


def test_length_mismatch():
    with pytest.raises(ValueError, match="X has 5 rows but y has 4 labels"):
        Dataset(torch.zeros(5, 2), torch.zeros(4), "regression")


def test_other_refusals():
    with pytest.raises(ValueError, match="reshape"):
        Dataset(torch.zeros(5), torch.zeros(5), "regression")
    with pytest.raises(ValueError, match=r"non-integer class label 0\.5 at row 1"):
        Dataset(torch.zeros(3, 1), torch.tensor([0.0, 0.5, 1.0]), "binary")
    with pytest.raises(ValueError, match="task"):
        Dataset(torch.zeros(3, 1), torch.zeros(3), "ranking")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_classes=2"):
        Dataset(torch.zeros(3, 1), torch.tensor([0, 1, 2]), "binary", n_classes=3)
    with pytest.raises(ValueError, match="feature_names"):
        Dataset(torch.zeros(3, 2), torch.zeros(3), "regression", feature_names=["a"])


def test_from_arrays_encodes_labels():
    ds = Dataset.from_arrays(np.zeros((4, 1)), np.array(["dog", "cat", "dog", "cat"]))
    assert ds.task == "binary" and ds.y.tolist() == [1, 0, 1, 0]
    assert ds.info["classes"] == ["cat", "dog"] and ds.info["label_map"] == {"cat": 0, "dog": 1}
    ds = Dataset.from_arrays(np.zeros((4, 1)), np.array([-1, 1, 1, -1]))
    assert ds.y.tolist() == [0, 1, 1, 0] and ds.info["classes"] == [-1, 1]


def test_infer_task():
    assert infer_task([0, 1, 1, 0]) == "binary"
    assert infer_task([0.0, 1.0, 2.0, 2.0]) == "multiclass"
    assert infer_task([0.5, 1.5, 2.0]) == "regression"
    assert infer_task(np.arange(100)) == "regression"  # too many distinct values
    assert infer_task(["a", "b", "c"]) == "multiclass"


def test_the_catalog_lists_each_loaders_real_parameters() -> None:
    """available() reads parameters from the source (no import): they equal the signatures."""
    import inspect

    from optimlab.data import catalog

    for name, entry in catalog._CATALOG.items():
        listed = catalog.available()[name]["parameters"]
        if not entry.loader:
            assert listed == {}
            continue
        real = inspect.signature(catalog._function(entry.loader)).parameters
        assert list(listed) == list(real), name
        for key, p in real.items():
            default = None if p.default is inspect.Parameter.empty else p.default
            assert listed[key] == default, (name, key)
