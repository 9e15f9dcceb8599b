"""mempkg: the support package of the memorization book.

The public API is one import away::

    import mempkg
    model = mempkg.DDPMScoreModel(pipe.unet, pipe.scheduler)    # or EpsModel, StableDiffusion, your own
    mempkg.check_score_model(model)
    lid = mempkg.flipd(model, images, t0=0.05)
    logvol = mempkg.volume_growth(model, images)

The package is laid out in layers; a module imports only from its own layer or the ones below:

==============  ================================================================================
layer           what it holds
==============  ================================================================================
``cli``         the command line, ``python -m mempkg score``
``book``        the book's plumbing: run profiles, the result cache, paths, plots, the scorecard
``studies``     one module per chapter's experiment, ``run(settings, ...)`` -> a frozen result
``estimators``  FLIPD, volume growth, W/C and the danger zone, CFG norms, PNG size, copy tests
``models``      networks, adapters (eps-networks, DDPM pipelines, Stable Diffusion, EDM, the VP
                view), exact scores, training, samplers
``data``        the von Mises toy, digits, CIFAR-10, LAION/COCO/Tuxemon and image fetching
``core``        the score-model protocol and its check, the noise schedules, tensor and file helpers
==============  ================================================================================

``estimators``, ``models`` and ``data`` stand side by side: each imports ``core`` only.
"""

import warnings as _warnings

from .core import __version__
from .core.protocol import ScoreModel, check_score_model
from .core.schedules import VPSDE, DiscreteVPSchedule, EDMSchedule, get_sde
from .estimators.complexity import png_size
from .estimators.guidance import cfg_norm, cfg_norm_generation
from .estimators.lid import find_knee, flipd, flipd_curve
from .estimators.memorization import auroc, copies, extract_memorized, nearest_neighbours
from .estimators.regimes import danger_zone, noise_sweep, weight_and_coverage
from .estimators.volume import volume_growth
from .models.adapters import DDPMScoreModel, EpsModel
from .models.edm import EDMPrecond
from .models.edm_denoiser import EDMDenoiser
from .models.stable_diffusion import StableDiffusion, load_stable_diffusion
from .models.views import EDMView, VPView

__all__ = [
    "__version__",
    # the protocol and the schedules
    "ScoreModel", "check_score_model", "VPSDE", "EDMSchedule", "DiscreteVPSchedule", "get_sde",
    # estimators
    "flipd", "flipd_curve", "find_knee", "volume_growth", "cfg_norm", "cfg_norm_generation", "png_size",
    "weight_and_coverage", "danger_zone", "noise_sweep", "nearest_neighbours", "copies", "extract_memorized",
    "auroc",
    # adapters
    "EpsModel", "DDPMScoreModel", "StableDiffusion", "load_stable_diffusion", "EDMPrecond", "EDMDenoiser", "VPView",
    "EDMView",
]

# diffusers imports tqdm.auto, which warns inside executed notebooks that ipywidgets is missing;
# the book deliberately has no widgets (their outputs would load require.js from a CDN).
_warnings.filterwarnings("ignore", message="IProgress not found")
