"""Memorization tests by nearest neighbours (Carlini et al. 2023; Dodson et al.).

A generated sample g copies a training image when its nearest training neighbour is much
closer than the second nearest:  d_1NN(g) < ratio * d_2NN(g), ratio = 1/3.
"""

from __future__ import annotations

import torch
from torch import Tensor


def nearest_neighbours(queries: Tensor, reference: Tensor, k: int = 2, chunk: int = 4096):
    """Euclidean distances and indices of the k nearest reference rows for every query.

    ``queries`` ``[Q, ...]``, ``reference`` ``[N, ...]`` -> (dist ``[Q, k]``, idx ``[Q, k]``).
    One matrix product per chunk of queries: |q - r|^2 = |q|^2 - 2 q.r + |r|^2.
    """
    if k > reference.shape[0]:
        raise ValueError(f"k={k} neighbours asked from a reference set of {reference.shape[0]} rows.")
    q = queries.reshape(queries.shape[0], -1).double()
    r = reference.reshape(reference.shape[0], -1).double()
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features, reference rows {r.shape[1]}.")
    r2 = r.pow(2).sum(1)
    ds, ids = [], []
    for start in range(0, q.shape[0], chunk):
        qc = q[start:start + chunk]
        d2 = (qc.pow(2).sum(1, keepdim=True) - 2 * qc @ r.T + r2).clamp_min(0)
        d, i = torch.topk(d2, k, dim=1, largest=False)
        ds.append(d.sqrt())
        ids.append(i)
    return torch.cat(ds), torch.cat(ids)


def copies(samples: Tensor, train: Tensor, ratio: float = 1 / 3):
    """Which samples copy a training image: d1 < ratio * d2 -> (bool [Q], nearest index [Q], d1/d2 [Q])."""
    d, i = nearest_neighbours(samples, train, k=2)
    r = d[:, 0] / d[:, 1].clamp_min(1e-12)
    return r < ratio, i[:, 0], r
