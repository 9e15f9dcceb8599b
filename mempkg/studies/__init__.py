"""What one chapter's experiment needs and nothing else does (layer: studies).

* :mod:`~mempkg.studies.laion_verbatims` -- chapter 04: the five memorization scores of Ross et al.'s
  Figure 4 on memorized and other images, their AUROCs and the controls.
* :mod:`~mempkg.studies.lenses` -- chapter 05: duplicated training sets, per-image scores of the three
  papers' measures on one model, memorized-by-generation labels, detection power and costs.

Modules here import the layers below (core, estimators, models, data), never the book or the CLI.
"""
