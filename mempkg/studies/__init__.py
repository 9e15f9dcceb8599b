"""One module per chapter: its experiment as ``run(settings, ...) -> <Chapter>Result`` (layer: studies).

* :mod:`~mempkg.studies.von_mises` -- chapter 01: the isolated point of Ross, Kamkari et al.'s toy.
* :mod:`~mempkg.studies.volume_growth` -- chapter 02: Hasegawa & Yasuda's volume growth on the 2^7 overfit.
* :mod:`~mempkg.studies.three_regimes` -- chapter 03: Dodson et al.'s W, C, danger zone and gap training.
* :mod:`~mempkg.studies.laion_verbatims` -- chapter 04: the five memorization scores of Ross et al.'s
  Figure 4 on memorized and other images, their AUROCs and the controls.
* :mod:`~mempkg.studies.three_lenses` -- chapter 05: the three papers' measures and PNG size on one
  model with planted duplicates, their detection power, agreement and cost;
  :mod:`~mempkg.studies.lenses` holds its machinery (duplicated sets, copy tests, lens comparisons).
* :mod:`~mempkg.studies.performance` -- chapter 06: the estimators' cost against the authors' loops and
  the forward-pass limit.
* :mod:`~mempkg.studies.readers` -- a reader's own model and image folders, for chapters 02, 04 and 05.

Modules here import the layers below (core, estimators, models, data), never the book or the CLI.
"""
