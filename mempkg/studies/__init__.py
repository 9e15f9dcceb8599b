"""What one chapter's experiment needs and nothing else does (layer: studies).

* :mod:`~mempkg.studies.captioned` -- chapter 04: captioned digits with planted verbatims, a tiny
  Stable-Diffusion-shaped model, the evaluation sets and the memorization scores.
* :mod:`~mempkg.studies.lenses` -- chapter 05: duplicated training sets, per-image scores of the three
  papers' measures on one model, memorized-by-generation labels, detection power and costs.

Modules here import the layers below (core, estimators, models, data), never the book or the CLI.
"""
