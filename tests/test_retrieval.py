"""selfattn_course.retrieval: top-k retrieval from a key-value memory and attention over it."""

from __future__ import annotations

import pytest
import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.retrieval import (
    attend_to_entries,
    nearest_neighbours,
    retrieval_attention,
    similarity,
    top_k_mask,
)


def _memory(batch=2, lq=3, d=4, m=9, dv=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    queries = torch.randn(batch, lq, d, generator=generator, dtype=torch.float64)
    keys = torch.randn(m, d, generator=generator, dtype=torch.float64)
    values = torch.randn(m, dv, generator=generator, dtype=torch.float64)
    return queries, keys, values


def test_nearest_neighbours_by_dot_product_on_a_hand_example():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]])
    query = torch.tensor([[[1.0, 0.5]]])  # dots: 1, 0.5, 3, -1
    indices, scores = nearest_neighbours(query, keys, 2)
    assert indices.tolist() == [[[2, 0]]]
    torch.testing.assert_close(scores, torch.tensor([[[3.0, 1.0]]]))


def test_cosine_ignores_the_length_of_the_keys():
    keys = torch.tensor([[10.0, 0.0], [0.6, 0.8]])
    query = torch.tensor([[[0.6, 0.8]]])  # dot prefers key 0 (6 > 1), cosine key 1 (1 > 0.6)
    assert nearest_neighbours(query, keys, 1)[0].item() == 0
    indices, scores = nearest_neighbours(query, keys, 1, metric="cosine")
    assert indices.item() == 1
    torch.testing.assert_close(scores, torch.tensor([[[1.0]]]))


def test_nearest_neighbours_match_a_loop_over_the_memory():
    queries, keys, _ = _memory()
    indices, scores = nearest_neighbours(queries, keys, 4, metric="cosine")
    for b in range(queries.shape[0]):
        for i in range(queries.shape[1]):
            q = queries[b, i]
            cosines = [float(q @ key / (q.norm() * key.norm())) for key in keys]
            best = sorted(range(len(keys)), key=lambda j: -cosines[j])[:4]
            assert indices[b, i].tolist() == best
            torch.testing.assert_close(scores[b, i], torch.tensor(cosines, dtype=q.dtype)[best])


def test_top_k_mask_is_true_exactly_on_the_indices():
    mask = top_k_mask(torch.tensor([[[2, 0]], [[1, 3]]]), 4)
    assert mask.shape == (2, 1, 4)
    assert mask.tolist() == [[[True, False, True, False]], [[False, True, False, True]]]


@pytest.mark.parametrize("metric", ["dot", "cosine"])
def test_retrieval_attention_equals_full_attention_masked_to_the_top_k(metric):
    queries, keys, values = _memory(seed=1)
    out, indices = retrieval_attention(queries, keys, values, 3, metric=metric, return_indices=True)
    masked = scaled_dot_product_attention(queries, keys, values, top_k_mask(indices, len(keys)))
    torch.testing.assert_close(out, masked)


def test_attend_to_entries_matches_a_loop_with_the_softmax_written_out():
    queries, keys, values = _memory(batch=1, lq=2, seed=2)
    indices = torch.tensor([[[0, 5, 7], [8, 1, 2]]])
    out = attend_to_entries(queries, keys, values, indices, scale=0.5)
    for i in range(2):
        chosen = indices[0, i]
        exps = torch.exp(keys[chosen] @ queries[0, i] * 0.5)
        expected = (exps / exps.sum()) @ values[chosen]
        torch.testing.assert_close(out[0, i], expected)


def test_k_equal_to_memory_size_is_full_attention():
    queries, keys, values = _memory(seed=3)
    full = scaled_dot_product_attention(queries, keys, values)
    torch.testing.assert_close(retrieval_attention(queries, keys, values, len(keys)), full)


def test_similarity_shape_broadcasts_over_leading_dims():
    queries, keys, _ = _memory(batch=2, lq=3, m=7)
    assert similarity(queries[None], keys).shape == (1, 2, 3, 7)


@pytest.mark.parametrize("k", [0, 10, 2.0, True])
def test_k_outside_one_to_m_is_an_error(k):
    queries, keys, values = _memory(m=9)
    with pytest.raises(ValueError, match="k must be an int"):
        retrieval_attention(queries, keys, values, k)


def test_unknown_metric_is_an_error():
    queries, keys, _ = _memory()
    with pytest.raises(ValueError, match="metric"):
        nearest_neighbours(queries, keys, 2, metric="l2")


def test_mismatched_memory_sizes_are_an_error():
    queries, keys, values = _memory(m=9)
    with pytest.raises(ValueError, match="same M"):
        retrieval_attention(queries, keys, values[:5], 2)
