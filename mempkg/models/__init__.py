"""Models: networks, the adapters that make them score models, training and sampling (layer: models).

* :mod:`~mempkg.models.adapters` -- eps-prediction networks and diffusers DDPM pipelines as score models.
* :mod:`~mempkg.models.stable_diffusion` -- Stable Diffusion as a latent score model (VAE, CLIP text encoder,
  schedule), loaded from the hub or a folder.
* :mod:`~mempkg.models.tiny_sd` -- a tiny Stable Diffusion on 8 x 8 captioned digits: model, training, sampling.
* :mod:`~mempkg.models.pretrained` -- pretrained diffusers pipelines by hub id or folder: inspect, identify
  the weights, load as score models.
* :mod:`~mempkg.models.edm` -- EDM preconditioning, the loss with gap bands, the Heun sampler (Karras et al.).
* :mod:`~mempkg.models.views` -- an EDM model read on a VP-SDE's clock.
* :mod:`~mempkg.models.exact` -- exact scores of known densities (Gaussian, the empirical distribution).
* :mod:`~mempkg.models.networks` -- the book's small networks and UNet presets.
* :mod:`~mempkg.models.train` -- denoising score matching: the shared seeded, resumable training loop.
* :mod:`~mempkg.models.sampling` -- reverse-SDE and probability-flow samplers.

Modules here import :mod:`mempkg.core` and each other, never the estimators, data, studies or book.
"""
