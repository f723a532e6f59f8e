"""Retrieval from a key-value memory, and attention over the retrieved entries only.

A memory holds ``M`` entries, each a key ``keys[j]`` ``(d,)`` and a value ``values[j]``
``(dv,)``. A query ``q`` ``(d,)`` retrieves the ``k`` entries whose keys score highest,

.. math::

    s_j = q \\cdot k_j \\quad\\text{(``"dot"``)} \\qquad\\text{or}\\qquad
    s_j = \\frac{q \\cdot k_j}{\\lVert q \\rVert\\, \\lVert k_j \\rVert}
    \\quad\\text{(``"cosine"``)},

and then attends to those ``k`` entries alone:

.. math::

    \\operatorname{out}(q) = \\sum_{j \\in \\operatorname{top}_k(q)} \\alpha_j v_j, \\qquad
    \\alpha_j = \\frac{\\exp(q \\cdot k_j \\cdot c)}
                     {\\sum_{l \\in \\operatorname{top}_k(q)} \\exp(q \\cdot k_l \\cdot c)},
    \\quad c = 1/\\sqrt{d}.

This is exactly full attention over the whole memory with the boolean mask
:func:`top_k_mask` (True = may attend: True on the ``k`` retrieved entries of each query), which
:func:`~selfattn_course.attention.scaled_dot_product_attention` computes in O(M) per query; the
gathered version here costs O(k) per query once the neighbours are known (retrieval-augmented
models find them with an approximate nearest-neighbour index instead of the exact scan below).

Shapes: ``queries`` ``(..., Lq, d)`` (typically ``(B, Lq, d)``), ``keys`` ``(M, d)``,
``values`` ``(M, dv)``, shared by every query; ``indices`` and ``scores`` ``(..., Lq, k)``, best
first; the output ``(..., Lq, dv)``. Torch tensors only.
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention

METRICS = ("dot", "cosine")


def _check_memory(queries: torch.Tensor, keys: torch.Tensor, k: int) -> None:
    if queries.dim() < 2:
        raise ValueError(f"queries must have shape (..., Lq, d), got {tuple(queries.shape)}")
    if keys.dim() != 2:
        raise ValueError(f"keys must have shape (M, d), got {tuple(keys.shape)}")
    if queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same last dim d: queries {tuple(queries.shape)}, "
            f"keys {tuple(keys.shape)}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= keys.shape[0]:
        raise ValueError(f"k must be an int from 1 to M = {keys.shape[0]}, got {k!r}")


def similarity(queries: torch.Tensor, keys: torch.Tensor, *, metric: str = "dot") -> torch.Tensor:
    """Scores of every query against every key: ``(..., Lq, d)``, ``(M, d)`` -> ``(..., Lq, M)``.

    ``metric="dot"``: ``q · k_j``; ``metric="cosine"``: ``q · k_j / (|q| |k_j|)`` (a zero vector
    scores 0 against everything).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "cosine":
        queries = torch.nn.functional.normalize(queries, dim=-1)
        keys = torch.nn.functional.normalize(keys, dim=-1)
    return queries @ keys.T


def nearest_neighbours(
    queries: torch.Tensor, keys: torch.Tensor, k: int, *, metric: str = "dot"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` keys that score highest for each query, by an exact scan of the memory.

    ``queries`` ``(..., Lq, d)``, ``keys`` ``(M, d)`` -> ``(indices, scores)``, both
    ``(..., Lq, k)``, sorted best first: ``indices`` (int64) into the memory, ``scores`` the
    :func:`similarity` of each. ``ValueError`` unless ``1 <= k <= M``.
    """
    _check_memory(queries, keys, k)
    scores, indices = similarity(queries, keys, metric=metric).topk(k, dim=-1)
    return indices, scores


def top_k_mask(indices: torch.Tensor, num_entries: int) -> torch.Tensor:
    """Boolean mask ``(..., Lq, M)`` from ``indices`` ``(..., Lq, k)``: True (= may attend) on the
    retrieved entries of each query, False elsewhere."""
    mask = torch.zeros((*indices.shape[:-1], num_entries), dtype=torch.bool, device=indices.device)
    return mask.scatter_(-1, indices, True)


def attend_to_entries(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    indices: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """Attention of each query over its own ``k`` entries of the memory, gathered.

    ``queries`` ``(..., Lq, d)``, ``keys`` ``(M, d)``, ``values`` ``(M, dv)``, ``indices``
    ``(..., Lq, k)`` -> ``(..., Lq, dv)``: ``sum_j softmax_j(q · keys[i_j] · scale) values[i_j]``
    over the ``k`` indices ``i_j`` of that query; ``scale`` defaults to ``1 / sqrt(d)``.
    Equal to full attention over the memory with ``top_k_mask(indices, M)`` when the indices of
    a query are distinct.
    """
    if keys.shape[0] != values.shape[0]:
        raise ValueError(
            f"keys (M, d) and values (M, dv) must have the same M: keys {tuple(keys.shape)}, "
            f"values {tuple(values.shape)}"
        )
    chosen_keys = keys[indices]  # (..., Lq, k, d)
    chosen_values = values[indices]  # (..., Lq, k, dv)
    # each query alone, (..., Lq, 1, d), over its own k entries
    out = scaled_dot_product_attention(
        queries.unsqueeze(-2), chosen_keys, chosen_values, scale=scale
    )
    return out.squeeze(-2)


def retrieval_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    k: int,
    *,
    metric: str = "dot",
    scale: float | None = None,
    return_indices: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Retrieve the ``k`` nearest entries of each query, then attend to them only.

    ``queries`` ``(..., Lq, d)``, ``keys`` ``(M, d)``, ``values`` ``(M, dv)`` -> ``(..., Lq, dv)``
    (and the ``(..., Lq, k)`` indices if ``return_indices``). The entries are chosen by
    ``metric`` (:func:`nearest_neighbours`); the attention weights are always the scaled dot
    products (:func:`attend_to_entries`). Equal to
    ``scaled_dot_product_attention(queries, keys, values, top_k_mask(indices, M))``.
    """
    indices, _ = nearest_neighbours(queries, keys, k, metric=metric)
    out = attend_to_entries(queries, keys, values, indices, scale=scale)
    return (out, indices) if return_indices else out
