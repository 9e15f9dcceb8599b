"""What one chapter's experiment needs and nothing else does (layer: studies).

* :mod:`~mempkg.studies.laion_verbatims` -- chapter 04: the five memorization scores of Ross et al.'s
  Figure 4 on memorized and other images, their AUROCs and the controls.
* :mod:`~mempkg.studies.three_lenses` -- chapter 05: the three papers' measures and PNG size on one
  model with planted duplicates, their detection power, agreement and cost;
  :mod:`~mempkg.studies.lenses` holds its machinery (duplicated sets, copy tests, lens comparisons).

Modules here import the layers below (core, estimators, models, data), never the book or the CLI.
"""
