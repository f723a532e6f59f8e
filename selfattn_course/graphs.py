"""Attention on graphs: the adjacency mask and attention over an edge list.

Self-attention is message passing on the complete graph: every token (node) receives a weighted
sum of every token's value. Restrict who may send to whom and it becomes graph attention:

- dense: :func:`adjacency_mask` gives the ``(n, n)`` boolean mask (True = may attend) that
  :func:`~selfattn_course.attention.scaled_dot_product_attention` takes, ``O(n²·d)`` work
  whatever the number of edges;
- sparse: :func:`edge_attention` computes the same output from the edge list, ``O(|E|·d)`` work:
  one score per edge, a softmax over each node's incoming edges, a scatter-add of the messages.

Edges are an ``(E, 2)`` integer array of ``(source, target)`` pairs: the edge ``j -> i`` lets
node ``i`` (the receiver, the query) attend to node ``j`` (the sender, the key and value). So
``mask[i, j]`` is True for the edge ``(j, i)``, the same orientation as every mask of the
course: rows are queries, columns keys.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from selfattn_course import _arrays as A
from selfattn_course._arrays import Array


def adjacency_mask(
    edges, num_nodes: int, *, directed: bool = False, self_loops: bool = True
) -> Array:
    """The ``(n, n)`` boolean attention mask of a graph: ``mask[i, j]`` True iff edge ``j -> i``.

    Args:
        edges: ``(E, 2)`` integers, ``(source, target)`` pairs, each in ``[0, num_nodes)``; a
            NumPy array gives a NumPy mask, a tensor a tensor on its device (a list: a tensor).
        num_nodes: ``n``.
        directed: if False, each edge also counts in the other direction (the mask is
            symmetric).
        self_loops: if True, every node may also attend to itself (``mask[i, i]`` True), as in
            GCN and GAT; a node without an incoming edge then still has one key.

    Returns:
        ``(n, n)`` bool, True where attention is allowed.
    """
    edges = _check_edges(edges, num_nodes)
    n = num_nodes
    if isinstance(edges, np.ndarray):
        mask = np.zeros((n, n), dtype=bool)
        mask[edges[:, 1], edges[:, 0]] = True
        if not directed:
            mask |= mask.T
        if self_loops:
            mask[np.arange(n), np.arange(n)] = True
        return mask
    mask = torch.zeros(n, n, dtype=torch.bool, device=edges.device)
    mask[edges[:, 1], edges[:, 0]] = True
    if not directed:
        mask |= mask.T.clone()
    if self_loops:
        mask.fill_diagonal_(True)
    return mask


def edge_attention(q: Array, k: Array, v: Array, edges, *, scale: float | None = None) -> Array:
    """Scaled dot-product attention restricted to the edges of a graph, from the edge list.

    For each edge ``e = (j -> i)``: score ``s_e = q_i · k_j · scale``; weights
    ``w_e = softmax`` over the edges into ``i``; output ``out_i = Σ_{e into i} w_e v_j``. A node
    with no incoming edge gets 0. Equal to ``scaled_dot_product_attention(q, k, v, mask)`` with
    ``mask = adjacency_mask(edges, n, directed=True, self_loops=False)``, at ``O(|E|·d)`` work
    and memory instead of ``O(n²·d)``. A repeated edge counts twice.

    Args:
        q: ``(..., n, d_k)`` queries, one per node.
        k: ``(..., n, d_k)`` keys, one per node.
        v: ``(..., n, d_v)`` values, one per node.
        edges: ``(E, 2)`` integers, ``(source, target)`` pairs in ``[0, n)``, shared by every
            leading index (batch, head).
        scale: multiplies the scores; default ``1/sqrt(d_k)``.

    Returns:
        ``(..., n, d_v)``, of ``q``'s kind (NumPy or torch), dtype and device.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        A.check_array(name, x, min_ndim=2, floating=True)
    A.check_same_kind(q=q, k=k, v=v)
    A.check_same_float_dtype(q=q, k=k, v=v)
    n = q.shape[-2]
    if k.shape[-2] != n or v.shape[-2] != n or k.shape[-1] != q.shape[-1]:
        raise ValueError(
            "q, k and v must have one row per node and q, k the same width: got "
            f"q {A.shape_str(q.shape)}, k {A.shape_str(k.shape)}, v {A.shape_str(v.shape)}"
        )
    lead = A.leading_shape("q", q.shape[:-2], "k", k.shape[:-2])
    lead = A.leading_shape("q and k", lead, "v", v.shape[:-2])
    edges = _check_edges(edges, n)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if A.is_tensor(q):
        edges = torch.as_tensor(edges, device=q.device)
        return _edge_attention_torch(q, k, v, edges, scale, lead)
    return _edge_attention_numpy(q, k, v, np.asarray(edges), scale, lead)


def random_edges(num_nodes: int, num_edges: int, *, seed: int, directed: bool = False):
    """``num_edges`` distinct random edges between distinct nodes, as a ``(E, 2)`` long tensor.

    ``directed=True``: ``E = num_edges`` ordered pairs ``(source, target)``. ``directed=False``:
    ``num_edges`` unordered pairs, each listed in both directions, so ``E = 2·num_edges`` (the
    form :func:`edge_attention` needs for an undirected graph). Sorted by target, then source.
    """
    n = A.check_int("num_nodes", num_nodes, minimum=1)
    count = A.check_int("num_edges", num_edges, minimum=0)
    possible = n * (n - 1) if directed else n * (n - 1) // 2
    if count > possible:
        raise ValueError(
            f"num_edges must be <= {possible} for {n} nodes "
            f"({'directed' if directed else 'undirected'} pairs), got {count}"
        )
    generator = torch.Generator().manual_seed(seed)
    sources, targets = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = sources != targets if directed else sources < targets
    pairs = torch.stack([sources[keep], targets[keep]], dim=1)  # every candidate pair, (P, 2)
    chosen = pairs[torch.randperm(len(pairs), generator=generator)[:count]]
    if not directed:
        chosen = torch.cat([chosen, chosen.flip(1)])
    order = torch.argsort(chosen[:, 1] * n + chosen[:, 0])
    return chosen[order]


# --- the two implementations -----------------------------------------------------------------


def _edge_attention_torch(q, k, v, edges, scale, lead):
    source, target = edges[:, 0], edges[:, 1]
    out_dtype = q.dtype
    if q.dtype in (torch.float16, torch.bfloat16):  # softmax statistics in float32
        q, k, v = q.float(), k.float(), v.float()
    q, k, v = (x.expand(*lead, *x.shape[-2:]) for x in (q, k, v))
    n = q.shape[-2]
    scores = (q[..., target, :] * k[..., source, :]).sum(dim=-1) * scale  # (..., E)
    index = target.expand_as(scores)
    row_max = scores.new_full((*lead, n), -math.inf).scatter_reduce(
        -1, index, scores, reduce="amax", include_self=True
    )
    weights = torch.exp(scores - row_max.gather(-1, index))  # (..., E), each <= 1
    totals = scores.new_zeros((*lead, n)).index_add_(-1, target, weights)  # (..., n)
    messages = weights[..., None] * v[..., source, :]  # (..., E, d_v)
    out = v.new_zeros((*lead, n, v.shape[-1])).index_add_(-2, target, messages)
    out = out / totals.clamp_min(torch.finfo(totals.dtype).tiny)[..., None]  # no edge: 0 / tiny
    return out.to(out_dtype)


def _edge_attention_numpy(q, k, v, edges, scale, lead):
    source, target = edges[:, 0], edges[:, 1]
    n, width = q.shape[-2], v.shape[-1]
    q, k, v = (
        np.broadcast_to(x, (*lead, *x.shape[-2:])).reshape(-1, n, x.shape[-1]) for x in (q, k, v)
    )
    scores = np.einsum("bed,bed->be", q[:, target], k[:, source]) * scale  # (B, E)
    row_max = np.full((len(q), n), -np.inf, dtype=scores.dtype)
    np.maximum.at(row_max, (slice(None), target), scores)
    weights = np.exp(scores - row_max[:, target])
    totals = np.zeros((len(q), n), dtype=scores.dtype)
    np.add.at(totals, (slice(None), target), weights)
    out = np.zeros((len(q), n, width), dtype=v.dtype)
    np.add.at(out, (slice(None), target), weights[..., None] * v[:, source])
    out = out / np.maximum(totals, np.finfo(totals.dtype).tiny)[..., None]
    return out.reshape(*lead, n, width).astype(v.dtype, copy=False)


def _check_edges(edges, num_nodes: int):
    """``edges`` as an ``(E, 2)`` integer array or tensor in ``[0, num_nodes)``."""
    num_nodes = A.check_int("num_nodes", num_nodes, minimum=1)
    if isinstance(edges, (list, tuple)):
        edges = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2)
    A.check_array("edges", edges)
    A.check_integer_dtype("edges", edges)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(
            f"edges must have shape (E, 2), (source, target) pairs, got {A.shape_str(edges.shape)}"
        )
    if len(edges) and (edges.min() < 0 or edges.max() >= num_nodes):
        raise ValueError(
            f"edges must name nodes in [0, {num_nodes}), got values from {int(edges.min())} "
            f"to {int(edges.max())}"
        )
    return edges.long() if A.is_tensor(edges) else edges.astype(np.int64, copy=False)
