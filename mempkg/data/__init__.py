"""Data sets by name (layer: data).

* :mod:`~mempkg.data.toy` -- the von Mises circle toy and its true density.
* :mod:`~mempkg.data.images` -- image sets: digits, CIFAR-10 (official files, md5-checked), overfit
  subsets and planted duplicates.
* :mod:`~mempkg.data.laion` -- LAION verbatims (Webster 2023), LAION-Aesthetics, COCO, Tuxemon, as records
  (caption, URL).
* :mod:`~mempkg.data.fetch` -- the cached, failure-tolerant image fetching and the image preprocessing.
* :mod:`~mempkg.data.captioned` -- captioned digits with planted verbatims, their vocabulary, and the
  evaluation sets of chapter 04 (digits, out-of-distribution photos, LAION/COCO/Tuxemon).

Modules here import :mod:`mempkg.core` and each other only.
"""
