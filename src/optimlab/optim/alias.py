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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from optimlab._checks import check_choice, check_number
from optimlab.optim import moments as M
from optimlab.optim import regularize as R
from optimlab.optim import scaling as S
from optimlab.optim.base import Chain, chain
from optimlab.optim.optimizer import ChainOptimizer

Group = Mapping[str, Any]


def _check_betas(betas: Any) -> None:
    if not (isinstance(betas, tuple | list) and len(betas) == 2):
        raise ValueError(f"betas={betas!r} must be a pair (β₁, β₂), each in [0, 1)")
    M.check_beta("betas[0]", betas[0])
    M.check_beta("betas[1]", betas[1])


def _check_decay(g: Group) -> None:
    check_number("weight_decay", g["weight_decay"], low=0.0)
    R.check_mask(g["decay_mask"])


def _decay(g: Group) -> list[R.DecayWeights]:
    """Coupled (L2) or decoupled weight decay, as a piece to splice into a chain."""
    return [R.decay_weights(g["weight_decay"], g["decay_mask"])] if g["weight_decay"] else []


# -- chains (one per algorithm; each reads a group's hyperparameters) -----------------------------
def _sgd_chain(g: Group) -> Chain:
    pieces: list[Any] = _decay(g)
    if g["momentum"]:
        pieces.append(M.trace(g["momentum"], g["dampening"]))
        if g["nesterov"]:
            pieces.append(M.nesterov(g["momentum"], "heavy_ball"))
    return chain(*pieces, S.scale_by_lr())


def _momentum_chain(g: Group) -> Chain:
    if g["form"] == "heavy_ball":
        return _sgd_chain(g)
    pieces: list[Any] = [*_decay(g), M.ewa(g["momentum"])]
    if g["bias_correction"]:
        pieces.append(M.bias_correction(g["momentum"]))
    if g["nesterov"]:
        pieces.append(M.nesterov(g["momentum"], "ewa"))
    return chain(*pieces, S.scale_by_lr())


def _adagrad_chain(g: Group) -> Chain:
    return chain(*_decay(g),
                 S.scale_by_adagrad(g["eps"], g["initial_accumulator_value"],
                                    eps_inside=g["eps_inside"]),
                 S.lr_decay(g["lr_decay"]), S.scale_by_lr())


def _rmsprop_chain(g: Group) -> Chain:
    pieces: list[Any] = [*_decay(g), S.scale_by_rms(
        g["alpha"], g["eps"], eps_inside=g["eps_inside"], centered=g["centered"],
        bias_correction=g["bias_correction"])]
    if g["momentum"]:
        pieces.append(M.trace(g["momentum"]))
    return chain(*pieces, S.scale_by_lr())


def _adam_pieces(g: Group) -> list[Any]:
    b1, b2 = g["betas"]
    pieces: list[Any] = [M.ewa(b1)]
    if g["bias_correction"]:
        pieces.append(M.bias_correction(b1))
    pieces.append(S.scale_by_rms(b2, g["eps"], eps_inside=g["eps_inside"],
                                 bias_correction=g["bias_correction"], amsgrad=g["amsgrad"],
                                 amsgrad_max=g["amsgrad_max"]))
    return pieces


def _adam_chain(g: Group) -> Chain:
    return chain(*_decay(g), *_adam_pieces(g), S.scale_by_lr())


def _adamw_chain(g: Group) -> Chain:
    return chain(*_adam_pieces(g), *_decay(g), S.scale_by_lr())


def _nadam_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    core = [M.nadam_momentum(b1, g["momentum_decay"], g["momentum_schedule"]),
            S.scale_by_rms(b2, g["eps"], eps_inside=g["eps_inside"], bias_correction=True)]
    if g["decoupled_weight_decay"]:
        return chain(*core, *_decay(g), S.scale_by_lr())
    return chain(*_decay(g), *core, S.scale_by_lr())


def _adamax_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    return chain(*_decay(g), M.ewa(b1), M.bias_correction(b1), S.scale_by_inf_norm(b2, g["eps"]),
                 S.scale_by_lr())


def _lion_chain(g: Group) -> Chain:
    b1, b2 = g["betas"]
    return chain(M.lion_momentum(b1, b2), S.sign(), *_decay(g), S.scale_by_lr())


# -- checks -------------------------------------------------------------------------------------
def _check_sgd(g: Group) -> None:
    _check_decay(g)
    M.check_beta("momentum", g["momentum"])
    check_number("dampening", g["dampening"], low=0.0, high=1.0)
    if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
        raise ValueError("nesterov=True needs momentum > 0 and dampening=0")


def _check_momentum(g: Group) -> None:
    check_choice("form", g["form"], ("ewa", "heavy_ball"))
    if g["form"] == "heavy_ball" and g["bias_correction"]:
        raise ValueError("bias_correction=True applies to form='ewa' only: the heavy-ball trace "
                         "is not an average, so there is no bias to correct")
    _check_sgd(g)


def _check_adagrad(g: Group) -> None:
    _check_decay(g)
    check_number("lr_decay", g["lr_decay"], low=0.0)


def _check_rmsprop(g: Group) -> None:
    _check_decay(g)
    M.check_beta("momentum", g["momentum"])


def _check_adam(g: Group) -> None:
    _check_decay(g)
    _check_betas(g["betas"])


def _check_lion(g: Group) -> None:
    _check_decay(g)
    _check_betas(g["betas"])


# -- the registry ----------------------------------------------------------------------------------
Recipe = tuple[Callable[[Group], Chain], Callable[[Group], None], dict[str, Any], str]
_RECIPES: dict[str, Recipe] = {
    "sgd": (_sgd_chain, _check_sgd, dict(
        lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
        decay_mask="auto"),
        "Gradient descent w ← w − α·g (batch, mini-batch or stochastic by the batch size); "
        "torch.optim.SGD's momentum/nesterov/dampening included."),
    "momentum": (_momentum_chain, _check_momentum, dict(
        lr=0.01, momentum=0.9, form="ewa", dampening=0.0, nesterov=False, bias_correction=False,
        weight_decay=0.0, decay_mask="auto"),
        "Momentum: v ← βv + (1−β)g, w ← w − α·v (form='ewa', the course); "
        "form='heavy_ball' is torch's v ← βv + g."),
    "nesterov": (_momentum_chain, _check_momentum, dict(
        lr=0.01, momentum=0.9, form="ewa", dampening=0.0, nesterov=True, bias_correction=False,
        weight_decay=0.0, decay_mask="auto"),
        "Nesterov accelerated gradient: momentum with a look-ahead step."),
    "adagrad": (_adagrad_chain, _check_adagrad, dict(
        lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
        eps_inside=False, decay_mask="auto"),
        "Adagrad: w ← w − α·g/(√Σg² + ε); as torch.optim.Adagrad."),
    "rmsprop": (_rmsprop_chain, _check_rmsprop, dict(
        lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
        eps_inside=False, bias_correction=False, decay_mask="auto"),
        "RMSprop: s ← αs + (1−α)g², w ← w − lr·g/(√s + ε); as torch.optim.RMSprop."),
    "adam": (_adam_chain, _check_adam, dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
        bias_correction=True, eps_inside=False, amsgrad_max="raw", decay_mask="auto"),
        "Adam: bias-corrected EWA of g over √(EWA of g²) + ε; as torch.optim.Adam."),
    "amsgrad": (_adam_chain, _check_adam, dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True,
        bias_correction=True, eps_inside=False, amsgrad_max="raw", decay_mask="auto"),
        "AMSGrad: Adam with the running maximum of the second moment."),
    "adamw": (_adamw_chain, _check_adam, dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False,
        bias_correction=True, eps_inside=False, amsgrad_max="raw", decay_mask="auto"),
        "AdamW: Adam with decoupled weight decay w ← (1 − αλ)w; as torch.optim.AdamW."),
    "nadam": (_nadam_chain, _check_adam, dict(
        lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
        momentum_schedule=True, decoupled_weight_decay=False, eps_inside=False,
        decay_mask="auto"),
        "Nadam: Adam with Nesterov's look-ahead and a momentum schedule; as torch.optim.NAdam."),
    "adamax": (_adamax_chain, _check_adam, dict(
        lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decay_mask="auto"),
        "Adamax: Adam with an infinity-norm denominator; as torch.optim.Adamax."),
    "lion": (_lion_chain, _check_lion, dict(
        lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, decay_mask="auto"),
        "Lion: w ← w − α·(sign(β₁m + (1−β₁)g) + λw), m ← β₂m + (1−β₂)g."),
}


def available() -> dict[str, dict[str, Any]]:
    """Every named optimizer with its default hyperparameters and a one-line summary."""
    return {name: {"defaults": dict(defaults), "summary": summary}
            for name, (_, _, defaults, summary) in _RECIPES.items()}


def create(name: str, params: Iterable[Any], **hyperparameters: Any) -> ChainOptimizer:
    """The optimizer called ``name`` (see :func:`available`) with the given hyperparameters."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _RECIPES:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(_RECIPES)}")
    build, check, defaults, _ = _RECIPES[key]
    unknown = sorted(set(hyperparameters) - set(defaults))
    if unknown:
        raise ValueError(f"{key} has no hyperparameter {', '.join(map(repr, unknown))}; "
                         f"it takes {', '.join(defaults)}")
    return ChainOptimizer(params, build, {**defaults, **hyperparameters}, name=key, check=check)


# -- public functions, one per algorithm (signatures show the defaults) ----------------------------
def sgd(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0,
        decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Gradient descent, ``w ← w − α·∇J``; stochastic, mini-batch or batch by the batch size.

    With ``momentum`` > 0 it is torch.optim.SGD's heavy-ball momentum (``v ← μv + (1−d)g``,
    optionally Nesterov), equal to torch to 1e-10 in float64. ``weight_decay`` adds λ·w to the
    gradient (coupled L2).
    """
    return create("sgd", params, lr=lr, momentum=momentum, dampening=dampening,
                  nesterov=nesterov, weight_decay=weight_decay, decay_mask=decay_mask)


def momentum(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.9, form: str = "ewa",
             dampening: float = 0.0, nesterov: bool = False, bias_correction: bool = False,
             weight_decay: float = 0.0, decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Gradient descent with momentum.

    ``form="ewa"`` (the course):  v ← βv + (1−β)g,  w ← w − α·v  (v₀ = 0; optionally
    bias-corrected v̂ = v/(1 − βᵗ)). ``form="heavy_ball"`` (torch.optim.SGD, Keras SGD):
    v ← βv + (1−dampening)g — the same path with α scaled by 1/(1−β).
    """
    return create("momentum", params, lr=lr, momentum=momentum, form=form, dampening=dampening,
                  nesterov=nesterov, bias_correction=bias_correction, weight_decay=weight_decay,
                  decay_mask=decay_mask)


def nesterov(params: Iterable[Any], lr: float = 0.01, momentum: float = 0.9, form: str = "ewa",
             weight_decay: float = 0.0, decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Nesterov accelerated gradient: the gradient taken where momentum is about to carry w.

    ``form="heavy_ball"`` is torch.optim.SGD(nesterov=True): update g + μ·v;
    ``form="ewa"`` uses the EWA velocity: update (1−β)·g + β·v.
    """
    return create("nesterov", params, lr=lr, momentum=momentum, form=form,
                  weight_decay=weight_decay, decay_mask=decay_mask)


def adagrad(params: Iterable[Any], lr: float = 0.01, lr_decay: float = 0.0,
            weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
            eps_inside: bool = False, decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Adagrad: ``s ← s + g²``, ``w ← w − α_t·g/(√s + ε)`` with α_t = α/(1 + (t−1)·lr_decay).

    Equal to torch.optim.Adagrad (``eps_inside=False``); ``eps_inside=True`` uses √(s + ε).
    """
    return create("adagrad", params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                  initial_accumulator_value=initial_accumulator_value, eps=eps,
                  eps_inside=eps_inside, decay_mask=decay_mask)


def rmsprop(params: Iterable[Any], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            eps_inside: bool = False, bias_correction: bool = False,
            decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """RMSprop: ``s ← αs + (1−α)g²``, ``w ← w − lr·g/(√s + ε)``.

    ``alpha`` is the course's β (the notes suggest 0.999; torch and this default use 0.99).
    ``centered`` divides by the root of the variance s − ḡ²; ``momentum`` keeps a heavy-ball
    trace of g/(√s + ε). All as torch.optim.RMSprop. ``eps_inside=True`` computes √(s + ε).
    """
    return create("rmsprop", params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                  momentum=momentum, centered=centered, eps_inside=eps_inside,
                  bias_correction=bias_correction, decay_mask=decay_mask)


def adam(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         bias_correction: bool = True, eps_inside: bool = False, amsgrad_max: str = "raw",
         decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Adam: momentum and RMSprop with bias correction.

        m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ)
        w ← w − α·m̂/(√v̂ + ε)

    Equal to torch.optim.Adam. ``weight_decay`` is coupled L2 (added to g); for decoupled decay
    use :func:`adamw`. ``bias_correction=False`` shows what the correction is for.
    """
    return create("adam", params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  amsgrad=amsgrad, bias_correction=bias_correction, eps_inside=eps_inside,
                  amsgrad_max=amsgrad_max, decay_mask=decay_mask)


def amsgrad(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
            eps: float = 1e-8, weight_decay: float = 0.0, amsgrad_max: str = "raw",
            decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """AMSGrad: Adam whose second moment never shrinks, v_max ← max(v_max, v).

    ``amsgrad_max="raw"`` (torch.optim.Adam(amsgrad=True)) takes the maximum of the raw v and
    corrects it; ``"corrected"`` (optax.amsgrad) takes the maximum of v̂.
    """
    return create("amsgrad", params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  amsgrad_max=amsgrad_max, decay_mask=decay_mask)


def adamw(params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.01, amsgrad: bool = False,
          bias_correction: bool = True, eps_inside: bool = False, amsgrad_max: str = "raw",
          decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """AdamW: Adam with decoupled weight decay, ``w ← (1 − αλ)·w − α·m̂/(√v̂ + ε)``.

    Equal to torch.optim.AdamW when ``decay_mask="all"``; the default leaves biases and
    normalization weights undecayed.
    """
    return create("adamw", params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  amsgrad=amsgrad, bias_correction=bias_correction, eps_inside=eps_inside,
                  amsgrad_max=amsgrad_max, decay_mask=decay_mask)


def nadam(params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          momentum_schedule: bool = True, decoupled_weight_decay: bool = False,
          eps_inside: bool = False, decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Nadam: Adam with Nesterov's look-ahead on the first moment.

    ``momentum_schedule=True`` uses μ_t = β₁(1 − ½·0.96^(t·momentum_decay)) as
    torch.optim.NAdam does; ``False`` keeps μ = β₁ (optax.nadam's form).
    """
    return create("nadam", params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  momentum_decay=momentum_decay, momentum_schedule=momentum_schedule,
                  decoupled_weight_decay=decoupled_weight_decay, eps_inside=eps_inside,
                  decay_mask=decay_mask)


def adamax(params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
           eps: float = 1e-8, weight_decay: float = 0.0,
           decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Adamax: ``u ← max(β₂u, |g| + ε)``, ``w ← w − α/(1−β₁ᵗ)·m/u``; as torch.optim.Adamax."""
    return create("adamax", params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                  decay_mask=decay_mask)


def lion(params: Iterable[Any], lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
         weight_decay: float = 0.0, decay_mask: R.Mask = "auto") -> ChainOptimizer:
    """Lion (Chen et al., 2023): a sign update of an interpolated momentum.

        c = β₁m + (1−β₁)g,  w ← w − α·(sign(c) + λw),  m ← β₂m + (1−β₂)g

    Each coordinate moves by exactly α per step, so use a learning rate 3–10× smaller than
    AdamW's.
    """
    return create("lion", params, lr=lr, betas=betas, weight_decay=weight_decay,
                  decay_mask=decay_mask)
