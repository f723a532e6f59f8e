"""Specification of selfattn_course.graphs: adjacency masks, attention over an edge list, random
graphs.

References: masks built by a plain loop over the edges; torch's
``scaled_dot_product_attention`` with the adjacency mask (edge attention must give its numbers
wherever a node has an incoming edge, and 0 where it has none); a float64 loop over each node's
incoming edges; hand-computed small graphs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course.graphs import adjacency_mask, edge_attention, random_edges

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def mask_by_loop(edges, n: int, *, directed: bool, self_loops: bool) -> np.ndarray:
    mask = np.zeros((n, n), dtype=bool)
    for source, target in np.asarray(edges).tolist():
        mask[target, source] = True  # row = the receiving query, column = the sending key
        if not directed:
            mask[source, target] = True
    if self_loops:
        np.fill_diagonal(mask, True)
    return mask


def edge_attention_by_loop(q, k, v, edges, scale) -> np.ndarray:
    """float64 loop over each node's incoming edges, for 2-D (n, d) inputs; 0 with no edge."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    out = np.zeros((q.shape[0], v.shape[1]))
    for node in range(q.shape[0]):
        senders = [source for source, target in np.asarray(edges).tolist() if target == node]
        if senders:
            scores = np.array([q[node] @ k[source] * scale for source in senders])
            weights = np.exp(scores - scores.max())
            out[node] = (weights / weights.sum()) @ v[senders]
    return out


@st.composite
def graph_cases(draw):
    """Random q, k, v (0-2 leading dims, k/v may broadcast), float32 or float64, and a random
    directed graph of distinct edges (some nodes may have no incoming edge)."""
    n = draw(st.integers(1, 7))
    batch = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    kv_batch = tuple(b if draw(st.booleans()) else 1 for b in batch)
    d, dv = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((*batch, n, d)).astype(dtype)
    k = rng.standard_normal((*kv_batch, n, d)).astype(dtype)
    v = rng.standard_normal((*kv_batch, n, dv)).astype(dtype)
    pairs = [(source, target) for source in range(n) for target in range(n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))
    edges = np.array(chosen, dtype=np.int64).reshape(-1, 2)
    scale = draw(st.none() | st.floats(0.1, 2.0))
    return q, k, v, edges, scale


def sdpa_reference(q, k, v, edges, scale) -> torch.Tensor:
    """torch's SDPA with the directed adjacency mask, in float64; rows with no key set to 0."""
    n = q.shape[-2]
    mask = torch.from_numpy(mask_by_loop(edges, n, directed=True, self_loops=False))
    q, k, v = (torch.from_numpy(x).double() for x in (q, k, v))
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (x.expand(*lead, *x.shape[-2:]) for x in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.masked_fill(~mask.any(dim=-1)[:, None], 0.0)  # torch gives NaN there


# --- adjacency_mask -------------------------------------------------------------------------------


def test_adjacency_mask_by_hand():
    # Edges 0 -> 1 and 1 -> 2: node 1 attends to 0 (mask[1, 0]), node 2 to 1 (mask[2, 1]).
    edges = np.array([[0, 1], [1, 2]])
    expected = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=bool)
    got = adjacency_mask(edges, 3, directed=True, self_loops=False)
    np.testing.assert_array_equal(got, expected)


def test_adjacency_mask_by_default_is_undirected_with_self_loops():
    expected = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(adjacency_mask(np.array([[0, 1], [1, 2]]), 3), expected)


@settings(max_examples=25)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)))
        )
    ),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_adjacency_mask_equals_a_loop_over_the_edges(graph, directed, self_loops, as_tensor):
    n, pairs = graph
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    given_edges = torch.from_numpy(edges) if as_tensor else edges
    mask = adjacency_mask(given_edges, n, directed=directed, self_loops=self_loops)
    expected = mask_by_loop(edges, n, directed=directed, self_loops=self_loops)
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_adjacency_mask_of_numpy_is_numpy_bool():
    mask = adjacency_mask(np.array([[0, 1]], dtype=np.int32), 2)
    assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (2, 2)


def test_adjacency_mask_of_a_tensor_is_a_bool_tensor_on_its_device(device):
    mask = adjacency_mask(torch.tensor([[0, 1]], device=device), 3)
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and mask.device == device


def test_adjacency_mask_of_a_list_is_a_tensor():
    mask = adjacency_mask([(0, 1), (2, 1)], 3, directed=True, self_loops=False)
    assert torch.equal(mask, torch.tensor([[0, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.bool))


def test_adjacency_mask_of_no_edges_is_the_identity_or_empty():
    no_edges = np.zeros((0, 2), dtype=np.int64)
    np.testing.assert_array_equal(adjacency_mask(no_edges, 3), np.eye(3, dtype=bool))
    assert not adjacency_mask(no_edges, 3, self_loops=False).any()


@pytest.mark.parametrize(
    "edges, num_nodes, error, words",
    [
        (np.array([0, 1]), 2, ValueError, "edges must have shape (E, 2), (source, target) pairs"),
        (np.zeros((2, 3), dtype=int), 2, ValueError, "got (2, 3)"),
        (
            np.array([[0, 2]]),
            2,
            ValueError,
            "edges must name nodes in [0, 2), got values from 0 to 2",
        ),
        (np.array([[-1, 0]]), 2, ValueError, "got values from -1 to 0"),
        (np.array([[0.0, 1.0]]), 2, TypeError, "edges must hold integers, got dtype float64"),
        (np.array([[True, False]]), 2, TypeError, "edges must hold integers, got dtype bool"),
        ("0 1", 2, TypeError, "edges must be a numpy.ndarray or a torch.Tensor, got str"),
        (np.array([[0, 1]]), 0, ValueError, "num_nodes must be >= 1, got 0"),
        (np.array([[0, 1]]), 2.0, TypeError, "num_nodes must be an integer"),
    ],
)
def test_adjacency_mask_rejects_bad_input(edges, num_nodes, error, words):
    with pytest.raises(error) as info:
        adjacency_mask(edges, num_nodes)
    assert words in str(info.value)


# --- edge_attention -------------------------------------------------------------------------------


@settings(max_examples=25)
@given(graph_cases())
def test_edge_attention_equals_dense_attention_with_the_adjacency_mask(case):
    q, k, v, edges, scale = case
    expected = sdpa_reference(q, k, v, edges, scale)
    tolerance = TOLERANCE[q.dtype.type]
    for library in ("numpy", "torch"):
        convert = torch.from_numpy if library == "torch" else (lambda a: a)
        out = edge_attention(convert(q), convert(k), convert(v), convert(edges), scale=scale)
        out = torch.as_tensor(np.asarray(out)).double()
        torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance)


@settings(max_examples=25)
@given(graph_cases())
def test_edge_attention_equals_a_float64_loop_over_incoming_edges(case):
    q, k, v, edges, scale = case
    q, k, v = (x.reshape(-1, *x.shape[-2:])[0] for x in (q, k, v))  # one (n, d) graph
    expected = edge_attention_by_loop(
        q, k, v, edges, 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    )
    out = edge_attention(q, k, v, edges, scale=scale)
    np.testing.assert_allclose(out, expected, atol=TOLERANCE[q.dtype.type], rtol=0)


def test_edge_attention_by_hand():
    # Node 2 receives from 0 and 1; scale 1, q_2 = [1, 0], k_0 = [ln 3, 0], k_1 = [0, 0]:
    # scores [ln 3, 0], e^s = [3, 1] -> weights [3/4, 1/4];
    # out_2 = 3/4 [4, 0] + 1/4 [0, 8] = [3, 2].
    # Node 0 receives from 2 only: weight 1, out_0 = v_2 = [1, 1]. Node 1 receives nothing: 0.
    q = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    k = np.array([[math.log(3.0), 0.0], [0.0, 0.0], [5.0, 5.0]])
    v = np.array([[4.0, 0.0], [0.0, 8.0], [1.0, 1.0]])
    edges = np.array([[0, 2], [1, 2], [2, 0]])
    expected = np.array([[1.0, 1.0], [0.0, 0.0], [3.0, 2.0]])
    np.testing.assert_allclose(edge_attention(q, k, v, edges, scale=1.0), expected, rtol=1e-14)


def test_edge_attention_counts_a_repeated_edge_twice():
    # Node 1 receives 0 -> 1 twice and 1 -> 1 once, all scores 0 (q_1 = 0):
    # weights [2/3 on v_0, 1/3 on v_1] -> out_1 = 2/3 [3, 0] + 1/3 [0, 3] = [2, 1].
    q = np.zeros((2, 2))
    k = np.ones((2, 2))
    v = np.array([[3.0, 0.0], [0.0, 3.0]])
    edges = np.array([[0, 1], [0, 1], [1, 1]])
    np.testing.assert_allclose(edge_attention(q, k, v, edges)[1], [2.0, 1.0], rtol=1e-14)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_a_node_with_no_incoming_edge_gives_zero_and_never_nan(library):
    convert = torch.from_numpy if library == "torch" else (lambda a: a)
    rng = np.random.default_rng(0)
    q, k, v = (convert(rng.standard_normal((2, 4, 3))) for _ in range(3))
    out = edge_attention(q, k, v, convert(np.array([[0, 1], [1, 0], [3, 0]])))
    out = np.asarray(out)
    assert not np.isnan(out).any()
    assert (out[:, 2] == 0).all() and (out[:, 3] == 0).all()  # nodes 2 and 3 receive nothing
    assert (out[:, :2] != 0).all()


def test_edge_attention_with_no_edges_is_all_zero():
    q = torch.randn(3, 2)
    out = edge_attention(q, q, q, torch.zeros(0, 2, dtype=torch.long))
    assert torch.equal(out, torch.zeros(3, 2))


def test_edge_attention_is_stable_for_huge_scores():
    # Scores near ±1e4 overflow exp; subtracting each node's maximum keeps them finite.
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((5, 4)) * 100 for _ in range(3))
    edges = np.array([[s, t] for s in range(5) for t in range(5) if s != t])
    out = edge_attention(q, k, v, edges)
    assert np.isfinite(out).all()
    expected = sdpa_reference(q, k, v, edges, None)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-9)


def test_edge_attention_of_numpy_is_numpy_of_the_same_dtype():
    q = np.ones((3, 2), dtype=np.float32)
    out = edge_attention(q, q, q, np.array([[0, 1]]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (3, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_attention_of_torch_is_torch_of_the_same_dtype_and_device(device, dtype):
    q = torch.randn(2, 3, 4, dtype=dtype, device=device)
    v = torch.randn(2, 3, 5, dtype=dtype, device=device)
    out = edge_attention(q, q, v, torch.tensor([[0, 1], [2, 1]]))  # CPU edges are moved over
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and out.device == q.device and out.shape == (2, 3, 5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_edge_attention_in_half_precision_keeps_the_dtype_and_matches_float32(device, dtype):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 6, 8, generator=generator) for _ in range(3))
    edges = random_edges(6, 8, seed=1)
    expected = edge_attention(q, k, v, edges)
    half = [x.to(device=device, dtype=dtype) for x in (q, k, v)]
    out = edge_attention(*half, edges)
    assert out.dtype == dtype and out.device == half[0].device
    assert not torch.isnan(out).any()
    # Rounding the inputs to 8 (bf16) or 11 (fp16) bits moves the output by a few units of 2^-8.
    torch.testing.assert_close(out.float().cpu(), expected, atol=5e-2, rtol=5e-2)


def test_edge_attention_gradients_equal_those_of_dense_attention():
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(5, 3, generator=generator, dtype=torch.float64) for _ in range(3)]
    edges = random_edges(5, 6, seed=0)  # undirected: 12 directed edges
    mask = adjacency_mask(edges, 5, directed=True, self_loops=False)
    assert mask.any(dim=-1).all()  # every node receives (SDPA would give NaN otherwise)
    sparse = [x.clone().requires_grad_() for x in inputs]
    dense = [x.clone().requires_grad_() for x in inputs]
    edge_attention(*sparse, edges).pow(2).sum().backward()
    F.scaled_dot_product_attention(*dense, attn_mask=mask).pow(2).sum().backward()
    for got, expected in zip(sparse, dense, strict=True):
        torch.testing.assert_close(got.grad, expected.grad, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(
    "shapes, words",
    [
        (((4, 2), (3, 2), (3, 2)), "one row per node and q, k the same width: got q (4, 2)"),
        (((3, 2), (3, 5), (3, 2)), "k (3, 5)"),
        (((3, 2), (3, 2), (4, 2)), "v (4, 2)"),
        (((2, 3, 2), (4, 3, 2), (3, 2)), "leading dims of q (2,) and k (4,) do not broadcast"),
        (((3,), (3, 2), (3, 2)), "q must have at least 2 dimensions, got shape (3,)"),
    ],
)
def test_edge_attention_rejects_shapes_that_do_not_fit_naming_them(shapes, words):
    q, k, v = (np.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError) as info:
        edge_attention(q, k, v, np.array([[0, 1]]))
    assert words in str(info.value)


def test_edge_attention_rejects_an_edge_outside_the_nodes():
    q = np.zeros((3, 2))
    with pytest.raises(
        ValueError, match=r"edges must name nodes in \[0, 3\), got values from 0 to 3"
    ):
        edge_attention(q, q, q, np.array([[0, 3]]))


@pytest.mark.parametrize(
    "q, k, error, words",
    [
        (
            np.zeros((3, 2), dtype=int),
            np.zeros((3, 2), dtype=int),
            TypeError,
            "q must hold floating",
        ),
        (
            np.zeros((3, 2)),
            torch.zeros(3, 2, dtype=torch.float64),
            TypeError,
            "k is a torch.Tensor",
        ),
        (np.zeros((3, 2)), np.zeros((3, 2), dtype=np.float32), TypeError, "k is float32"),
        ([[0.0, 0.0]], np.zeros((1, 2)), TypeError, "q must be a numpy.ndarray or a torch.Tensor"),
    ],
)
def test_edge_attention_rejects_inputs_of_the_wrong_kind(q, k, error, words):
    with pytest.raises(error) as info:
        edge_attention(q, k, np.zeros((3, 2)), np.array([[0, 1]]))
    assert words in str(info.value)


# --- random_edges ---------------------------------------------------------------------------------


@settings(max_examples=25)
@given(st.integers(1, 9), st.data(), st.booleans(), st.integers(0, 100))
def test_random_edges_are_distinct_pairs_of_distinct_nodes_sorted_by_target(
    n, data, directed, seed
):
    possible = n * (n - 1) if directed else n * (n - 1) // 2
    count = data.draw(st.integers(0, possible))
    edges = random_edges(n, count, seed=seed, directed=directed)
    assert edges.dtype == torch.long and edges.shape == (count if directed else 2 * count, 2)
    pairs = [tuple(pair) for pair in edges.tolist()]
    assert len(set(pairs)) == len(pairs)
    assert all(source != target and 0 <= source < n and 0 <= target < n for source, target in pairs)
    assert pairs == sorted(pairs, key=lambda pair: (pair[1], pair[0]))
    if not directed:
        assert set(pairs) == {(target, source) for source, target in pairs}


def test_random_edges_undirected_give_a_symmetric_mask():
    edges = random_edges(8, 10, seed=3)
    directed_mask = adjacency_mask(edges, 8, directed=True, self_loops=False)
    assert torch.equal(directed_mask, directed_mask.T)
    assert torch.equal(directed_mask, adjacency_mask(edges, 8, self_loops=False))
    assert directed_mask.sum() == 20


def test_random_edges_depend_only_on_the_seed():
    assert torch.equal(random_edges(10, 12, seed=7), random_edges(10, 12, seed=7))
    assert not torch.equal(random_edges(10, 12, seed=7), random_edges(10, 12, seed=8))


def test_random_edges_at_the_maximum_are_the_complete_graph():
    mask = adjacency_mask(random_edges(5, 20, seed=0, directed=True), 5, directed=True)
    assert mask.all()


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((4, 7), {}, ValueError, "num_edges must be <= 6 for 4 nodes (undirected pairs), got 7"),
        ((4, 13), {"directed": True}, ValueError, "<= 12 for 4 nodes (directed pairs), got 13"),
        ((0, 0), {}, ValueError, "num_nodes must be >= 1, got 0"),
        ((4, -1), {}, ValueError, "num_edges must be >= 0, got -1"),
        ((4, 1.5), {}, TypeError, "num_edges must be an integer"),
    ],
)
def test_random_edges_reject_bad_counts(args, kwargs, error, words):
    with pytest.raises(error) as info:
        random_edges(*args, seed=0, **kwargs)
    assert words in str(info.value)
