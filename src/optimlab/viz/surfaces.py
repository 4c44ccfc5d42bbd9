"""Two-dimensional test surfaces with known minima: the notes' pictures, as functions.

Each surface is a :class:`Surface`: ``f(xy)`` takes a tensor whose last dimension holds
``(x, y)`` (one point of shape ``(2,)``, a batch ``(N, 2)`` or a contour grid ``(H, W, 2)``) and
returns the value per point; it is built from torch operations, so autograd gives its gradient.
``minima`` lists every minimum (with ``minimum_value`` its value), ``saddles`` the saddle points
whose escape is worth tracking, ``start`` a start that shows the surface's difficulty, ``bounds``
the plotting window and ``lr`` a learning rate at which plain gradient descent shows it.

>>> s = get_surface("ravine", condition=100)
>>> s.f(torch.tensor([1.0, 0.0]))
tensor(0.5000)

=====================  =========================================================  ==============
name                   f(x, y)                                                    minima (value)
=====================  =========================================================  ==============
``bowl``               ½(x² + y²)                                                 (0, 0) (0)
``ravine(condition)``  ½(u² + κ·v²), (u, v) = (x, y) turned by ``angle``          (0, 0) (0)
``rosenbrock``         (1 − x)² + 100(y − x²)²                                    (1, 1) (0)
``beale``              (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²   (3, ½) (0)
``himmelblau``         (x² + y − 11)² + (x + y² − 7)²                             four (0)
``saddle``             x² − y²                                                    none
``plateau_saddle``     x³ − 3xy² + ½(x² + y²)³                                    three (−½)
=====================  =========================================================  ==============
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

Point = tuple[float, float]


@dataclass(frozen=True)
class Surface:
    """A 2-D objective ``f(x, y)`` with its minima, a start and a plotting window.

    ``f`` maps ``(..., 2)`` to ``(...)``. ``minimum_value`` is ``f`` at every minimum (``None``
    where there is none); ``saddles`` are the saddle points to track escape from, and
    ``escape_radius`` the distance from one that counts as having escaped. ``log_levels`` asks
    contour plots for log-spaced levels (for surfaces whose values span decades). ``lr`` is a
    learning rate at which plain gradient descent shows the surface's difficulty; ``params``
    records the arguments the surface was built with.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    formula: str
    minima: list[Point]
    minimum_value: float | None
    start: Point
    bounds: tuple[Point, Point]
    lr: float
    saddles: list[Point] = field(default_factory=list)
    escape_radius: float | None = None
    log_levels: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def f(self, xy: Tensor) -> Tensor:
        """``f`` at each point of ``xy`` (shape ``(..., 2)``); differentiable."""
        if xy.shape[-1] != 2:
            raise ValueError(f"{self.name}: points must have shape (..., 2); got "
                             f"{tuple(xy.shape)}")
        return self.fn(xy)

    def grad(self, xy: Tensor) -> Tensor:
        """∇f at each point of ``xy`` (by autograd), shape ``(..., 2)``."""
        import torch  # lazy: surfaces are tensor arithmetic; `optimlab --help` lists them

        point = xy.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(self.f(point).sum(), point)
        return g

    @property
    def title(self) -> str:
        """The name with its arguments, e.g. ``ravine (condition=50)``."""
        if not self.params:
            return self.name
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.params.items())
        return f"{self.name} ({args})"

    def __call__(self, xy: Tensor) -> Tensor:
        return self.f(xy)


def _xy(xy: Tensor) -> tuple[Tensor, Tensor]:
    return xy[..., 0], xy[..., 1]


def bowl() -> Surface:
    """The ball in a bowl: f(x, y) = ½(x² + y²); the minimum (0, 0) with f = 0.

    Round level sets: the gradient points straight at the minimum, and gradient descent with
    learning rate α shrinks the distance by (1 − α) per step.
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        return 0.5 * (x * x + y * y)

    return Surface("bowl", fn, "½(x² + y²)", [(0.0, 0.0)], 0.0, start=(-4.0, 3.0),
                   bounds=((-5.0, 5.0), (-4.0, 4.0)), lr=0.1)


def ravine(condition: float = 50.0, angle: float = 0.0) -> Surface:
    """An elongated quadratic bowl: f = ½(u² + κ·v²), κ = ``condition``; minimum (0, 0), f = 0.

    (u, v) are (x, y) turned by ``angle`` degrees: u = x·cos θ + y·sin θ, v = −x·sin θ + y·cos θ;
    at ``angle=0`` the ravine runs along x. The Hessian's eigenvalues are 1 and κ, so gradient
    descent is stable only for α < 2/κ and then crawls along the floor at a rate 1 − α per step,
    while the steep walls make it zig-zag. The default ``lr`` is 1.9/κ: stable, zig-zagging.
    """
    if not (isinstance(condition, int | float) and math.isfinite(condition) and condition >= 1):
        raise ValueError(f"condition={condition!r} must be a number >= 1 (the ratio of the "
                         f"largest to the smallest curvature)")
    kappa = float(condition)
    theta = math.radians(float(angle))
    c, s = math.cos(theta), math.sin(theta)

    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        u = c * x + s * y
        v = -s * x + c * y
        return 0.5 * (u * u + kappa * v * v)

    # the start lies on the ravine's axis far out, lifted up one wall
    u0, v0 = -8.0, 8.0 / math.sqrt(kappa)
    start = (c * u0 - s * v0, s * u0 + c * v0)
    half = 9.0
    wall = max(1.5 * abs(v0), 0.5) if angle == 0 else half
    bounds = ((-half, half), (-wall, wall)) if angle == 0 else ((-half, half), (-half, half))
    params: dict[str, Any] = {"condition": kappa}
    if angle:
        params["angle"] = float(angle)
    return Surface("ravine", fn, "½(u² + κ·v²)", [(0.0, 0.0)], 0.0, start=start, bounds=bounds,
                   lr=1.9 / kappa, params=params)


def rosenbrock() -> Surface:
    """Rosenbrock's banana: f = (1 − x)² + 100(y − x²)²; the minimum (1, 1) with f = 0.

    A curved, flat-bottomed valley along y = x²: finding the valley is easy, following it is
    slow. The Hessian at the minimum has eigenvalues ≈ 1002 and 0.4 (condition ≈ 2500).
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2

    return Surface("rosenbrock", fn, "(1 − x)² + 100(y − x²)²", [(1.0, 1.0)], 0.0,
                   start=(-1.2, 1.0), bounds=((-2.0, 2.0), (-1.0, 3.0)), lr=1e-3,
                   log_levels=True)


def beale() -> Surface:
    """Beale's function: f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²;
    the minimum (3, ½) with f = 0.

    Flat near y = 0 and x = 0, and steep (values to ~10⁵) in the corners of [−4.5, 4.5]².
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2
                + (2.625 - x + x * y ** 3) ** 2)

    return Surface("beale", fn, "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
                   [(3.0, 0.5)], 0.0, start=(1.0, 1.4), bounds=((-1.0, 4.5), (-1.5, 2.0)),
                   lr=1e-3, log_levels=True)


#: Himmelblau's minima: (3, 2) exactly, the others the roots of ∇f = 0 to 15 digits
HIMMELBLAU_MINIMA: list[Point] = [
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
]


def himmelblau() -> Surface:
    """Himmelblau's function: f = (x² + y − 11)² + (x + y² − 7)²; four minima, each with f = 0.

    (3, 2), (−2.805118, 3.131313), (−3.779310, −3.283186), (3.584428, −1.848127): which one
    an optimizer reaches depends on the start and on its path, as in the notes' random restarts.
    A local maximum at (−0.270845, −0.923039) and four saddles separate the basins; the default
    start (−0.3, −0.9) sits just beside that maximum, where the paths of plain gradient descent
    and of Adam part towards different minima.
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2

    return Surface("himmelblau", fn, "(x² + y − 11)² + (x + y² − 7)²", list(HIMMELBLAU_MINIMA),
                   0.0, start=(-0.3, -0.9), bounds=((-5.0, 5.0), (-5.0, 5.0)), lr=0.01,
                   log_levels=True)


def saddle() -> Surface:
    """The plain saddle f = x² − y²: ∇f = 0 at (0, 0), up along x, down along y; no minimum.

    From a start near the x-axis gradient descent first slides in towards the saddle, then
    leaves it along y, the distance growing by (1 + 2α) per step. f is unbounded below, so
    every path that escapes eventually leaves any window: track the escape, not the minimum.
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        return x * x - y * y

    return Surface("saddle", fn, "x² − y²", [], None, start=(1.5, 1e-3),
                   bounds=((-2.0, 2.0), (-2.0, 2.0)), lr=0.01, saddles=[(0.0, 0.0)],
                   escape_radius=1.6)


_SQRT3_2 = math.sqrt(3.0) / 2.0


def plateau_saddle() -> Surface:
    """A saddle inside a plateau: f = x³ − 3xy² + ½(x² + y²)³ (in polar form r³cos 3θ + ½r⁶).

    The "monkey saddle" x³ − 3xy² is flat to second order at (0, 0): its gradient
    (3x² − 3y², −6xy) has size 3r², about 1e-3 at r = 0.02, so every direction around the saddle
    is a plateau. The sextic term closes the surface into three valleys whose minima sit at
    r = 1 and θ = 60°, 180°, 300°: (−1, 0) and (½, ±√3/2), each with f = −½.

    The default start (0.02, 0.002) lies just off the ridge θ = 0, where the descent direction
    points *into* the saddle: ‖∇f‖ ≈ 1.2e-3 there. Plain gradient descent creeps towards the
    saddle and stalls; an optimizer with velocity can roll across it (see the notes' "Visualizing
    the Plateau Escape"). Escape is leaving the disc of radius 0.5 around (0, 0).
    """
    def fn(xy: Tensor) -> Tensor:
        x, y = _xy(xy)
        r2 = x * x + y * y
        return x ** 3 - 3.0 * x * y * y + 0.5 * r2 ** 3

    minima = [(-1.0, 0.0), (0.5, _SQRT3_2), (0.5, -_SQRT3_2)]
    return Surface("plateau_saddle", fn, "x³ − 3xy² + ½(x² + y²)³", minima, -0.5,
                   start=(0.02, 0.002), bounds=((-1.5, 1.5), (-1.5, 1.5)), lr=0.1,
                   saddles=[(0.0, 0.0)], escape_radius=0.5)


_FACTORIES: dict[str, Callable[..., Surface]] = {
    "bowl": bowl, "ravine": ravine, "rosenbrock": rosenbrock, "beale": beale,
    "himmelblau": himmelblau, "saddle": saddle, "plateau_saddle": plateau_saddle,
}


def available() -> list[str]:
    """The names :func:`get_surface` knows."""
    return list(_FACTORIES)


def get_surface(name: str, **kwargs: Any) -> Surface:
    """The surface called ``name`` (see :func:`available`), built with ``kwargs``
    (``get_surface("ravine", condition=100)``)."""
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    if key not in _FACTORIES:
        raise ValueError(f"unknown surface {name!r}; choose one of {', '.join(_FACTORIES)}")
    try:
        return _FACTORIES[key](**kwargs)
    except TypeError as err:
        raise ValueError(f"surface {key!r} does not take {', '.join(map(repr, kwargs))} "
                         f"({err})") from None
