"""Chapter 11's graded tasks (selfattn_course/grading/tasks/ch11.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 11 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch

from selfattn_course.costs import message_passing_flops as package_message_passing_flops
from selfattn_course.grading.spec.calls import column_projectors
from selfattn_course.grading.tasks import ch11

GRAPHS = {
    "path of 8": (ch11.path_graph(8), 8),
    "clique with a tail": (ch11.CLIQUE_WITH_TAIL, 7),
    "tree": (ch11.TREE, 9),
    "chorded path": (ch11.CHORDED_PATH, 10),
    "one edge": ([(0, 1)], 2),
    "path of 5": (ch11.path_graph(5), 5),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_hidden_graphs_have_distinct_eigenvalues_so_each_projector_is_unique(name):
    pairs, n = GRAPHS[name]
    adjacency = ch11._undirected(pairs, n)
    eigenvalues = torch.linalg.eigvalsh(ch11._normalized_laplacian(adjacency))
    assert eigenvalues.diff().min() > 1e-3


def test_path_of_three_eigenvector_by_hand():
    # P3: degrees (1, 2, 1); L = I - D^-1/2 A D^-1/2 has eigenvalues 0, 1, 2, and the
    # eigenvector of eigenvalue 1 is (1, 0, -1)/sqrt(2) (the two ends in opposite phase)
    adjacency = ch11._undirected(ch11.path_graph(3), 3)
    u = ch11.laplacian_pe(adjacency, 1)[:, 0]
    expected = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64) / math.sqrt(2)
    assert torch.allclose(u * torch.sign(u[0]), expected, atol=1e-12)


def test_laplacian_pe_columns_are_eigenvectors_with_increasing_eigenvalues():
    adjacency = ch11._undirected(ch11.CHORDED_PATH, 10)
    vectors = ch11.laplacian_pe(adjacency, 4)
    degree = adjacency.sum(-1)
    laplacian = torch.eye(10, dtype=torch.float64) - adjacency / torch.sqrt(
        degree[:, None] * degree[None, :]
    )
    rayleigh = torch.einsum("ik,ij,jk->k", vectors, laplacian, vectors)
    torch.testing.assert_close(laplacian @ vectors, vectors * rayleigh)
    assert (rayleigh.diff() > 0).all() and rayleigh[0] > 1e-6  # the zero eigenvalue is skipped
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(4, dtype=torch.float64))


def test_projectors_are_the_same_for_either_sign():
    adjacency = ch11._undirected(ch11.TREE, 9)
    case = ch11.Case("tree", {"adjacency": adjacency, "k": 3})
    flipped = column_projectors(lambda a, k: -ch11.laplacian_pe(a, k), case)
    torch.testing.assert_close(flipped, column_projectors(ch11.laplacian_pe, case))


def _bfs(adjacency):
    n = adjacency.shape[0]
    distances = [[-1] * n for _ in range(n)]
    for source in range(n):
        distances[source][source] = 0
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for neighbour in range(n):
                if adjacency[node, neighbour] and distances[source][neighbour] < 0:
                    distances[source][neighbour] = distances[source][node] + 1
                    queue.append(neighbour)
    return torch.tensor(distances, dtype=torch.int64)


def test_shortest_path_distances_by_hand_on_a_path_with_a_lone_node():
    adjacency = ch11._undirected([(0, 1), (1, 2)], 4, dtype=torch.bool)
    expected = torch.tensor([[0, 1, 2, -1], [1, 0, 1, -1], [2, 1, 0, -1], [-1, -1, -1, 0]])
    assert torch.equal(ch11.shortest_path_distances(adjacency), expected)


@pytest.mark.parametrize("seed", range(5))
def test_shortest_path_distances_equal_a_queue_based_bfs(seed):
    generator = torch.Generator().manual_seed(seed)
    upper = (torch.rand(15, 15, generator=generator) < 0.15).triu(1)
    adjacency = upper | upper.T
    result = ch11.shortest_path_distances(adjacency)
    assert result.dtype == torch.int64
    assert torch.equal(result, _bfs(adjacency))


def test_message_passing_equals_a_loop_over_the_edges():
    inputs = ch11._graph_inputs(9, 30, 4, 3, seed=0, dtype=torch.float64)
    x, edges, weight = inputs["x"], inputs["edges"], inputs["weight"]
    expected = torch.zeros(9, 3, dtype=torch.float64)
    for source, target in edges.tolist():
        expected[target] += x[source] @ weight
    torch.testing.assert_close(ch11.message_passing(x, edges, weight), expected)


def test_message_passing_equals_a_dense_adjacency_product():
    # counts[i, j] = number of edges j -> i, so out = counts @ (x W)
    inputs = ch11._graph_inputs(7, 20, 3, 5, seed=1, dtype=torch.float64)
    x, edges, weight = inputs["x"], inputs["edges"], inputs["weight"]
    counts = torch.zeros(7, 7, dtype=torch.float64)
    counts.index_put_(
        (edges[:, 1], edges[:, 0]), torch.ones(20, dtype=torch.float64), accumulate=True
    )
    torch.testing.assert_close(ch11.message_passing(x, edges, weight), counts @ (x @ weight))


def test_message_passing_flops_by_hand_and_equal_to_the_package():
    assert ch11.message_passing_flops(3, 4, 2) == 40  # 2·4·2 aggregation + 2·3·2² transforms
    for n, e, d in [(1000, 10000, 64), (300, 90000, 32), (50, 0, 16)]:
        assert ch11.message_passing_flops(n, e, d) == package_message_passing_flops(n, e, d)
