"""Sample quality: the Frechet distance between two feature distributions (Heusel et al. 2017).

    FD(A, B) = |mu_A - mu_B|^2 + tr(S_A + S_B - 2 (S_A S_B)^{1/2}),

the 2-Wasserstein distance between the Gaussians fitted to the features of two image sets. The trace
term is computed as tr (S_A S_B)^{1/2} = sum_i sqrt(lambda_i(S_B^{1/2} S_A S_B^{1/2})), from two symmetric
eigendecompositions instead of the Schur-based ``sqrtm`` of the non-symmetric product: exact, and cheap enough
at 2048 dimensions to bootstrap FID (:func:`frechet_distance_bootstrap`).

FID is FD in the 2048-d pool features of an Inception-v3 trained on ImageNet; it needs the Inception
weights (a download), so the ``full`` profile extracts them with ``torchmetrics``' network
(:func:`inception_features`, :func:`inception_fid`) and bootstraps them like any other features. On the
8x8 digits Inception features mean little and cannot be downloaded here, so the CPU profiles use a **small
classifier trained on the digits in the chapter** (:class:`DigitsFeatureNet`, :func:`train_classifier`) and
report FD in its penultimate features: the same formula, a different feature space, so its values are not
comparable with published FIDs -- only between the models of one run.

FD is biased upwards for small sample sizes (the covariance estimates are noisy); compare models
on the same numbers of images.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..core.progress import bar as progress_bar


def _as_features(features) -> np.ndarray:
    """features [n, k] as a float64 array, or a plain error when n < 2 or a value is NaN or inf."""
    f = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be [n, k] with n >= 2, got shape {f.shape}.")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or inf; check the images (e.g. a diverged sampler).")
    return f


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [k] and covariance [k, k] (unbiased, float64) of features [n, k]."""
    f = _as_features(features)
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _resample_stats(f: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gaussian_stats(f[idx]) from the distinct rows drawn, weighted by their counts c_i: a bootstrap resample
    holds about 63% of the rows, so the covariance's product has about a third fewer rows than on f[idx]."""
    c = np.bincount(idx, minlength=len(f))
    x, w = f[c > 0], c[c > 0].astype(np.float64)
    mu = w @ x / len(idx)
    xc = (x - mu) * np.sqrt(w)[:, None]
    return mu, xc.T @ xc / (len(idx) - 1)


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance; eigenvalues below 0 (round-off, above all at rank < k) go to 0."""
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _fd_from_stats(mu_a, S_a, mu_b, S_b, root_b) -> float:
    """FD from the two Gaussians, with root_b = S_B^{1/2}: tr (S_A S_B)^{1/2} = sum_i sqrt(lambda_i(R S_A R)).

    S_A S_B = (S_A R) R has the eigenvalues of R (S_A R) (XY and YX share them, singular or not), and R S_A R is
    symmetric PSD: ``eigvalsh``, no ``eps I``, no complex round-off.
    """
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"Feature dimensions differ: {mu_a.shape[0]} vs {mu_b.shape[0]}.")
    M = root_b @ S_a @ root_b
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((M + M.T) / 2), 0.0, None)).sum()
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(S_a) + np.trace(S_b) - 2 * tr_sqrt, 0.0))


def frechet_distance(features_a, features_b) -> float:
    """FD between the Gaussians fitted to features_a [n, k] and features_b [m, k] (see the module docstring).

    Exact also when a covariance is singular (fewer images than feature dimensions): the eigenvalues of
    S_B^{1/2} S_A S_B^{1/2} are those of S_A S_B, and the tiny negative ones round-off leaves are clipped to 0.
    """
    mu_a, S_a = gaussian_stats(features_a)
    mu_b, S_b = gaussian_stats(features_b)
    return _fd_from_stats(mu_a, S_a, mu_b, S_b, _sqrt_psd(S_b))


def frechet_distance_bootstrap(features: Sequence, reference, n_boot: int = 100, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of FD(features[k], reference) for several feature sets -> [n_boot, K].

    Each replicate resamples every set and the reference with replacement (seeded); the *same*
    reference resample serves every k in a replicate, so ``std(out[:, i] - out[:, j])`` is the standard
    error of the *difference* between two models' FDs (much smaller than either FD's own error when
    the reference set is small, since its noise is shared), and ``out[:, k].std()`` that of one FD.
    The reference's square root is computed once per replicate and serves all K sets.
    """
    sets, ref = [_as_features(f) for f in features], _as_features(reference)
    g = np.random.default_rng(int(seed))
    out = np.empty((int(n_boot), len(sets)))
    for r in range(int(n_boot)):
        mu_r, S_r = _resample_stats(ref, g.integers(0, len(ref), len(ref)))
        root_r = _sqrt_psd(S_r)
        for k, f in enumerate(sets):
            out[r, k] = _fd_from_stats(*_resample_stats(f, g.integers(0, len(f), len(f))), mu_r, S_r, root_r)
    return out


class DigitsFeatureNet(nn.Module):
    """A small CNN classifier for [B, 1, 8, 8] digits in [-1, 1]; ``features`` is its penultimate layer.

    conv 3x3 (16) -> SiLU -> conv 3x3 stride 2 (32) -> SiLU -> flatten -> linear (n_features) -> SiLU
    -> linear (n_classes). About 20 k parameters; ~97% held-out accuracy after a few hundred steps.
    """

    def __init__(self, n_features: int = 32, n_classes: int = 10, image_shape=(1, 8, 8), seed: Optional[int] = None):
        super().__init__()
        with torch.random.fork_rng(devices=[], enabled=seed is not None):   # seeded init, global RNG untouched
            if seed is not None:
                torch.manual_seed(int(seed))
            self._build(n_features, n_classes, image_shape)

    def _build(self, n_features, n_classes, image_shape):
        c, h, w = image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Linear(32 * ((h + 1) // 2) * ((w + 1) // 2), n_features), nn.SiLU())
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, n_features]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def fit_classifier(net: nn.Module, images: Tensor, labels: Tensor, n_steps: int = 600, lr: float = 3e-3,
                   batch_size: int = 128, seed: int = 0, progress: bool = True) -> dict:
    """Train a classifier in place with cross-entropy and Adam (seeded; CPU) -> ``{"losses": [...]}``.

    Random shifts of -1, 0 or +1 pixel per axis augment each batch, so the features do not reward
    exact pixel copies.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    labels = labels.long().cpu()
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all, losses = images.float().cpu(), []
    net.train()
    for _ in progress_bar(range(int(n_steps)), desc="classifier", disable=not progress):
        idx = torch.randint(0, len(x_all), (min(batch_size, len(x_all)),), generator=g)
        dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
        x = torch.roll(x_all[idx], shifts=(dx, dy), dims=(-2, -1))
        loss = nn.functional.cross_entropy(net(x), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    return {"losses": losses}


def train_classifier(images: Tensor, labels: Tensor, n_steps: int = 600, seed: int = 0, n_features: int = 32,
                     **kwargs) -> DigitsFeatureNet:
    """A :class:`DigitsFeatureNet` (initialised from ``seed``) trained by :func:`fit_classifier` -> the net."""
    net = DigitsFeatureNet(n_features, int(labels.max()) + 1, tuple(images.shape[1:]), seed=seed)
    fit_classifier(net, images, labels, n_steps, seed=seed, **kwargs)
    return net


@torch.no_grad()
def classifier_accuracy(net: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of ``images`` whose argmax class equals ``labels``."""
    return float((net(images.float().cpu()).argmax(1) == labels.cpu()).float().mean())


@torch.no_grad()
def classifier_features(net: DigitsFeatureNet, images: Tensor, batch_size: int = 1024) -> Tensor:
    """Penultimate features [N, n_features] of ``images`` [N, C, H, W] (CPU, float32)."""
    return torch.cat([net.features(images[i:i + batch_size].float().cpu())
                      for i in range(0, len(images), batch_size)])


INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"   # torch-fidelity's FID Inception v3


def _inception_metric():
    """torchmetrics' ``FrechetInceptionDistance(feature=2048)``, or a plain error: what to install, or where to
    copy the weights on an offline machine."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance  # optional (extra 'full'): Inception FID
    except ImportError as e:
        raise ImportError("Inception FID needs torchmetrics with its image extra: pip install 'mempkg[full]' (in "
                          "this repository: make venv PROFILE=full), or pip install 'torchmetrics[image]'; or set "
                          "fd_features='classifier'.") from e
    try:
        return FrechetInceptionDistance(feature=2048)
    except Exception as e:  # noqa: BLE001 -- any failure to build it means FID cannot run here
        raise RuntimeError(f"torchmetrics could not load its Inception weights ({type(e).__name__}: {e}). On a "
                           f"machine without internet, copy {INCEPTION_WEIGHTS} (from a machine that has run FID "
                           "once) into $TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch/hub/checkpoints/), or set "
                           "fd_features='classifier'.") from e


def check_inception() -> None:
    """Raise a plain error now, before any training, when Inception FID cannot run: torchmetrics' image extra
    is missing, or its Inception weights are neither cached nor downloadable (an offline machine)."""
    _inception_metric()


@torch.no_grad()
def inception_features(images: Tensor, device: str = "cpu", batch_size: int = 256) -> Tensor:
    """Inception-v3 pool features [N, 2048] (float32, CPU) of images [N, 3, H, W] in [-1, 1]: FID's features.

    x -> (x + 1) / 2, clamped to [0, 1] -> ``(x * 255).byte()`` (truncation), as
    ``FrechetInceptionDistance(normalize=True).update`` does, then torchmetrics' ``NoTrainInceptionV3`` (which
    resizes to 299 x 299 itself). Needs ``pip install 'torchmetrics[image]'`` and the weights (see
    :func:`check_inception`).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W] RGB in [-1, 1], got {tuple(images.shape)}.")
    net = _inception_metric().inception.to(device)
    out = []
    for i in progress_bar(range(0, len(images), batch_size), desc="inception features"):
        x = ((images[i:i + batch_size].float() + 1) / 2).clamp(0, 1).to(device)
        out.append(net((x * 255).byte()).reshape(len(x), -1).float().cpu())
    return torch.cat(out)


def inception_fid(real: Tensor, fake: Tensor, device: str = "cpu", batch_size: int = 256) -> float:
    """FID: :func:`frechet_distance` of the :func:`inception_features` of real and fake images [N, 3, H, W]."""
    return frechet_distance(inception_features(real, device, batch_size), inception_features(fake, device, batch_size))
