"""The book's plumbing (layer: book): what the chapters and the build need around the experiments.

* :mod:`~mempkg.book.profiles` -- run profiles (tiny, quick, full) and each chapter's settings.
* :mod:`~mempkg.book.cache` -- the result cache: expensive work keyed by what produced it, written atomically.
* :mod:`~mempkg.book.paths` -- where results live.
* :mod:`~mempkg.book.plots` -- figures.
* :mod:`~mempkg.book.scorecard` -- the reproduction scorecard: each paper claim, its rule, ours, held or not.
"""
