"""mempkg: the support package of the memorization book.

Modules, one per idea of the papers:

* :mod:`mempkg.sde` -- noise schedules (VP-SDE) and the probability-flow velocity.
* :mod:`mempkg.models` -- the score-model protocol, adapters (eps-networks, diffusers UNets),
  exact reference scores, small networks.
* :mod:`mempkg.train` -- denoising score matching.
* :mod:`mempkg.sampling` -- reverse-SDE and probability-flow samplers.
* :mod:`mempkg.lid` -- FLIPD local intrinsic dimension (Kamkari et al.; Ross, Kamkari et al.).
* :mod:`mempkg.volume` -- volume growth along the probability-flow ODE (Hasegawa & Yasuda).
* :mod:`mempkg.regimes` -- posterior weights, the empirical denoiser, max weight and shell coverage, the
  danger zone, per-noise memorization (Dodson et al.).
* :mod:`mempkg.edm` -- EDM preconditioning, loss with gap bands, Heun sampler (Karras et al.).
* :mod:`mempkg.quality` -- sample quality: Frechet distance, a digits feature classifier, Inception FID.
* :mod:`mempkg.stable_diffusion` -- Stable Diffusion as a latent score model (VAE, CLIP text encoder, schedule).
* :mod:`mempkg.guidance` -- classifier-free-guidance norms of images and captions (Ross et al.; Wen et al.).
* :mod:`mempkg.complexity` -- image complexity (PNG size).
* :mod:`mempkg.lenses` -- the three papers' measures on one model: duplicated training sets, per-image scores,
  memorized-by-generation labels, AUROCs, rank correlations and costs.
* :mod:`mempkg.laion` -- LAION verbatims (Webster 2023), LAION-Aesthetics, COCO, Tuxemon; cached image fetching.
* :mod:`mempkg.memorization` -- nearest-neighbour copy tests, AUROC and t-tests, the denoising-loss baseline.
* :mod:`mempkg.data` -- data sets by name: the von Mises circle toy, digits, CIFAR-10.
* :mod:`mempkg.profiles`, :mod:`mempkg.cache`, :mod:`mempkg.paths` -- run profiles, the result cache, paths.
* :mod:`mempkg.plots` -- figures.
* :mod:`mempkg.scorecard` -- the reproduction scorecard: each paper claim, the paper's number, ours, held or not.
* :mod:`mempkg.perf` -- cost of every estimator as a multiple of a forward pass, speed-ups, scaling.
* :mod:`mempkg.cli` -- the command line, ``python -m mempkg score``: one score per image of a folder, as a CSV.
"""

import warnings as _warnings

__version__ = "0.1.0"

# diffusers imports tqdm.auto, which warns inside executed notebooks that ipywidgets is missing;
# the book deliberately has no widgets (their outputs would load require.js from a CDN).
_warnings.filterwarnings("ignore", message="IProgress not found")
