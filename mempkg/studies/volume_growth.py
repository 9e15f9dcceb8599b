"""Chapter 02: Hasegawa & Yasuda's volume growth on the 2^7 overfit, with two controls the paper lacks.

The score of an image x is the paper's log volume growth along the forward probability-flow ODE,

    L(x) = sum_k sum_{i=1}^N log(|Phi_k(x_k + r q_i) - Phi_k(x_k)| / r)

(:func:`mempkg.estimators.volume.volume_growth`). :func:`run` trains a UNet on the first ``n_subset``
training images (or reads a reader's DDPM pipeline, or a reader's model from a factory), compares L of
trained and held-out images (each averaged with its horizontal flip), repeats it on a model trained on the
held-out images (the role swap), scores the same images by their denoising loss, compares memorized with
other training images of a model trained with planted duplicates, and sweeps N, the Euler steps K and the
radius r (paper Fig. 3).

Layer: studies (imports core, estimators, models, data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..core.digests import content_digest
from ..core.schedules import VPSDE, EDMSchedule
from ..data.images import load_images, overfit_subset, plant_duplicates
from ..estimators.memorization import auroc, copies, denoising_loss, extract_memorized, two_sided_auroc, welch_test
from ..estimators.volume import volume_growth
from ..models.adapters import image_score_model
from ..models.networks import unet_eps
from ..models.sampling import sample
from ..models.train import train_cached
from ..models.views import VPView
from .readers import describe_model, reader_pixel_inputs, reader_source

__all__ = ["N_LOSS_DRAWS", "VolumeGrowthResult", "run"]

N_LOSS_DRAWS = 8               # noise draws per evaluation of the denoising loss
TRAINED, MEMORIZED = "trained vs held-out", "memorized vs other"
NAN = float("nan")             # an ablation cell whose groups are too small to compare (never AUROC 0.5)


@dataclass(frozen=True)
class VolumeGrowthResult:
    """What chapter 02 shows: the images, the per-image scores, the ablation grids, tables and the summary.

    Per-image tensors are float64 on the CPU. ``L``, ``L_volume``, ``L_swap`` and ``loss`` have one entry per
    evaluation (the trained rows then the held-out rows, each group's originals then their flips; ``member``
    is True on trained rows); ``L_trained`` and ``L_heldout`` average each image with its flip.
    ``grids[(group, row name)] = (row values, {(row value, K): (AUROC, Welch p)})``.
    """

    model: dict                    # describe_model: source, class, n_parameters, weights_digest
    reader: bool                   # True when the run read a reader's model instead of training its own
    train_images: Tensor           # the trained group's rows, [2n, C, H, W] in [-1, 1]
    samples: Tensor                # the overfit model's samples [n_samples, C, H, W]
    L: Tensor
    L_volume: Tensor
    member: Tensor
    L_trained: Tensor
    L_heldout: Tensor
    L_swap: Optional[Tensor]       # None for a reader's model (the swap retrains the chapter's network)
    loss: Tensor
    extracted: Tensor              # the training images some sample copies, [n_found, C, H, W]
    L_memorized: Tensor
    L_other: Tensor                # as many other training images, drawn at random
    grids: dict
    ablation_steps: tuple
    inputs: pd.DataFrame           # what the run read: model, images, samples
    groups: pd.DataFrame           # trained against held-out, per measure
    hadamard: pd.DataFrame         # the per-axis score minus the log-volume (Hadamard: never negative)
    controls: pd.DataFrame         # AUROC of L, of L under the swap model, of the loss, with their costs
    memorized: pd.DataFrame        # extraction and memorized against other training images
    ablation: pd.DataFrame         # one row per ablation cell
    summary: dict                  # what summary.json holds, without the verdicts and the run time


def _train(cache, S, sde, name, images, steps, seed, device, batch_size):
    """The chapter's eps-UNet trained with train_cached on ``images`` (cached by every setting)."""
    shape = tuple(images.shape[1:])
    recipe = dict(lr=S.lr, warmup=S.warmup, batch_size=S.batch_size, ema_decay=S.ema_decay, t_sampling=S.t_sampling)
    build = lambda: image_score_model(unet_eps(shape, S.preset, seed=seed), sde)  # noqa: E731
    return train_cached(cache, name, build, dict(preset=S.preset, image_shape=list(shape), seed=seed), sde, images,
                        steps, seed=seed, device=device, weights=S.weights, **dict(recipe, batch_size=batch_size))[0]


def _per_image(v: Tensor, m: Tensor) -> Tensor:
    """The mean of each image's two evaluations (the rows are the images, then their flips)."""
    return v[m].view(2, -1).mean(0)


def _finite(v: float) -> Optional[float]:
    return v if np.isfinite(v) else None


def run(settings, *, seed: int, device: str, cache, model: Optional[str] = None, train_images=None,
        heldout_images=None, profile: str = "this profile", model_factory: Optional[str] = None) -> VolumeGrowthResult:
    """Volume growth L of trained, held-out, memorized and other images, with the controls and the ablation.

    Args:
        settings: the chapter's settings (``mempkg.book.profiles.VolumeGrowth``).
        seed: training, sampling, axes and loss-noise seed.
        device: torch device of the models and the ODE.
        cache: the chapter's cache (``cache.get(name, params, compute, inputs=...)``).
        model: a reader's diffusers DDPMPipeline (hub id or folder); None trains the chapter's own.
        train_images: with ``model``, a folder of its training images (the trained group, and extraction).
        heldout_images: with ``model``, a folder of images it never saw (the held-out group).
        profile: the profile's name, as the reasons in the summary state it.
        model_factory: instead of ``model``, ``"package.module:function"`` returning a score model with a
            ``data_shape`` (:mod:`mempkg.models.factory`); one on EDM's clock is read through :class:`VPView`,
            whose ODE ends at the VP time of its ``sigma_max``.
    Returns:
        a :class:`VolumeGrowthResult`.
    """
    S, sde = settings, VPSDE()
    key = dict(asdict(S), seed=seed)
    reader = reader_source(model, model_factory, "Chapter 02")

    # 1. the model overfit to the 2^7 subset, or the reader's, and its samples
    if reader is None:
        sub = overfit_subset(S.data, S.n_subset, download=S.download, md5=S.data_md5)
        net = _train(cache, S, sde, "overfit", sub.trained.x, S.train_steps, seed, device, S.batch_size)
        about = describe_model(net, f"trained here: the `{S.preset}` UNet on {sub.n} {S.data} images")
        train_all = sub.trained.x
    else:
        given = reader_pixel_inputs(model, train_images, heldout_images, S.n_subset, device, "Chapter 02",
                                    model_factory=model_factory)
        if given.heldout is None:
            raise ValueError("Chapter 02 with a reader's model needs heldout_images too: a folder of images the "
                             "model never saw (the held-out group).")
        net, sub = given.model, given.subset
        about = describe_model(net, given.source)
        train_all = given.train.x
        if isinstance(net.sde, EDMSchedule):   # time = sigma: read on the VP clock, up to the time of its sigma_max
            net = VPView(net, VPSDE(T=VPView(net).t_max))
    shape = sub.trained.image_shape
    t_end = min(S.t_end, float(net.sde.T))     # S.t_end, or where a VPView's noise range ends
    gen = cache.get("samples_overfit", key, lambda: sample(
        net, S.n_samples, shape, n_steps=S.sample_steps, seed=seed, device=device), inputs={"model": net})
    is_copy = copies(gen, train_all)[0]
    copy_rate = float(is_copy.float().mean())

    # 2. L of trained against held-out images: both measures from one pass (paper Fig. 2, left)
    both, member = sub.combined()
    vg = dict(n_axes=S.n_axes, radius=S.radius, n_steps=S.n_steps, t_start=S.t_start, t_end=t_end,
              method=S.method, seed=seed)
    L_both = cache.get("L_overfit_measures", key, lambda: volume_growth(
        net, both.x.to(device), measure=("axes", "volume"), **vg), inputs={"model": net, "x": both.x})
    L, L_vol = L_both["axes"][:, -1], L_both["volume"][:, -1]
    L_tr, L_ho = _per_image(L, member), _per_image(L, ~member)
    t_main, p_main = welch_test(L_tr, L_ho)
    auc_main = auroc(L_tr, L_ho)
    V_tr, V_ho = _per_image(L_vol, member), _per_image(L_vol, ~member)
    t_vol, p_vol = welch_test(V_tr, V_ho)
    gap = L - L_vol

    # 3. the controls: a model trained on the held-out images, and the denoising loss
    swap_reason = None if reader is None else \
        "skipped: the role swap retrains the chapter's own network, not the reader's"
    L_swap = auc_swap = None
    if swap_reason is None:
        swap = _train(cache, S, sde, "swap", sub.heldout.x, S.train_steps, seed, device, S.batch_size)
        L_swap = cache.get("L_swap", key, lambda: volume_growth(swap, both.x.to(device), **vg),
                           inputs={"model": swap, "x": both.x})[:, -1]
        auc_swap = auroc(_per_image(L_swap, member), _per_image(L_swap, ~member))
    loss = denoising_loss(net, both.x.to(device), S.loss_t, n_draws=N_LOSS_DRAWS, seed=seed)
    auc_loss = auroc(-_per_image(loss, member), -_per_image(loss, ~member))      # lower loss means trained

    # 4. memorized against other training images of a model with planted duplicates (paper Fig. 2, right)
    if reader is None:
        pool = load_images(S.data, "train", download=S.download, md5=S.data_md5).subset(range(S.n_memorized_train))
        planted = plant_duplicates(pool, S.n_planted, S.n_copies, seed=S.planted_seed)
        model_p = _train(cache, S, sde, "planted", planted.train.x, S.planted_steps, seed, device,
                         S.batch_size_planted)
        candidates = planted.unique.x
        gen_p = cache.get("samples_planted", key, lambda: sample(
            model_p, S.n_samples, shape, n_steps=S.sample_steps, seed=seed + 1, device=device),
            inputs={"model": model_p})
    else:                              # the reader's model: its samples against its whole training folder
        model_p, candidates, gen_p = net, given.train.x, gen
    found, _, flags = extract_memorized(gen_p, candidates)
    n_found = len(found)
    n_planted_found = int(np.isin(found.numpy(), planted.planted.numpy()).sum()) if reader is None else None
    g = torch.Generator().manual_seed(seed)
    is_found = torch.zeros(len(candidates), dtype=torch.bool)
    is_found[found] = True
    others = (~is_found).nonzero().flatten()
    others = others[torch.randperm(len(others), generator=g)[:max(n_found, 1)]]
    group = torch.cat([found, others])
    L_mem = cache.get("L_memorized", key, lambda: volume_growth(
        model_p, candidates[group].to(device), **vg), inputs={"model": model_p, "x": candidates[group]})[:, -1]
    L_m, L_o = L_mem[:n_found], L_mem[n_found:]
    p_mem = welch_test(L_m, L_o)[1] if n_found >= 2 else None
    auc_mem = auroc(L_m, L_o) if n_found >= 2 else None
    mem_reason = None if n_found >= 2 else (f"only {n_found} training image(s) extracted from {len(gen_p)} samples "
                                            f"under profile {profile}: too few to compare groups")

    # 5. the ablation over axes N, steps K and radius r (paper Fig. 3)
    idx = torch.cat([torch.arange(S.n_ablation), len(sub.trained) + torch.arange(S.n_ablation)])
    data = {TRAINED: (net, both.x[idx].to(device), member[idx]),
            MEMORIZED: (model_p, candidates[group].to(device), torch.arange(len(group)) < n_found)}

    def separation(name, **kw):
        model_, x_, m_ = data[name]
        Lk = cache.get("ablation", dict(key, group=name, **kw), lambda: volume_growth(
            model_, x_, t_start=S.t_start, t_end=t_end, method=S.method, seed=seed, **kw),
            inputs={"model": model_, "x": x_})[:, -1]
        return (auroc(Lk[m_], Lk[~m_]), welch_test(Lk[m_], Lk[~m_])[1]) if 1 < m_.sum() < len(m_) - 1 else (NAN, NAN)

    Ks, Ns, Rs = S.ablation_steps, S.ablation_axes, S.ablation_radii
    grids = {
        (TRAINED, "axes N"): (Ns, {(n, k): separation(TRAINED, n_axes=n, n_steps=k, radius=S.radius)
                                   for n in Ns for k in Ks}),
        (TRAINED, "radius r (N = 1)"): (Rs, {(r, k): separation(TRAINED, n_axes=1, n_steps=k, radius=r)
                                             for r in Rs for k in Ks}),
        (MEMORIZED, "axes N"): (Ns, {(n, k): separation(MEMORIZED, n_axes=n, n_steps=k, radius=S.radius)
                                     for n in Ns for k in Ks}),
    }
    auc_11, p_11 = grids[(TRAINED, "axes N")][1][(1, 1)]
    auc_11_mem, p_11_mem = grids[(MEMORIZED, "axes N")][1][(1, 1)]

    # 6. the tables the page shows, and the summary
    n_evals_L, n_evals_loss = 2 * S.n_steps * (S.n_axes + 1), 2 * N_LOSS_DRAWS
    own = reader is None
    inputs = pd.DataFrame({"value": {
        "model": about["source"], "class": about["class"], "parameters": about["n_parameters"],
        "weights digest": about["weights_digest"],
        "training images": f"the first {sub.n} {S.data} training images and their flips" if own else
                           f"{len(given.train)} in {train_images}; the first {sub.n} are the trained group",
        "held-out images": f"the first {sub.n} {S.data} test images and their flips" if own else
                           f"{len(given.heldout)} in {heldout_images}; the first {sub.n} are held out",
        "probability-flow ODE, VP time": f"{S.t_start:g} to {t_end:.4g}",
        "samples drawn": len(gen), "share of samples that copy a training image": copy_rate}})
    groups = pd.DataFrame([
        {"measure": "axes (the paper's L)", "mean, trained": float(L_tr.mean()), "mean, held-out": float(L_ho.mean()),
         "Welch t": t_main, "p": p_main, "AUROC": auc_main},
        {"measure": "volume (log-volume)", "mean, trained": float(V_tr.mean()), "mean, held-out": float(V_ho.mean()),
         "Welch t": t_vol, "p": p_vol, "AUROC": auroc(V_tr, V_ho)},
    ]).set_index("measure")
    hadamard = pd.DataFrame({"axes minus volume, mean": [float(gap[member].mean()), float(gap[~member].mean()),
                                                         float(gap.mean())],
                             "axes minus volume, min": [float(gap[member].min()), float(gap[~member].min()),
                                                        float(gap.min())]},
                            index=pd.Index(["trained", "held-out", "all"], name="evaluations"))
    controls = pd.DataFrame([
        {"score": "volume growth L (larger = trained)", "model": "trained on the 2^7 set", "AUROC": auc_main,
         "network evaluations per image": n_evals_L},
        {"score": "volume growth L (larger = trained)", "model": "swap: trained on the held-out set",
         "AUROC": auc_swap, "network evaluations per image": n_evals_L, "note": swap_reason or ""},
        {"score": "denoising loss (smaller = trained)", "model": "trained on the 2^7 set", "AUROC": auc_loss,
         "network evaluations per image": n_evals_loss},
    ]).fillna({"note": ""})
    memorized = pd.DataFrame({"value": {
        "samples drawn": len(gen_p), "samples that copy a training image": int(flags.sum()),
        "distinct training images copied": n_found,
        "planted duplicates among them": n_planted_found if reader is None else "-",
        "planted duplicates": S.n_planted if reader is None else "-",
        "mean L, memorized": float(L_m.mean()) if n_found else "-",
        "mean L, other training images": float(L_o.mean()),
        "Welch p": "-" if p_mem is None else p_mem, "AUROC": "-" if auc_mem is None else auc_mem,
        "why not compared": mem_reason or ""}})
    ablation = pd.DataFrame([
        {"group": name, "rows": rname, "row value": v, "K": k, "AUROC": a, "p": p}
        for (name, rname), (_, grid) in grids.items() for (v, k), (a, p) in grid.items()])
    summary = {
        "L_trained_mean": float(L_tr.mean()),
        "L_heldout_mean": float(L_ho.mean()),
        "n_images_per_group": len(L_tr),
        "p_trained_vs_heldout": p_main,
        "auroc_trained_vs_heldout": auc_main,
        "auroc_two_sided_trained_vs_heldout": two_sided_auroc(L_tr, L_ho),
        "auroc_swap": auc_swap,
        "auroc_loss_baseline": auc_loss,
        "copy_rate_overfit": copy_rate,
        "n_memorized_found": n_found,
        "n_planted_found": n_planted_found,
        "n_planted": S.n_planted if reader is None else None,
        "p_memorized_vs_other": p_mem,
        "auroc_memorized_vs_other": auc_mem,
        "p_one_axis_one_step": _finite(p_11),
        "auroc_one_axis_one_step": _finite(auc_11),
        "p_one_axis_one_step_memorized": _finite(p_11_mem),
        "auroc_one_axis_one_step_memorized": _finite(auc_11_mem),
        "n_axes": S.n_axes,
        "n_steps": S.n_steps,
        "model": about,
        "data_digest": content_digest(both.x),
    }
    summary.update({f"{k}_reason": swap_reason for k in ("auroc_swap",) if swap_reason})
    summary.update({f"{k}_reason": "the reader's model has no planted duplicates"
                    for k in ("n_planted_found", "n_planted") if reader is not None})
    summary.update({f"{k}_reason": mem_reason for k in ("p_memorized_vs_other", "auroc_memorized_vs_other")
                    if mem_reason})
    summary.update({f"{k}_reason": "fewer than two images in a group of the ablation"
                    for k in ("p_one_axis_one_step", "auroc_one_axis_one_step", "p_one_axis_one_step_memorized",
                              "auroc_one_axis_one_step_memorized") if summary[k] is None})
    return VolumeGrowthResult(
        model=about, reader=reader is not None, train_images=sub.trained.x, samples=gen, L=L, L_volume=L_vol,
        member=member, L_trained=L_tr, L_heldout=L_ho, L_swap=L_swap, loss=loss, extracted=candidates[found],
        L_memorized=L_m, L_other=L_o, grids=grids, ablation_steps=tuple(Ks), inputs=inputs, groups=groups,
        hadamard=hadamard, controls=controls, memorized=memorized, ablation=ablation, summary=summary)
