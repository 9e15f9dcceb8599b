"""The estimators: per-image (or per-noise-level) numbers from a score model and images (layer: estimators).

Each takes a model that follows :mod:`mempkg.core.protocol`, a batch and a few named settings,
returns a tensor or a small record of numbers, and never plots or writes files. Each depends on
:mod:`mempkg.core` only (:mod:`~.regimes` also reads the copy test of :mod:`~.memorization`).

* :mod:`~mempkg.estimators.lid` -- FLIPD local intrinsic dimension (Kamkari et al.; Ross, Kamkari et al.).
* :mod:`~mempkg.estimators.volume` -- volume growth along the probability-flow ODE (Hasegawa & Yasuda).
* :mod:`~mempkg.estimators.regimes` -- posterior weights, the empirical denoiser, max weight W and shell
  coverage C, the danger zone, per-noise memorization (Dodson et al.).
* :mod:`~mempkg.estimators.guidance` -- classifier-free-guidance norms of images and captions (Ross et al.;
  Wen et al.).
* :mod:`~mempkg.estimators.complexity` -- image complexity (PNG size).
* :mod:`~mempkg.estimators.memorization` -- nearest-neighbour copy tests, AUROC and the statistics, the
  denoising-loss baseline.
* :mod:`~mempkg.estimators.quality` -- sample quality: Frechet distance, a digits feature classifier,
  Inception FID.
"""
