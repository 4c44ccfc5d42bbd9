"""CSV and npz loaders, with files the tests write themselves."""

import numpy as np
import pytest
import torch

from optimlab import data


def write(path, text):
    path.write_text(text)
    return path


def test_csv_with_header_and_string_target_by_name(tmp_path):
    f = write(tmp_path / "pets.csv",
              "weight,species,height\n4.0,cat,25\n30.5,dog,60\n3.5,cat,23\n25,dog,55\n")
    ds = data.load_csv(f, target="species")
    assert ds.task == "binary" and ds.n_classes == 2
    assert ds.y.tolist() == [0, 1, 0, 1]
    assert ds.info["classes"] == ["cat", "dog"] and ds.info["label_map"]["dog"] == 1
    assert ds.feature_names == ["weight", "height"]
    assert torch.equal(ds.X[1], torch.tensor([30.5, 60.0]))
    assert ds.name == "pets"


def test_csv_target_by_index_without_header_and_task_inference(tmp_path):
    f = write(tmp_path / "t.csv", "1;2;0\n3;4;2\n5;6;1\n7;8;2\n9;1;0\n")
    ds = data.load_csv(f, target=-1, delimiter=";")
    assert ds.task == "multiclass" and ds.n_classes == 3 and ds.feature_names is None
    assert ds.X.shape == (5, 2)
    reg = data.load_csv(f, target=0, delimiter=";")  # 1,3,5,7,9: all distinct → regression
    assert reg.task == "regression" and reg.y.dtype == torch.float32
    forced = data.load_csv(f, target=-1, delimiter=";", task="regression")
    assert forced.task == "regression"


def test_csv_float_target_is_regression(tmp_path):
    f = write(tmp_path / "r.csv", "a,b,y\n1,2,0.5\n3,4,1.25\n5,6,2.0\n")
    ds = data.load_csv(f, target="y")
    assert ds.task == "regression" and ds.y.tolist() == [0.5, 1.25, 2.0]


def test_csv_non_numeric_feature_named(tmp_path):
    f = write(tmp_path / "bad.csv", "size,color,label\n1,red,0\n2,blue,1\n")
    with pytest.raises(ValueError, match=r"feature column 'color' \(index 1\).*'red' on line 2"):
        data.load_csv(f, target="label")


def test_csv_missing_value_reported_by_row_and_column(tmp_path):
    f = write(tmp_path / "nan.csv", "a,b,label\n1,2,0\n3,,1\n5,6,0\n")
    with pytest.raises(ValueError, match=r"column 'b' of .* is empty or marked missing on line 3 "
                                         r"\(1 row in all"):
        data.load_csv(f, target="label")


def test_csv_errors(tmp_path):
    f = write(tmp_path / "x.csv", "a,b\n1,0\n2,1\n")
    with pytest.raises(ValueError, match="is not a column"):
        data.load_csv(f, target="label")
    with pytest.raises(ValueError, match="out of range"):
        data.load_csv(f, target=5)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_csv(tmp_path / "nope.csv", target=0)
    with pytest.raises(ValueError, match="no header"):
        data.load_csv(write(tmp_path / "nh.csv", "1,0\n2,1\n"), target="a")


def test_load_by_name_reads_csv(tmp_path):
    f = write(tmp_path / "p.csv", "x,y\n1,a\n2,b\n3,a\n")
    assert data.load("csv", path=f, target="y").task == "binary"


def test_npz(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.repeat([3, 7], 10)
    np.savez(tmp_path / "d.npz", features=X, labels=y, feature_names=np.array(["a", "b", "c"]))
    ds = data.load_npz(tmp_path / "d.npz", x_key="features", y_key="labels")
    assert ds.task == "binary" and ds.info["classes"] == [3, 7]
    assert ds.feature_names == ["a", "b", "c"] and ds.X.dtype == torch.float32
    assert torch.allclose(ds.X, torch.tensor(X, dtype=torch.float32))
    with pytest.raises(ValueError, match=r"x_key='X' is not in .*'features'"):
        data.load_npz(tmp_path / "d.npz")
    np.savez(tmp_path / "r.npz", X=X, y=X[:, 0] * 2.5)
    assert data.load_npz(tmp_path / "r.npz").task == "regression"
