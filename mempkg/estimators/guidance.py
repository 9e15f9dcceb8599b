"""Classifier-free-guidance norms: how hard a caption pulls the model (Wen et al. 2024; Ross, Kamkari et al. 2024).

Classifier-free guidance (Ho & Salimans 2022) mixes a conditional and an unconditional prediction,

    eps_hat(x, t | c) = eps(x, t | empty) + w [eps(x, t | c) - eps(x, t | empty)],      w = guidance scale,

and the *CFG vector* eps(x, t | c) - eps(x, t | empty) = -sigma(t) [s(x, t | c) - s(x, t | empty)] is
large when a caption pins one image: Wen et al. (2024, "Detecting, Explaining, and Mitigating
Memorization in Diffusion Models", ICLR) detect memorized prompts by its norm at the start of
generation; Ross, Kamkari et al. (2024, Appendix A.1 "CFG Norm") adapt it to real training images.

* :func:`cfg_norm` -- Ross et al.'s version for an image: push it a few Euler steps along the
  conditional probability-flow ODE to a small t0 (a perturbation of the image towards the noise
  level of t0, not an accurate ODE solution), then take the norm of the CFG vector there;
  :func:`cfg_norm_authors` -- the same as the authors' code runs it (start at t = 1e-4, one step past t0).
* :func:`cfg_norm_generation` -- Wen et al.'s version for a caption: the CFG-vector norm over the
  first steps of a guided deterministic (DDIM) sampler started from seeded prior noise.
* :func:`pf_ode_forward` -- the forward (data -> noise) Euler steps of the probability-flow ODE it uses;
  :func:`ode_start_time` -- where they start (a discrete schedule's first timestep, else 1e-4);
  ``past_t0=True`` takes the authors' grid instead.

Every function takes any *conditional score model*: ``model.sde`` (``alpha(t)``, ``sigma(t)``,
``beta(t)``, ``probability_flow``; :mod:`mempkg.core.schedules`) and ``model.score(x, t, cond)`` where
``cond=None`` is the unconditional model (the empty prompt for Stable Diffusion); a model that
also has ``eps(x, t, cond)`` (e.g. :class:`mempkg.models.stable_diffusion.StableDiffusion`) is asked for eps
directly instead of through eps = -sigma s. The conditional and unconditional predictions are
made in two calls of the same batch shape, so passing the model's own empty condition
(``model.null_cond(B)`` for Stable Diffusion) gives exactly 0.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

import contextlib
import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..core.protocol import check_inputs, check_score_model, modules_of
from ..core.tensors import check_choice

PARAMETRIZATIONS = ("eps", "score")
T_START_CONTINUOUS = 1e-4      # the FLIPD authors' ODE start (``Sde.solve_forward_ode``), for continuous schedules
T_START_AUTHORS = T_START_CONTINUOUS    # where Ross et al.'s CFG norm starts its Euler steps (their solver's default)


# -- helpers ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _eval_mode(model):
    """Run the model's network in eval mode (no dropout), restoring its mode afterwards."""
    mod = modules_of(model)
    was_training = mod.training if mod is not None else False
    if mod is not None:
        mod.eval()
    try:
        yield
    finally:
        if mod is not None and was_training:
            mod.train()


def _check_time(model, t: float, name: str) -> None:
    if hasattr(model.sde, "check_time"):
        model.sde.check_time(t, name)
    elif not (0 < t <= getattr(model.sde, "T", 1.0)):
        raise ValueError(f"{name}={t:g} is outside the schedule's time range (0, {getattr(model.sde, 'T', 1.0):g}].")


def _check_steps(n_steps, name: str = "n_steps") -> int:
    if isinstance(n_steps, bool) or not float(n_steps).is_integer() or int(n_steps) < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_steps!r}.")
    return int(n_steps)


def _ab(model, t: float, like: Tensor) -> tuple[Tensor, Tensor]:
    """alpha(t), sigma(t) as 0-d tensors in like's dtype and device (read in float64)."""
    a = torch.as_tensor(model.sde.alpha(float(t)), dtype=torch.float64)
    s = torch.as_tensor(model.sde.sigma(float(t)), dtype=torch.float64)
    return a.to(like), s.to(like)


def eps_prediction(model, x: Tensor, t: float, cond: Optional[Tensor] = None) -> Tensor:
    """eps(x, t | c) = -sigma(t) s(x, t | c) at a float time t, or the model's own ``eps`` when it has
    one (it avoids dividing by sigma and multiplying back). Shape of x."""
    if callable(getattr(model, "eps", None)):
        return model.eps(x, t, cond)
    return -float(model.sde.sigma(float(t))) * model.score(x, t, cond=cond)


def _ddim_step(model, x: Tensor, eps: Tensor, t: float, t_next: float) -> Tensor:
    """One deterministic DDIM step t -> t_next (Song, Meng & Ermon 2021, eq. 12 with eta = 0):

        x0_hat = (x - sigma(t) eps) / alpha(t),     x_next = alpha(t_next) x0_hat + sigma(t_next) eps.

    It is Euler's method for the probability-flow ODE written in y = x / alpha and
    lambda = sigma / alpha, dy / dlambda = eps (Karras et al. 2022, Sec. 4): exact when eps is constant
    along the path, the reason it samples well in few steps.
    """
    a, s = _ab(model, t, x)
    a_n, s_n = _ab(model, t_next, x)
    x0_hat = (x - s * eps) / a
    return a_n * x0_hat + s_n * eps


# -- the forward probability-flow integration ---------------------------------------------------------

def ode_start_time(model) -> float:
    """Where the forward Euler steps of :func:`pf_ode_forward` start when no ``t_start`` is given.

    For a discrete schedule (one with ``t_of_timestep``, e.g.
    :class:`mempkg.core.schedules.DiscreteVPSchedule`) the time of its first training timestep,
    t_0 = 1 / N (UNet label 0; sigma = sqrt(beta_0) = 0.029 for SD): an earlier start would query
    the UNet at a negative label it never saw (label N t - 1 < 0 for t < 1 / N). Otherwise
    :data:`T_START_CONTINUOUS` = 1e-4, where the FLIPD authors' ODE solver starts.
    """
    first = getattr(model.sde, "t_of_timestep", None)
    return float(first(0)) if callable(first) else T_START_CONTINUOUS


@torch.no_grad()
def pf_ode_forward(model, x: Tensor, t0: float, n_steps: int = 3, cond: Optional[Tensor] = None,
                   t_start: Optional[float] = None, past_t0: bool = False) -> Tensor:
    """Push clean data along the probability-flow ODE from t_start to t0 (data towards noise) with
    Euler's method in t on (Song et al. 2021, eq. 13)

        dx/dt = f(t) x - 1/2 g(t)^2 s(x, t | c)      (VP: -1/2 beta(t) [x + s(x, t | c)]),

    on the uniform grid t_k = t_start + k (t0 - t_start) / n_steps: x_{k+1} = x_k + h v(x_k, t_k),
    starting from x_0 = x. The clean point stands in for x(t_start); t_start must be > 0 because
    the score diverges like 1 / sigma at t = 0. ``t_start=None`` is :func:`ode_start_time`: the
    first training timestep of a discrete schedule (label 0), else 1e-4.

    ``past_t0=True`` is the FLIPD authors' Euler solver (``Sde._solve`` in layer6ai-labs/dgm_geometry,
    models/diffusions/sdes/sdes.py): the n_steps grid points t_k = t_start + k h, h = (t0 - t_start) /
    (n_steps - 1), k = 0..n_steps-1, include t0, and a step is taken from each of them, so the
    n_steps steps end at t0 + h, one step past t0 (n_steps >= 2).

    What the few steps Ross et al. take are: a deterministic perturbation of the image towards
    the noise level of t0, not an accurate solution of the ODE near the data. Close to a data
    manifold the learned score changes on the scale sigma(t), and a step h is several times t
    itself (3 steps from 0.001 to 0.01: h = 0.003), so Euler's local error is not small there
    (off-manifold offsets grow like sigma(t); one Euler step from t to 4t scales them by ~2.5
    instead of 2); only where the score is smooth on the step's scale does the error fall like
    1 / n_steps. On a 4-d Gaussian with the exact score (tests/test_guidance.py), the smooth case,
    3 steps from 1e-4 to 0.01 miss the exact flow by ~2% of the distance moved with SD's beta range
    (0.85 -> 12) and ~16% with beta 0.1 -> 20; a trained model near its memorized images is not
    that case.

    Args:
        model: a conditional score model; x: ``[B, ...]``; cond: ``[B, ...]`` or None (unconditional).
        t_start: the first grid time (> 0, < t0); None: :func:`ode_start_time`.
        past_t0: the authors' grid, ending one step past t0 (above).
    Returns:
        x(t0), or x(t0 + h) with ``past_t0``; shape of x.
    """
    check_inputs(model, x, cond)
    n_steps = _check_steps(n_steps)
    if past_t0 and n_steps < 2:
        raise ValueError("past_t0 (the authors' grid) needs n_steps >= 2: its step is (t0 - t_start) / (n_steps - 1).")
    _check_time(model, t0, "t0")
    t0 = float(t0)
    t_start = ode_start_time(model) if t_start is None else float(t_start)
    if t_start <= 0:
        raise ValueError(f"t_start={t_start:g}: Euler steps need t_start > 0, because the score diverges like "
                         "1 / sigma at t = 0.")
    if t_start >= t0:
        raise ValueError(f"need 0 < t_start < t0, got t_start={t_start:g}, t0={t0:g} (for a discrete schedule the "
                         "steps start at its first timestep, t = 1 / N).")
    if past_t0:                 # the authors' grid: n_steps points up to t0, a step of h from each
        ts = torch.linspace(t_start, t0, n_steps, dtype=torch.float64).tolist()
        ts.append(t0 + (t0 - t_start) / (n_steps - 1))
    else:
        ts = torch.linspace(t_start, t0, n_steps + 1, dtype=torch.float64).tolist()
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * model.sde.probability_flow(x, t, model.score(x, t, cond=cond))
    return x


# -- Ross, Kamkari et al.: the CFG norm of a real image -------------------------------------------------

def cfg_norm(model, x: Tensor, cond: Tensor, t0: float = 0.01, n_steps: int = 3, *, t_start: Optional[float] = None,
             past_t0: bool = False, parametrization: str = "eps", max_batch: int = 64) -> Tensor:
    """CFG norm of clean images under their captions (Ross, Kamkari et al. 2024, Appendix A.1 "CFG Norm"):

        x_{t0} = n_steps Euler steps of the *conditional* PF-ODE from x (at t_start ~ 0) to t0,
        CFG(x, c) = | eps(x_{t0}, t0 | c) - eps(x_{t0}, t0 | empty) |_2        (L2 over all non-batch dims),

    a large value meaning the caption c pins the image (memorization). Ross et al. use t0 = 0.01
    and 3 Euler steps (the defaults), on SD latents with the empty prompt as "empty".

    This book's version, and how it differs from the authors' code (:func:`cfg_norm_authors`):
    (1) Ross et al.'s text writes the norm of the *score* difference |s(.|c) - s(.|empty)| =
    CFG / sigma(t0); their code takes the norm of its ``score_net`` output sigma s = -eps, the eps
    form (the default, also Wen et al.'s); at a fixed t0 the two rank images identically, and
    ``parametrization="score"`` gives the text's. (2) The grid starts at ``t_start`` -- by default a
    discrete schedule's first timestep (t = 1 / N, label 0; SD: 0.001, sigma 0.029), else 1e-4
    (:func:`ode_start_time`) -- where the authors' code starts at t = 1e-4 on its linear-beta clock
    (label 0.1, sigma 0.009). (3) The steps end exactly at t0; the authors' solver ends one step past
    it (``past_t0=True``) and reads the CFG vector there at the label of t0. The steps perturb the
    image towards t0's noise level; they do not solve the ODE accurately near the data
    (:func:`pf_ode_forward`).

    Args:
        model: a conditional score model (module docstring); x: clean data ``[B, ...]`` (SD latents);
        cond: one condition per image ``[B, ...]`` (caption embeddings); t0: read-out time in (0, T];
        n_steps: Euler steps (>= 1; >= 2 with ``past_t0``); t_start, past_t0: see :func:`pf_ode_forward`;
        parametrization: ``"eps"`` or ``"score"``; max_batch: images per model call.
    Returns:
        Tensor[B] (float64, on the CPU).
    """
    if cond is None:
        raise ValueError("cfg_norm needs one condition per image (the caption embeddings); cond=None would "
                         "compare the unconditional model with itself.")
    check_inputs(model, x, cond)
    check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    _check_steps(n_steps)
    _check_time(model, t0, "t0")
    out = []
    with _eval_mode(model), torch.no_grad():
        for start in range(0, x.shape[0], int(max_batch)):
            xb, cb = x[start:start + max_batch], cond[start:start + max_batch]
            y = pf_ode_forward(model, xb, t0, n_steps, cond=cb, t_start=t_start, past_t0=past_t0)
            d = eps_prediction(model, y, t0, cb) - eps_prediction(model, y, t0, None)
            if parametrization == "score":
                d = d / _ab(model, t0, d)[1]
            out.append(d.double().flatten(1).norm(dim=1).cpu())
    return torch.cat(out)


def cfg_norm_authors(model, x: Tensor, cond: Tensor, t0: float = 0.01, n_steps: int = 3, *,
                     t_start: float = T_START_AUTHORS, max_batch: int = 64) -> Tensor:
    """Ross et al.'s CFG norm as their code computes it (``ClassifierFreeGuidanceNorm`` with
    ``Sde.solve_forward_ode`` of layer6ai-labs/dgm_geometry):

        t_k = t_start + k h,  h = (t0 - t_start) / (n_steps - 1),  k = 0..n_steps-1     (t_start = 1e-4),
        x_{k+1} = x_k + h v(x_k, t_k | c)       (n_steps Euler steps; x_{n_steps} lies at t0 + h),
        CFG = | eps(x_{n_steps}, t0 | c) - eps(x_{n_steps}, t0 | empty) |_2,

    :func:`cfg_norm` with ``t_start=1e-4``, ``past_t0=True`` and the eps form. The authors run it on
    their reading of SD's schedule, a VP-SDE with beta linear from N beta_start to N beta_end whose
    UNet label is N t (``StableDiffusionSde``, ``DiffusersDDPMWrapper``): pass the model read that way,
    ``mempkg.models.stable_diffusion.with_schedule(model, "linear_beta")``, where t = 1e-4 is label 0.1
    (sigma 0.009) and t0 = 0.01 label 10. On a discrete schedule's own clock 1e-4 lies below the
    first training timestep (a negative label), which is refused.

    Args:
        model: a conditional score model on the authors' clock; x, cond, t0, n_steps (>= 2), max_batch:
            as :func:`cfg_norm`; t_start: where the steps start (the authors': 1e-4).
    Returns:
        Tensor[B] (float64, on the CPU).
    """
    first = getattr(model.sde, "t_of_timestep", None)
    if callable(first) and float(t_start) < float(first(0)):
        raise ValueError(f"t_start={float(t_start):g} lies below this discrete schedule's first timestep "
                         f"t = {float(first(0)):g} (a negative UNet label); read the model on the authors' clock "
                         "with mempkg.models.stable_diffusion.with_schedule(model, 'linear_beta').")
    return cfg_norm(model, x, cond, t0=t0, n_steps=n_steps, t_start=t_start, past_t0=True, max_batch=max_batch)


# -- Wen et al.: the CFG norm at the start of generation ---------------------------------------------------

def generation_times(model, n_inference_steps: int = 50) -> Tensor:
    """The sampler's time grid t_k = T (1 - k / n_inference_steps), k = 0..n_inference_steps (float64)."""
    T = float(getattr(model.sde, "T", 1.0))
    return torch.linspace(T, 0.0, _check_steps(n_inference_steps, "n_inference_steps") + 1, dtype=torch.float64)


def cfg_norm_generation(model, cond: Tensor, shape: Optional[Sequence[int]] = None, n_steps: int = 1, seed: int = 0, *,
                        guidance_scale: float = 7.5, n_inference_steps: int = 50, n_samples: int = 1,
                        dtype: torch.dtype = torch.float32, max_batch: int = 64) -> Tensor:
    """Wen et al. (2024)'s memorization score of a caption: the CFG-vector norm at the start of generation,

        d(c) = 1/n_steps sum_{k < n_steps} | eps(x_{t_k}, t_k | c) - eps(x_{t_k}, t_k | empty) |_2,

    along a deterministic DDIM sampler (eta = 0) guided with eps_hat = eps_u + w (eps_c - eps_u),
    w = ``guidance_scale`` (7.5, SD's default), started from prior noise x_{t_0} ~ N(0, I) at
    t_0 = T on the grid of :func:`generation_times`. n_steps = 1 is a single pair of model calls at
    x_T; Wen et al. find the first steps already separate memorized prompts. Averaged over
    ``n_samples`` noise draws per caption (Wen et al. generate several images per prompt).

    Difference from SD's pipeline: with 50 steps it starts at timestep 981 of 1000 ("leading"
    spacing; t = 0.982 here) and SD v1.5 ships a PNDM scheduler; here the grid starts at T and DDIM
    steps uniformly in t. For n_steps = 1 the two differ only by that start time.

    Seeding: the ``n_samples`` noise draws are made once from a CPU generator seeded with ``seed``
    and shared by every caption (common random numbers), so a caption's value depends only on
    (seed, n_samples, its condition): not on the batch it is in, its position or ``max_batch``
    (up to float rounding, ~1e-6 relative in float32, as batched kernels sum in other orders).

    Args:
        model: a conditional score model (module docstring); cond: ``[B, ...]`` conditions (caption embeddings).
        shape: per-sample data shape; defaults to ``model.data_shape``.
        n_steps: steps averaged over (1 <= n_steps <= n_inference_steps).
    Returns:
        Tensor[B] (float64, on the CPU).
    """
    check_score_model(model)
    if not isinstance(cond, Tensor) or cond.dim() < 1 or cond.shape[0] < 1:
        raise ValueError("cond must be a tensor with one condition per caption [B, ...] (B >= 1); "
                         "for Stable Diffusion make it with model.encode_prompts(captions).")
    if shape is None:
        shape = getattr(model, "data_shape", None)
        if shape is None:
            raise ValueError("give the per-sample data shape: this model declares no data_shape.")
    shape = tuple(int(v) for v in shape)
    expected = getattr(model, "data_shape", None)
    if expected is not None and shape != tuple(expected):
        raise ValueError(f"shape {shape} does not match the model's data_shape {tuple(expected)}.")
    n_inference_steps = _check_steps(n_inference_steps, "n_inference_steps")
    n_steps = _check_steps(n_steps)
    if n_steps > n_inference_steps:
        raise ValueError(f"n_steps={n_steps} exceeds the sampler's n_inference_steps={n_inference_steps}.")
    n_samples = _check_steps(n_samples, "n_samples")
    if not math.isfinite(float(guidance_scale)):
        raise ValueError(f"guidance_scale must be finite, got {guidance_scale}.")
    w = float(guidance_scale)

    ts = generation_times(model, n_inference_steps).tolist()
    g = torch.Generator().manual_seed(int(seed))
    prior = getattr(model.sde, "prior_sampling", None)
    z = prior((n_samples, *shape), generator=g) if prior is not None else torch.randn((n_samples, *shape), generator=g)
    z = z.to(device=cond.device, dtype=dtype)

    B = cond.shape[0]
    rows = torch.arange(B * n_samples, device=cond.device)           # row r: caption r // n_samples, draw r % n_samples
    d = torch.zeros(B * n_samples, dtype=torch.float64)
    with _eval_mode(model), torch.no_grad():
        for start in range(0, len(rows), int(max_batch)):
            r = rows[start:start + max_batch]
            x, c = z[r % n_samples], cond[r // n_samples]
            for k in range(n_steps):
                t = ts[k]
                eps_c = eps_prediction(model, x, t, c)
                eps_u = eps_prediction(model, x, t, None)
                diff = eps_c - eps_u
                d[r.cpu()] += diff.double().flatten(1).norm(dim=1).cpu()
                if k + 1 < n_steps:
                    x = _ddim_step(model, x, eps_u + w * diff, t, ts[k + 1])
    return (d / n_steps).view(B, n_samples).mean(1)
