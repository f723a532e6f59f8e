"""Chapter 10's graded tasks (selfattn_course/grading/tasks/ch10.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 10 can: each reference
against an independent computation (by hand, a loop over nodes), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch10


def _mask_by_loops(edges, n, directed, self_loops):
    """mask[i][j] True iff an edge j -> i (or i -> j if undirected), or i == j with self-loops."""
    pairs = {(int(j), int(i)) for j, i in edges.tolist()}
    return torch.tensor(
        [
            [
                (j, i) in pairs or (not directed and (i, j) in pairs) or (self_loops and i == j)
                for j in range(n)
            ]
            for i in range(n)
        ]
    )


def test_adjacency_mask_puts_an_edge_j_to_i_at_row_i_column_j():
    mask = ch10.adjacency_mask(torch.tensor([[0, 1]]), 2, directed=True, self_loops=False)
    assert mask.tolist() == [[False, False], [True, False]]


def test_adjacency_mask_equals_a_loop_over_pairs_for_every_option():
    edges = torch.randint(0, 7, (12, 2), generator=torch.Generator().manual_seed(0))
    for directed in (False, True):
        for self_loops in (False, True):
            expected = _mask_by_loops(edges, 7, directed, self_loops)
            got = ch10.adjacency_mask(edges, 7, directed=directed, self_loops=self_loops)
            assert torch.equal(got, expected), (directed, self_loops)


def test_adjacency_mask_of_no_edges_is_the_identity_or_empty():
    no_edges = torch.zeros(0, 2, dtype=torch.long)
    assert torch.equal(ch10.adjacency_mask(no_edges, 3), torch.eye(3, dtype=torch.bool))
    assert not ch10.adjacency_mask(no_edges, 3, self_loops=False).any()


def _graph_attention_by_loops(x, edges, w_q, w_k, w_v):
    """Node i: softmax over itself and the sources of its incoming edges, one node at a time."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    out = torch.zeros(x.shape[0], w_v.shape[1], dtype=x.dtype)
    for i in range(x.shape[0]):
        neighbours = sorted({i} | {int(j) for j, target in edges.tolist() if target == i})
        scores = torch.stack([q[i] @ k[j] / math.sqrt(q.shape[1]) for j in neighbours])
        weights = torch.softmax(scores, dim=0)
        out[i] = sum(w * v[j] for w, j in zip(weights, neighbours, strict=True))
    return out


def test_graph_attention_equals_a_loop_over_nodes():
    inputs = ch10._layer(6, 4, 3, num_edges=9, seed=3, dtype=torch.float64)
    torch.testing.assert_close(ch10.graph_attention(**inputs), _graph_attention_by_loops(**inputs))


def test_graph_attention_by_hand_node_without_incoming_edge_keeps_its_own_value():
    w_v = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = ch10.graph_attention(
        torch.eye(2), torch.tensor([[0, 1]]), torch.eye(2), torch.eye(2), w_v
    )
    torch.testing.assert_close(out[0], w_v[0])  # node 0 attends to itself only
    # node 1 attends to 0 and 1 with scores 0 and 1/sqrt(2)
    weights = torch.softmax(torch.tensor([0.0, 1 / math.sqrt(2)]), dim=0)
    torch.testing.assert_close(out[1], weights @ w_v)


def test_relabel_edges_by_hand():
    # new node a = old node perm[a]: old 0 is new 2, old 1 is new 0, old 2 is new 1
    perm = torch.tensor([1, 2, 0])
    assert ch10.relabel_edges(torch.tensor([[0, 1], [2, 2]]), perm).tolist() == [[2, 0], [1, 1]]


def test_relabelled_graph_gives_relabelled_outputs():
    inputs = ch10._layer(6, 4, 3, num_edges=9, seed=4, dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 1, 2, 4])
    relabelled = dict(inputs, x=inputs["x"][perm], edges=ch10.relabel_edges(inputs["edges"], perm))
    torch.testing.assert_close(
        ch10.graph_attention(**relabelled), ch10.graph_attention(**inputs)[perm]
    )


def test_gat_favourite_key_is_the_largest_a2_term_for_every_query():
    a2_terms = [0.5 * x - 1.0 * y for x, y in ch10.GAT_WH]  # 0.5, -2, -2, 2
    best = a2_terms.index(max(a2_terms))
    assert ch10.GAT_FAVOURITE_KEYS.expected == (best,) * 4 == (3, 3, 3, 3)


def test_gat_answer_differs_from_the_dot_product_favourites():
    assert ch10._dot_product_favourites(ch10.GAT_WH) == (3, 1, 2, 3)
    assert ch10._dot_product_favourites(ch10.GAT_WH) != ch10.GAT_FAVOURITE_KEYS.expected
