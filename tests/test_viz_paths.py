"""The notes' pictures, computed: optimizer paths on 2-D surfaces (optimlab.viz.paths), the
surfaces themselves (optimlab.viz.surfaces) and the ``optimlab paths`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from optimlab.cli import build_parser, main
from optimlab.commands.paths import parse_optimizer
from optimlab.viz import surfaces
from optimlab.viz.path_plots import animate_paths, plot_paths
from optimlab.viz.paths import format_table, run_paths

# -- the surfaces ----------------------------------------------------------------------------------

#: closed-form minima and their values
KNOWN_MINIMA = {
    "bowl": ([(0.0, 0.0)], 0.0),
    "ravine": ([(0.0, 0.0)], 0.0),
    "rosenbrock": ([(1.0, 1.0)], 0.0),
    "beale": ([(3.0, 0.5)], 0.0),
    "himmelblau": ([(3.0, 2.0), (-2.805118, 3.131313), (-3.779310, -3.283186),
                    (3.584428, -1.848127)], 0.0),
    # r = 1 at θ = 180°, 60°, 300°: r³cos 3θ + ½r⁶ = −1 + ½
    "plateau_saddle": ([(-1.0, 0.0), (0.5, math.sqrt(3) / 2), (0.5, -math.sqrt(3) / 2)], -0.5),
}


def _hessian(surf: surfaces.Surface, point: tuple[float, float]) -> np.ndarray:
    p = torch.tensor(point, dtype=torch.float64)
    return torch.autograd.functional.hessian(surf.f, p).numpy()


@pytest.mark.parametrize("name", sorted(KNOWN_MINIMA))
def test_minima_are_the_known_points_with_zero_gradient(name: str) -> None:
    surf = surfaces.get_surface(name)
    want, value = KNOWN_MINIMA[name]
    assert len(surf.minima) == len(want)
    for got, ref in zip(surf.minima, want, strict=True):
        assert got == pytest.approx(ref, abs=1e-6)
        p = torch.tensor(got, dtype=torch.float64)
        assert float(surf.f(p)) == pytest.approx(value, abs=1e-12)
        assert float(surf.grad(p).norm()) < 1e-10
        assert np.linalg.eigvalsh(_hessian(surf, got)).min() > 0  # a minimum, not a saddle
    assert surf.minimum_value == value


def test_saddles_have_zero_gradient_and_no_minimum_there() -> None:
    plain = surfaces.saddle()
    assert plain.minima == [] and plain.minimum_value is None
    assert float(plain.grad(torch.zeros(2, dtype=torch.float64)).norm()) == 0
    assert sorted(np.linalg.eigvalsh(_hessian(plain, (0.0, 0.0)))) == pytest.approx([-2, 2])
    flat = surfaces.plateau_saddle()
    # the monkey saddle is flat to second order: zero gradient and zero Hessian at (0, 0) ...
    assert float(flat.grad(torch.zeros(2, dtype=torch.float64)).norm()) == 0
    assert np.abs(_hessian(flat, (0.0, 0.0))).max() == 0
    # ... and around it a plateau: the gradient at the start is about 1e-3
    g = float(flat.grad(torch.tensor(flat.start, dtype=torch.float64)).norm())
    assert 5e-4 < g < 2e-3


@pytest.mark.parametrize("name", surfaces.available())
def test_surfaces_evaluate_batched_grids(name: str) -> None:
    surf = surfaces.get_surface(name)
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 5, dtype=torch.float64),
                                      torch.linspace(-2, 2, 4, dtype=torch.float64),
                                      indexing="xy"), dim=-1)  # (4, 5, 2)
    values = surf.f(grid)
    assert values.shape == (4, 5)
    assert values[2, 3] == surf.f(grid[2, 3])
    assert surf.formula in getattr(surfaces, name).__doc__  # the formula is documented


def test_ravine_condition_number_is_the_hessian_ratio() -> None:
    for kappa in (10.0, 50.0, 200.0):
        for angle in (0.0, 30.0):
            eig = np.linalg.eigvalsh(_hessian(surfaces.ravine(kappa, angle), (0.3, -0.2)))
            assert eig.max() / eig.min() == pytest.approx(kappa)


def test_get_surface_rejects_unknown_names_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"unknown surface 'bowel'.*ravine.*plateau_saddle"):
        surfaces.get_surface("bowel")
    with pytest.raises(ValueError, match="condition"):
        surfaces.get_surface("bowl", condition=3)
    with pytest.raises(ValueError, match=r"condition=0\.5"):
        surfaces.ravine(0.5)


# -- the notes' claims -----------------------------------------------------------------------------


def _zigzags(path: np.ndarray, steps: int = 20) -> int:
    """Sign changes of y (across the ravine) over the first steps."""
    return int(np.sum(np.diff(np.sign(path[:steps + 1, 1])) != 0))


def test_momentum_reaches_the_ravine_minimum_in_fewer_steps_than_gd() -> None:
    """004 "The Ravine Problem": at the same α, GD zig-zags across, momentum rolls along."""
    surf = surfaces.ravine(condition=50)  # lr = 1.9/κ = 0.038, just inside GD's limit 2/κ
    result = run_paths(surf, ["gd", "momentum"], steps=400)
    gd, mom = result["gd"], result["momentum"]
    assert gd.reached_step is not None and mom.reached_step is not None
    assert mom.reached_step < 0.8 * gd.reached_step  # measured: 156 vs 232
    assert _zigzags(gd.path) == 20  # GD crosses the floor at every step
    assert _zigzags(mom.path) <= 4  # momentum's cross-ravine swings are slow


def test_heavy_ball_momentum_is_faster_still_at_a_small_learning_rate() -> None:
    """The notes' worked example (v = βv + g) at α = 0.01: the velocity grows to g/(1 − β)."""
    result = run_paths("ravine", {"gd": ("sgd", {}),
                                  "heavy ball": ("momentum", {"form": "heavy_ball"})},
                       steps=1000, lr=0.01)
    gd, hb = result["gd"].reached_step, result["heavy ball"].reached_step
    assert gd is not None and hb is not None and hb < gd / 4  # measured: 130 vs 895


def test_momentum_and_adam_escape_the_plateau_saddle_before_gd() -> None:
    """000 "Visualizing the Plateau Escape": built-up velocity rolls through the plateau."""
    result = run_paths("plateau_saddle",
                       {"gd": ("sgd", {}), "momentum": ("momentum", {"form": "heavy_ball"}),
                        "adam": ("adam", {})}, steps=300, lr=0.05)
    gd, mom, adam = result["gd"], result["momentum"], result["adam"]
    assert result.saddle == (0.0, 0.0) and result.escape_radius == 0.5
    assert not gd.escaped and gd.escape_step is None  # GD creeps towards the saddle (900 steps)
    assert mom.escaped and adam.escaped  # measured: 144 and 13
    assert adam.escape_step < mom.escape_step < 300
    assert mom.reached_step is not None and adam.reached_step is not None
    assert float(np.linalg.norm(gd.path[-1])) < float(np.linalg.norm(gd.path[0]))  # inwards


def test_ewa_momentum_at_the_same_lr_does_not_escape_sooner() -> None:
    """The course's EWA form v = βv + (1−β)g averages the gradients: on a plateau its step is
    α times a (lagging) gradient, no larger than GD's, so it escapes no sooner (measured at
    α = 0.1: GD at step 438, EWA momentum at 512). The escape needs heavy ball or α/(1−β)."""
    result = run_paths("plateau_saddle", ["gd", "momentum"], steps=600, lr=0.1)
    gd, ewa = result["gd"], result["momentum"]
    assert gd.escaped and ewa.escaped
    assert ewa.escape_step >= gd.escape_step


def test_too_large_a_learning_rate_diverges_and_the_summary_says_so() -> None:
    """Past α = 2/κ GD's step across the ravine grows by |1 − ακ| > 1; EWA momentum is stable
    to α < 2(1 + β)/((1 − β)κ), so at α = 0.05 only GD diverges."""
    result = run_paths(surfaces.ravine(50), ["gd", "momentum"], steps=200, lr=0.05)
    gd, mom = result["gd"], result["momentum"]
    assert gd.diverged and isinstance(gd.diverged_step, int) and 0 < gd.diverged_step < 200
    assert gd.steps_run == gd.diverged_step - 1 or gd.steps_run == gd.diverged_step
    assert gd.reached_step is None and gd.final_loss > 1e6 and gd.final_distance > 1e3
    assert not mom.diverged and mom.diverged_step is None and mom.reached_step is not None
    row = result.summary()["runs"][0]
    assert row["diverged"] is True and row["diverged_step"] == gd.diverged_step
    json.dumps(result.summary(), allow_nan=False)


def test_nan_is_caught_as_divergence() -> None:
    result = run_paths("rosenbrock", ["gd"], steps=100, lr=1.0, diverge_radius=math.inf)
    run = result["gd"]
    assert run.diverged and run.diverged_step is not None
    assert np.isfinite(run.path).all()  # the path keeps its last finite point
    assert run.summary()["final_loss"] is None or math.isfinite(run.summary()["final_loss"])


def test_summary_reports_steps_to_the_nearest_minimum() -> None:
    result = run_paths("bowl", ["gd"], steps=200, tol=1e-3)  # lr 0.1: distance × 0.9 per step
    run = result["gd"]
    want = math.ceil(math.log(1e-3 / 5.0) / math.log(0.9))  # start (−4, 3) is 5 away
    assert run.reached_step == want
    assert run.nearest_minimum == (0.0, 0.0)
    assert run.final_distance == pytest.approx(5.0 * 0.9 ** 200)
    assert len(run.path) == 201 and len(run.losses) == 201


def test_himmelblau_paths_part_towards_different_minima() -> None:
    """003 "Random Restart and Local Minima": which minimum depends on the path taken."""
    result = run_paths("himmelblau", ["gd", "adam"], steps=500)
    assert result["gd"].nearest_minimum != result["adam"].nearest_minimum
    assert result["gd"].reached_step is not None and result["adam"].reached_step is not None


def test_run_paths_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*sgd.*gd"):
        run_paths("bowl", ["adamm"])
    with pytest.raises(ValueError, match="steps=0"):
        run_paths("bowl", ["gd"], steps=0)
    with pytest.raises(ValueError, match="start"):
        run_paths("bowl", ["gd"], start=(1.0,))
    with pytest.raises(ValueError, match="no hyperparameter 'betas'"):
        run_paths("bowl", {"gd": ("sgd", {"betas": (0.9, 0.9)})}, steps=2)
    # a start outside the escape radius tracks no escape
    far = run_paths("saddle", ["gd"], start=(3.0, 0.1), steps=5)
    assert far.saddle is None and far["gd"].escaped is None


# -- pictures and the command ----------------------------------------------------------------------


def test_plot_and_gif_are_written(tmp_path) -> None:
    result = run_paths("plateau_saddle", {"gd": ("sgd", {}),
                                          "momentum": ("momentum", {"form": "heavy_ball"}),
                                          "adam": ("adam", {})}, steps=150, lr=0.05)
    png = plot_paths(result, tmp_path / "p.png", grid=60)
    gif = animate_paths(result, tmp_path / "sub" / "p.gif", frames=5, grid=40)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames >= 5
    table = format_table(result)
    assert table.columns[0].header == "optimizer" and table.row_count == 3


def test_cli_writes_the_table_plot_and_gif(tmp_path, capsys) -> None:
    assert "paths" in build_parser().format_help()
    code = main(["paths", "--surface", "ravine", "--optimizers", "gd", "momentum:lr=0.02",
                 "--steps", "8", "--condition", "20", "--out", str(tmp_path), "--gif"])
    assert code == 0
    assert (tmp_path / "paths.png").stat().st_size > 0
    assert (tmp_path / "paths.gif").stat().st_size > 0
    out = capsys.readouterr().out
    assert "ravine (condition=20)" in out and "wrote" in out


def test_cli_json(tmp_path, capsys) -> None:
    code = main(["paths", "--surface", "saddle", "--steps", "30", "--lr", "0.2", "--start",
                 "1", "0.01", "--out", str(tmp_path), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["surface"] == "saddle" and data["start"] == [1.0, 0.01]
    assert [r["label"] for r in data["runs"]] == ["sgd", "momentum", "adam"]
    assert all(r["hparams"]["lr"] == 0.2 for r in data["runs"])
    assert data["files"] == [str(tmp_path / "paths.png")]


@pytest.mark.parametrize(("argv", "words"), [
    (["--surface", "volcano"], ["unknown surface 'volcano'", "ravine", "himmelblau"]),
    (["--optimizers", "sgdd"], ["unknown optimizer 'sgdd'", "adam"]),
    (["--surface", "bowl", "--condition", "10"], ["--condition", "ravine"]),
    (["--optimizers", "adam:lr"], ["'lr' is not key=value"]),
])
def test_cli_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, argv, words) -> None:
    assert main(["paths", *argv, "--steps", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not (tmp_path / "paths.png").exists()


def test_parse_optimizer() -> None:
    assert parse_optimizer("adam") == ("adam", {})
    assert parse_optimizer("momentum:lr=0.1,momentum=0.9,form=heavy_ball") == (
        "momentum", {"lr": 0.1, "momentum": 0.9, "form": "heavy_ball"})
    assert parse_optimizer("adam:betas=(0.9,0.99),lr=1e-2") == (
        "adam", {"betas": (0.9, 0.99), "lr": 0.01})
