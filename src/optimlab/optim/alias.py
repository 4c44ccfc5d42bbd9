"""The named optimizers of the course, each a short chain of transforms.

Every function here takes ``params`` (an iterable of tensors or of parameter-group dicts, as
torch.optim does) and hyperparameters, and returns a :class:`ChainOptimizer`. Hyperparameters
live in ``param_groups``, so each group may override them and torch schedulers may drive ``lr``.

Names follow torch.optim where torch has the algorithm (``betas``, ``alpha``, ``momentum``), so
these are drop-in replacements, and tests check them against torch to 1e-10. The notes' symbols:
α is ``lr``; the momentum β is ``momentum``; RMSprop's β is ``alpha``; Adam's β₁, β₂ are
``betas``; ε is ``eps``.

Two defaults differ from torch on purpose: weight decay skips biases and normalization weights
(``decay_mask="auto"``; pass ``"all"`` for torch's behaviour), and ``momentum``/``nesterov`` use
the course's EWA form (``form="heavy_ball"`` gives torch's).

Each public function's signature is the one home of its defaults: :func:`_recipe` reads them
from it into the registry that :func:`available` and :func:`create` use. ``fused`` is not a
hyperparameter but a choice of execution (see :mod:`optimlab.optim.fused`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from optimlab._checks import check_choice, check_number
from optimlab.optim import moments, regularize, scaling
from optimlab.optim.base import Chain, Transform, chain
from optimlab.optim.optimizer import ChainOptimizer

Group = Mapping[str, Any]
Fused = bool | None


def _check_betas(betas: Any) -> None:
    if not (isinstance(betas, tuple | list) and len(betas) == 2):
        raise ValueError(f"betas={betas!r} must be a pair (β₁, β₂), each in [0, 1)")
    moments.check_beta("betas[0]", betas[0])
    moments.check_beta("betas[1]", betas[1])


def _check_decay(g: Group) -> None:
    check_number("weight_decay", g["weight_decay"], low=0.0)
    regularize.check_mask(g["decay_mask"])


def _decay(g: Group, **kwargs: Any) -> list[Transform]:
    """Weight decay λ·w as a piece to splice into a chain (nothing when λ = 0)."""
    if not g["weight_decay"]:
        return []
    return [regularize.decay_weights(g["weight_decay"], g["decay_mask"], **kwargs)]


def _with_decay(g: Group, core: list[Transform], *tail: Transform) -> Chain:
    """``core`` with weight decay before it (coupled L2, the gradient of λ/2·‖w‖²) or after it
    (decoupled, w ← w − α·λ·w, when the group says ``decoupled_weight_decay``), then ``tail``
    and the step −α."""
    if g.get("decoupled_weight_decay", False):
        return chain(*core, *_decay(g), *tail, scaling.scale_by_lr())
    return chain(*_decay(g), *core, *tail, scaling.scale_by_lr())


# -- chains (one per algorithm; each reads a group's hyperparameters) -----------------------------
def _trace_pieces(g: Group) -> list[Transform]:
    if not g["momentum"]:
        return []
    pieces: list[Transform] = [moments.trace(g["momentum"], g["dampening"])]
    if g["nesterov"]:
        pieces.append(moments.nesterov(g["momentum"], "heavy_ball"))
    return pieces


def _same_as_torch(c: Chain, kernel: str | None, g: Group, *names: str) -> Chain:
    """Mark ``c`` as computing exactly torch's fused ``kernel`` with the group's ``names``
    (see Chain.torch_equivalent)."""
    if kernel is not None:
        c.torch_equivalent = (kernel, {n: g[n] for n in ("weight_decay", "decay_mask", *names)})
    return c


def _coupled(g: Group) -> bool:
    return not (g.get("decoupled_weight_decay", False) and g["weight_decay"])


def _sgd_chain(g: Group) -> Chain:
    return _same_as_torch(_with_decay(g, _trace_pieces(g)), "sgd" if _coupled(g) else None, g,
                          "momentum", "dampening", "nesterov")


def _momentum_chain(g: Group) -> Chain:
    if g["form"] == "heavy_ball":
        return _sgd_chain(g)
    if g["form"] == "lr_inside":
        # the velocity sums steps, v ← βv − α·g: a heavy-ball trace of the update already
        # scaled by −α; decoupled decay then adds −α·λ·w beside it
        pieces: list[Transform] = [scaling.scale_by_lr(), *_trace_pieces(g)]
        if g["decoupled_weight_decay"]:
            return chain(*pieces, *_decay(g, scale_by_lr=True))
        return chain(*_decay(g), *pieces)
    pieces = [moments.ewa(g["momentum"])]
    if g["bias_correction"]:
        pieces.append(moments.bias_correction(g["momentum"]))
    if g["nesterov"]:
        pieces.append(moments.nesterov(g["momentum"], "ewa"))
    return _with_decay(g, pieces)


def _nesterov_group(g: Group) -> Group:
    return {**g, "nesterov": True, "dampening": 0.0, "bias_correction": False}


def _nesterov_chain(g: Group) -> Chain:
    return _momentum_chain(_nesterov_group(g))


def _adagrad_chain(g: Group) -> Chain:
    core: list[Transform] = [scaling.scale_by_adagrad(
        g["eps"], g["initial_accumulator_value"], eps_inside=g["eps_inside"])]
    return _same_as_torch(_with_decay(g, core, scaling.lr_decay(g["lr_decay"])),
                          "adagrad" if _coupled(g) and not g["eps_inside"] else None, g,
                          "lr_decay", "eps")


def _rmsprop_chain(g: Group) -> Chain:
    core: list[Transform] = [scaling.scale_by_rms(
        g["alpha"], g["eps"], eps_inside=g["eps_inside"], centered=g["centered"],
        bias_correction=g["bias_correction"])]
    if g["momentum"]:
        core.append(moments.trace(g["momentum"]))
    return _with_decay(g, core)


def _adam_pieces(g: Group) -> list[Transform]:
    b1, b2 = g["betas"]
    pieces: list[Transform] = [moments.ewa(b1)]
    if g["bias_correction"]:
        pieces.append(moments.bias_correction(b1))
    pieces.append(scaling.scale_by_rms(
        b2, g["eps"], eps_inside=g["eps_inside"], eps_form=g["eps_form"],
        bias_correction=g["bias_correction"], amsgrad=g["amsgrad"],
        amsgrad_max=g["amsgrad_max"]))
    return pieces


def _adam_chain(g: Group) -> Chain:
    torch_form = (g["bias_correction"] and not g["eps_inside"] and g["eps_form"] == "corrected"
                  and (not g["amsgrad"] or g["amsgrad_max"] == "raw"))
    kernel = ("adam" if _coupled(g) else "adamw") if torch_form else None
    return _same_as_torch(_with_decay(g, _adam_pieces(g)), kernel, g, "betas", "eps", "amsgrad")


def _amsgrad_chain(g: Group) -> Chain:
    return _adam_chain({**g, "amsgrad": True, "bias_correction": True})


def _adamw_chain(g: Group) -> Chain:
    return _adam_chain({**g, "decoupled_weight_decay": True})


def _nadam_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    return _with_decay(g, [
        moments.nadam_momentum(b1, g["momentum_decay"], g["momentum_schedule"]),
        scaling.scale_by_rms(b2, g["eps"], eps_inside=g["eps_inside"], bias_correction=True)])


def _adamax_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    return _with_decay(g, [moments.ewa(b1), moments.bias_correction(b1),
                           scaling.scale_by_inf_norm(b2, g["eps"], eps_form=g["eps_form"])])


def _lion_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    return chain(moments.lion_momentum(b1, b2), scaling.sign(), *_decay(g),
                 scaling.scale_by_lr())


# -- checks -------------------------------------------------------------------------------------
def _check_sgd(g: Group) -> None:
    _check_decay(g)
    moments.check_beta("momentum", g["momentum"])
    check_number("dampening", g["dampening"], low=0.0, high=1.0)
    if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening=0")


def _check_momentum(g: Group) -> None:
    check_choice("form", g["form"], ("ewa", "heavy_ball", "lr_inside"))
    if g["form"] != "ewa" and g["bias_correction"]:
        raise ValueError(f"bias_correction=True applies to form='ewa' only: the {g['form']} "
                         f"velocity is not an average, so there is no bias to correct")
    if g["form"] == "lr_inside" and g["dampening"]:
        raise ValueError("dampening applies to form='heavy_ball' only; form='lr_inside' "
                         "(Keras's SGD) has none")
    _check_sgd(g)


def _check_nesterov(g: Group) -> None:
    _check_momentum(_nesterov_group(g))


def _check_adagrad(g: Group) -> None:
    _check_decay(g)
    check_number("lr_decay", g["lr_decay"], low=0.0)


def _check_rmsprop(g: Group) -> None:
    _check_decay(g)
    moments.check_beta("momentum", g["momentum"])


def _check_adam(g: Group) -> None:
    _check_decay(g)
    _check_betas(g["betas"])




# -- the registry ----------------------------------------------------------------------------------
class Recipe(NamedTuple):
    """How a named optimizer is made: its chain, its checks, its defaults and a summary."""

    #: a function of a parameter group's hyperparameters returning the group's chain
    build: Callable[[Group], Chain]
    #: validates a group's hyperparameters (raises ``ValueError`` naming the bad one)
    check: Callable[[Group], None]
    #: the default hyperparameters, read from the public function's signature
    defaults: dict[str, Any]
    #: one line for ``optimlab optimizers``
    summary: str


_RECIPES: dict[str, Recipe] = {}
#: arguments of the public functions that are not hyperparameters
_NOT_HYPERPARAMETERS = ("params", "fused")


def _recipe(build: Callable[[Group], Chain], check: Callable[[Group], None],
            summary: str) -> Callable[[Callable[..., ChainOptimizer]],
                                      Callable[..., ChainOptimizer]]:
    """Register the decorated function under its name, with the defaults of its signature."""

    def register(fn: Callable[..., ChainOptimizer]) -> Callable[..., ChainOptimizer]:
        defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()
                    if name not in _NOT_HYPERPARAMETERS}
        _RECIPES[fn.__name__] = Recipe(build, check, defaults, summary)
        return fn

    return register


def available() -> dict[str, dict[str, Any]]:
    """Every named optimizer with its default hyperparameters and a one-line summary."""
    return {name: {"defaults": dict(r.defaults), "summary": r.summary}
            for name, r in _RECIPES.items()}


def create(name: str, params: Iterable[Any], *, fused: Fused = None,
           **hyperparameters: Any) -> ChainOptimizer:
    """The optimizer called ``name`` (see :func:`available`) with the given hyperparameters.

    ``fused``: ``None`` (default) runs each parameter group's step as one compiled pass where
    that pays (see :mod:`optimlab.optim.fused`), ``True`` everywhere it can, ``False`` never.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _RECIPES:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(_RECIPES)}")
    recipe = _RECIPES[key]
    unknown = sorted(set(hyperparameters) - set(recipe.defaults))
    if unknown:
        raise ValueError(f"{key} has no hyperparameter {', '.join(map(repr, unknown))}; "
                         f"it takes {', '.join(recipe.defaults)}")
    return ChainOptimizer(params, recipe.build, {**recipe.defaults, **hyperparameters}, name=key,
                          check=recipe.check, fused=fused)


# -- public functions, one per algorithm (their signatures are the defaults) ----------------------
@_recipe(_sgd_chain, _check_sgd,
         "Gradient descent w ← w − α·g (batch, mini-batch or stochastic by the batch size); "
         "torch.optim.SGD's momentum/nesterov/dampening included.")
def sgd(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
        decay_mask: regularize.Mask = "auto", fused: Fused = None) -> ChainOptimizer:
    """Gradient descent, ``w ← w − α·∇J``; stochastic, mini-batch or batch by the batch size.

    With ``momentum`` > 0 it is torch.optim.SGD's heavy-ball momentum (``v ← μv + (1−d)g``,
    optionally Nesterov), equal to torch to 1e-10 in float64. ``weight_decay`` adds λ·w to the
    gradient (coupled L2); with ``decoupled_weight_decay=True`` it is ``w ← w − α·λ·w`` beside
    the step instead, outside the momentum (Keras's ``weight_decay``).
    """
    return create("sgd", **locals())


@_recipe(_momentum_chain, _check_momentum,
         "Momentum: v ← βv + (1−β)g, w ← w − α·v (form='ewa', the course); "
         "form='heavy_ball' is torch's v ← βv + g; form='lr_inside' is Keras's v ← βv − α·g.")
def momentum(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.9, form: str = "ewa",
             dampening: float = 0.0, nesterov: bool = False, bias_correction: bool = False,
             weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
             decay_mask: regularize.Mask = "auto", fused: Fused = None) -> ChainOptimizer:
    """Gradient descent with momentum.

    ``form="ewa"`` (the course):  v ← βv + (1−β)g,  w ← w − α·v  (v₀ = 0; optionally
    bias-corrected v̂ = v/(1 − βᵗ)). ``form="heavy_ball"`` (torch.optim.SGD):
    v ← βv + (1−dampening)g,  w ← w − α·v — the same path with α scaled by 1/(1−β).
    ``form="lr_inside"`` (Keras and TensorFlow SGD): v ← βv − α·g,  w ← w + v; the velocity
    holds past *steps*, so it equals heavy-ball while α is constant and differs when α changes
    (a step taken at a large α keeps pushing after α drops).
    """
    return create("momentum", **locals())


@_recipe(_nesterov_chain, _check_nesterov,
         "Nesterov accelerated gradient: momentum with a look-ahead step.")
def nesterov(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.9, form: str = "ewa",
             weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
             decay_mask: regularize.Mask = "auto", fused: Fused = None) -> ChainOptimizer:
    """Nesterov accelerated gradient: the gradient taken where momentum is about to carry w.

    ``form="heavy_ball"`` is torch.optim.SGD(nesterov=True): update g + μ·v;
    ``form="ewa"`` uses the EWA velocity: update (1−β)·g + β·v; ``form="lr_inside"`` is Keras's
    SGD(nesterov=True): v ← μv − α·g, w ← w + μ·v − α·g.
    """
    return create("nesterov", **locals())


@_recipe(_adagrad_chain, _check_adagrad,
         "Adagrad: w ← w − α·g/(√Σg² + ε); as torch.optim.Adagrad.")
def adagrad(params: Iterable[Any], lr: float = 0.01, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
            eps_inside: bool = False, decoupled_weight_decay: bool = False,
            decay_mask: regularize.Mask = "auto", fused: Fused = None) -> ChainOptimizer:
    """Adagrad: ``s ← s + g²``, ``w ← w − α_t·g/(√s + ε)`` with α_t = α/(1 + (t−1)·lr_decay).

    Equal to torch.optim.Adagrad (``eps_inside=False``); ``eps_inside=True`` uses √(s + ε).
    ``decoupled_weight_decay=True`` makes the decay ``w ← w − α_t·λ·w``, outside the
    accumulator.
    """
    return create("adagrad", **locals())


@_recipe(_rmsprop_chain, _check_rmsprop,
         "RMSprop: s ← αs + (1−α)g², w ← w − lr·g/(√s + ε); as torch.optim.RMSprop.")
def rmsprop(params: Iterable[Any], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            eps_inside: bool = False, bias_correction: bool = False,
            decoupled_weight_decay: bool = False, decay_mask: regularize.Mask = "auto",
            fused: Fused = None) -> ChainOptimizer:
    """RMSprop: ``s ← αs + (1−α)g²``, ``w ← w − lr·g/(√s + ε)``.

    ``alpha`` is the course's β (the notes suggest 0.999; torch and this default use 0.99).
    ``centered`` divides by the root of the variance s − ḡ²; ``momentum`` keeps a heavy-ball
    trace of g/(√s + ε). All as torch.optim.RMSprop. ``eps_inside=True`` computes √(s + ε).
    ``decoupled_weight_decay=True`` decays ``w ← w − lr·λ·w`` outside s and the momentum.
    """
    return create("rmsprop", **locals())


@_recipe(_adam_chain, _check_adam,
         "Adam: bias-corrected EWA of g over √(EWA of g²) + ε; as torch.optim.Adam.")
def adam(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         bias_correction: bool = True, eps_inside: bool = False, eps_form: str = "corrected",
         amsgrad_max: str = "raw", decoupled_weight_decay: bool = False,
         decay_mask: regularize.Mask = "auto", fused: Fused = None) -> ChainOptimizer:
    """Adam: momentum and RMSprop with bias correction.

        m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ)
        w ← w − α·m̂/(√v̂ + ε)                                   eps_form="corrected"
        w ← w − α·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)                 eps_form="hat"

    Equal to torch.optim.Adam. ``eps_form="hat"`` is Keras's and TensorFlow's form (the paper's
    "ε̂"): ε meets the uncorrected √v, which is ε·√(1−β₂ᵗ) in the corrected form — much smaller
    early on. ``weight_decay`` is coupled L2 (added to g); ``decoupled_weight_decay=True`` makes
    it AdamW. ``bias_correction=False`` shows what the correction is for.
    """
    return create("adam", **locals())


@_recipe(_amsgrad_chain, _check_adam,
         "AMSGrad: Adam with the running maximum of the second moment.")
def amsgrad(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
            eps: float = 1e-8, weight_decay: float = 0.0, amsgrad_max: str = "raw",
            eps_inside: bool = False, eps_form: str = "corrected",
            decoupled_weight_decay: bool = False, decay_mask: regularize.Mask = "auto",
            fused: Fused = None) -> ChainOptimizer:
    """AMSGrad: Adam whose second moment never shrinks, v_max ← max(v_max, v).

    ``amsgrad_max="raw"`` (torch.optim.Adam(amsgrad=True), Keras) takes the maximum of the raw v
    and corrects it; ``"corrected"`` (optax.amsgrad) takes the maximum of v̂. ``eps_form`` as
    in :func:`adam`.
    """
    return create("amsgrad", **locals())


@_recipe(_adamw_chain, _check_adam,
         "AdamW: Adam with decoupled weight decay w ← (1 − αλ)w; as torch.optim.AdamW.")
def adamw(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False,
          bias_correction: bool = True, eps_inside: bool = False, eps_form: str = "corrected",
          amsgrad_max: str = "raw", decay_mask: regularize.Mask = "auto",
          fused: Fused = None) -> ChainOptimizer:
    """AdamW: Adam with decoupled weight decay, ``w ← (1 − αλ)·w − α·m̂/(√v̂ + ε)``.

    Equal to torch.optim.AdamW when ``decay_mask="all"``; the default leaves biases and
    normalization weights undecayed. ``eps_form="hat"`` gives Keras's AdamW.
    """
    return create("adamw", **locals())


@_recipe(_nadam_chain, _check_adam,
         "Nadam: Adam with Nesterov's look-ahead and a momentum schedule; as torch.optim.NAdam.")
def nadam(params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          momentum_schedule: bool = True, decoupled_weight_decay: bool = False,
          eps_inside: bool = False, decay_mask: regularize.Mask = "auto",
          fused: Fused = None) -> ChainOptimizer:
    """Nadam: Adam with Nesterov's look-ahead on the first moment.

    ``momentum_schedule=True`` uses μ_t = β₁(1 − ½·0.96^(t·momentum_decay)) as
    torch.optim.NAdam does; ``False`` keeps μ = β₁ (optax.nadam's form).
    """
    return create("nadam", **locals())


@_recipe(_adamax_chain, _check_adam,
         "Adamax: Adam with an infinity-norm denominator; as torch.optim.Adamax.")
def adamax(params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
           eps: float = 1e-8, weight_decay: float = 0.0, eps_form: str = "inside",
           decoupled_weight_decay: bool = False, decay_mask: regularize.Mask = "auto",
           fused: Fused = None) -> ChainOptimizer:
    """Adamax: ``u ← max(β₂u, |g| + ε)``, ``w ← w − α/(1−β₁ᵗ)·m/u``; as torch.optim.Adamax.

    ``eps_form="outside"`` is Keras's form, ``u ← max(β₂u, |g|)``, ``w ← w − α/(1−β₁ᵗ)·m/(u + ε)``.
    """
    return create("adamax", **locals())


@_recipe(_lion_chain, _check_adam,
         "Lion: w ← w − α·(sign(β₁m + (1−β₁)g) + λw), m ← β₂m + (1−β₂)g.")
def lion(params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
         weight_decay: float = 0.0, decay_mask: regularize.Mask = "auto",
         fused: Fused = None) -> ChainOptimizer:
    """Lion (Chen et al., 2023): a sign update of an interpolated momentum.

        c = β₁m + (1−β₁)g,  w ← w − α·(sign(c) + λw),  m ← β₂m + (1−β₂)g

    Each coordinate moves by exactly α per step, so use a learning rate 3–10× smaller than
    AdamW's. Its weight decay is decoupled by construction.
    """
    return create("lion", **locals())
