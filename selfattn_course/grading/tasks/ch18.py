"""Chapter 18, self-attention for recommendation: the evaluation of a next-item recommender.

References: the metrics are written out here from their definitions (rank = the number of
items that score strictly higher than the target); the leave-one-out split and the transition
counts of the first-order Markov baseline are short tensor code; the sampled-metric answer is the
hypergeometric sum, written with :func:`math.comb`. Nothing of the package is forbidden: none of
these functions exists in it.

Conventions (the chapter's, as in chapter 4): item id 0 is padding, histories are padded on the
**left** so the most recent item is last, and ``scores`` ``(B, N)`` holds one score per item.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number


def _left_padded(lengths, max_len, *, num_items, seed, device=None) -> torch.Tensor:
    """``(B, max_len)`` item ids in ``1..num_items``, 0-padded on the left to ``lengths``."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, num_items + 1, (len(lengths), max_len), generator=generator)
    positions = torch.arange(max_len)
    padding = positions[None, :] < (max_len - torch.tensor(lengths))[:, None]
    return ids.masked_fill(padding, 0).to(device)


# --- task 1: hit_and_ndcg -------------------------------------------------------------------------


def hit_and_ndcg(
    scores: torch.Tensor, targets: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user HR@k and NDCG@k from ``scores (B, N)`` and ``targets (B,)`` item indices.

    ``rank[b]`` = number of items whose score is strictly higher than the target's (0 = first);
    ``hit = rank < k`` and ``ndcg = hit / log2(rank + 2)``, both ``(B,)`` in ``scores.dtype``.
    """
    target_scores = scores.gather(1, targets[:, None].long())  # (B, 1)
    rank = (scores > target_scores).sum(dim=1)  # (B,)
    hit = (rank < k).to(scores.dtype)
    ndcg = hit / torch.log2(rank.to(scores.dtype) + 2)
    return hit, ndcg


def _in_unit_interval(result, _inputs) -> bool:
    hit, ndcg = result
    return bool(((ndcg >= 0) & (ndcg <= 1)).all() and ((hit == 0) | (hit == 1)).all())


def _ndcg_at_most_hit(result, _inputs) -> bool:
    hit, ndcg = result
    return bool((ndcg <= hit).all())


def _metric_case(batch, items, k, seed, dtype=torch.float32, device="cpu") -> dict:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(items, (batch,), generator=generator)
    return {
        "scores": C.randn((batch, items), seed=seed, dtype=dtype, device=device),
        "targets": targets.to(device),
        "k": k,
    }


def _hit_and_ndcg_hidden(dtype, device) -> list[Case]:
    return [
        Case("8 users, 50 items, k = 10", _metric_case(8, 50, 10, 81, dtype, device)),
        Case("k = 1: only the top item counts", _metric_case(6, 20, 1, 82, dtype, device)),
        Case("k = N: every target is a hit", _metric_case(5, 7, 7, 83, dtype, device)),
        Case("one user, 200 items, k = 5", _metric_case(1, 200, 5, 84, dtype, device)),
    ]


HIT_AND_NDCG = FunctionTask(
    id="ch18.hit_and_ndcg",
    title="HR@k and NDCG@k from a score matrix",
    points=4,
    statement=r"""
        A recommender gives `scores` `(B, N)`: one score per item for each of $B$ users;
        `targets` `(B,)` holds the index of each user's held-out item. Let the target's
        **rank** $r$ be the number of items whose score is *strictly* higher than the
        target's ($r = 0$: it comes first). Write `hit_and_ndcg(scores, targets, k)` returning
        two tensors `(B,)` in the dtype of `scores`: the hit $[r < k]$ and
        $\mathrm{NDCG@}k = [r < k] / \log_2(r + 2)$ (one relevant item, so the ideal DCG is 1).
        The averages over users are HR@k and NDCG@k.
        """,
    reference=hit_and_ndcg,
    visible_cases=lambda: [
        Case(
            "by hand: ranks 0, 1 and 3 with k = 2 give hits [1, 1, 0], NDCG [1, 1/log2(3), 0]",
            {
                "scores": torch.tensor(
                    [[0.9, 0.1, 0.3, 0.2], [0.5, 0.7, 0.1, 0.3], [0.1, 0.4, 0.3, 0.2]]
                ),
                "targets": torch.tensor([0, 0, 0]),
                "k": 2,
            },
        ),
        Case("4 users, 30 items, k = 10", _metric_case(4, 30, 10, 80)),
    ],
    hidden_cases=over_devices(_hit_and_ndcg_hidden),
    properties=(
        Property("hits are 0 or 1 and NDCG lies in [0, 1]", _in_unit_interval),
        Property("NDCG is never above the hit (0 outside the top k)", _ndcg_at_most_hit),
    ),
    mistakes=(
        Mistake(
            "a hit needs rank < k (ranks 0..k-1 are the top k); rank <= k lets k + 1 items count",
            source="""
                def hit_and_ndcg(scores, targets, k):
                    rank = (scores > scores.gather(1, targets[:, None])).sum(dim=1)
                    hit = (rank <= k).to(scores.dtype)
                    return hit, hit / torch.log2(rank.to(scores.dtype) + 2)
                """,
        ),
        Mistake(
            "the discount is log base 2: 1 / log2(rank + 2), not the natural log",
            source="""
                def hit_and_ndcg(scores, targets, k):
                    rank = (scores > scores.gather(1, targets[:, None])).sum(dim=1)
                    hit = (rank < k).to(scores.dtype)
                    return hit, hit / torch.log(rank.to(scores.dtype) + 2)
                """,
        ),
        Mistake(
            "NDCG@k is 0 when the target is outside the top k; the discount alone counts every "
            "rank",
            source="""
                def hit_and_ndcg(scores, targets, k):
                    rank = (scores > scores.gather(1, targets[:, None])).sum(dim=1)
                    hit = (rank < k).to(scores.dtype)
                    return hit, 1 / torch.log2(rank.to(scores.dtype) + 2)
                """,
        ),
        Mistake(
            "the rank counts the target itself (>= instead of >): the first item must have rank 0",
            source="""
                def hit_and_ndcg(scores, targets, k):
                    rank = (scores >= scores.gather(1, targets[:, None])).sum(dim=1)
                    hit = (rank < k).to(scores.dtype)
                    return hit, hit / torch.log2(rank.to(scores.dtype) + 2)
                """,
        ),
    ),
)


# --- task 2: leave_one_out ------------------------------------------------------------------------


def leave_one_out(history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``history (B, L)`` -> ``inputs (B, L)``, ``targets (B,)``.

    ``targets`` is each user's last item; ``inputs`` is the history without it, still
    left-padded to ``L`` (one more 0 on the left).
    """
    targets = history[:, -1]
    padding = torch.zeros_like(history[:, :1])
    return torch.cat([padding, history[:, :-1]], dim=1), targets


def _leave_one_out_hidden(device) -> list[Case]:
    def history(lengths, max_len, seed):
        return {"history": _left_padded(lengths, max_len, num_items=30, seed=seed, device=device)}

    return [
        Case("lengths [6, 2, 4] left-padded to 6", history([6, 2, 4], 6, 91)),
        Case("L = 2, one full history", history([2, 2], 2, 92)),
        Case("one user, length 9 of 12", history([9], 12, 93)),
    ]


LEAVE_ONE_OUT = FunctionTask(
    id="ch18.leave_one_out",
    title="the leave-one-out split",
    points=2,
    statement=r"""
        Leave-one-out evaluation holds out each user's **last** item and asks the model to
        rank it from the rest of the history. `history` `(B, L)` is left-padded with 0 (every
        user has at least 2 items). Write `leave_one_out(history)` returning `(inputs, targets)`:
        `targets` `(B,)` the last items, and `inputs` `(B, L)` the histories without them,
        **still left-padded** so that the most recent remaining item is at the last position.
        """,
    reference=leave_one_out,
    visible_cases=lambda: [
        Case(
            "by hand: [[0, 4, 7, 9]] gives inputs [[0, 0, 4, 7]] and target [9]",
            {"history": torch.tensor([[0, 4, 7, 9]])},
        ),
        Case(
            "lengths [5, 3] left-padded to 5",
            {"history": _left_padded([5, 3], 5, num_items=20, seed=90)},
        ),
    ],
    hidden_cases=over_devices_only(_leave_one_out_hidden),
    mistakes=(
        Mistake(
            "torch.roll wraps the held-out item round to the first position: the model would "
            "see the answer; shift in a padding 0 instead",
            source="""
                def leave_one_out(history):
                    return torch.roll(history, 1, dims=1), history[:, -1]
                """,
        ),
        Mistake(
            "with left padding the last item is at position -1; position 0 is padding",
            source="""
                def leave_one_out(history):
                    padding = torch.zeros_like(history[:, :1])
                    return torch.cat([padding, history[:, :-1]], dim=1), history[:, 0]
                """,
        ),
    ),
)


# --- task 3: transition_counts --------------------------------------------------------------------


def transition_counts(history: torch.Tensor, num_items: int) -> torch.Tensor:
    """``counts[a, b]``: how often item ``b`` directly follows item ``a`` in the histories.

    ``history (B, L)`` left-padded with 0; only pairs of two real items count. Returns
    ``(num_items + 1, num_items + 1)`` int64 (row and column 0, the padding id, stay 0).
    """
    previous, following = history[:, :-1].flatten(), history[:, 1:].flatten()
    real = (previous != 0) & (following != 0)
    counts = torch.zeros(num_items + 1, num_items + 1, dtype=torch.long, device=history.device)
    pairs = (previous[real].long(), following[real].long())
    counts.index_put_(pairs, torch.ones_like(pairs[0]), accumulate=True)
    return counts


def _counts_pairs(counts, inputs) -> bool:
    history = inputs["history"]
    real_pairs = ((history[:, :-1] != 0) & (history[:, 1:] != 0)).sum()
    return int(counts.sum()) == int(real_pairs)


def _transition_hidden(device) -> list[Case]:
    def case(lengths, max_len, items, seed):
        return {
            "history": _left_padded(lengths, max_len, num_items=items, seed=seed, device=device),
            "num_items": items,
        }

    return [
        Case("lengths [7, 3, 1] of 7, 5 items (repeats)", case([7, 3, 1], 7, 5, 101)),
        Case("one history of length 12, 3 items", case([12], 12, 3, 102)),
        Case("all lengths 1: no pair at all", case([1, 1], 4, 6, 103)),
    ]


TRANSITION_COUNTS = FunctionTask(
    id="ch18.transition_counts",
    title="the first-order Markov baseline's counts",
    points=2,
    statement=r"""
        The first-order Markov baseline scores item $b$ for a user whose last item is $a$ by how
        often $b$ directly followed $a$ in the training histories. Write
        `transition_counts(history, num_items)` for left-padded histories `(B, L)` (0 =
        padding, items `1..num_items`): an int64 tensor `(num_items + 1, num_items + 1)` whose
        entry `[a, b]` counts the positions $t$ with `history[:, t] = a` and
        `history[:, t + 1] = b`, **both real items** (row and column 0 stay 0).
        """,
    reference=transition_counts,
    visible_cases=lambda: [
        Case(
            "by hand: [[0, 1, 2, 1, 2]] counts 1 -> 2 twice and 2 -> 1 once",
            {"history": torch.tensor([[0, 1, 2, 1, 2]]), "num_items": 2},
        ),
        Case(
            "lengths [6, 2] of 6, 4 items",
            {"history": _left_padded([6, 2], 6, num_items=4, seed=100), "num_items": 4},
        ),
    ],
    hidden_cases=over_devices_only(_transition_hidden),
    properties=(Property("the counts add up to the number of pairs of real items", _counts_pairs),),
    mistakes=(
        Mistake(
            "a pair with a padding item counts: (0, first item) is not a transition",
            source="""
                def transition_counts(history, num_items):
                    counts = torch.zeros(
                        num_items + 1, num_items + 1, dtype=torch.long, device=history.device
                    )
                    previous, following = history[:, :-1].flatten(), history[:, 1:].flatten()
                    counts.index_put_(
                        (previous, following), torch.ones_like(previous), accumulate=True
                    )
                    return counts
                """,
        ),
        Mistake(
            "the counts are transposed: row a (the previous item), column b (the next one)",
            lambda history, num_items: transition_counts(history, num_items).T,
        ),
    ),
)


# --- task 4: sampled_hit_probability --------------------------------------------------------------

SAMPLED_CATALOGUE = 1000  # items other than the target
SAMPLED_HIGHER = 80  # of them score higher than the target: a full-ranking miss at k = 10
SAMPLED_NEGATIVES = 100


def _sampled_hit_probability(catalogue: int, higher: int, negatives: int, k: int) -> float:
    """P(fewer than k of the sampled negatives outscore the target): a hypergeometric sum."""
    total = math.comb(catalogue, negatives)
    return (
        sum(math.comb(higher, j) * math.comb(catalogue - higher, negatives - j) for j in range(k))
        / total
    )


def _a_probability(value, _inputs) -> bool:
    return 0.0 <= float(value) <= 1.0


SAMPLED_HIT_PROBABILITY = AnswerTask(
    id="ch18.sampled_hit_probability",
    title="a miss that sampling turns into a hit",
    points=2,
    statement=rf"""
        Apart from a user's held-out target there are {SAMPLED_CATALOGUE} items, and
        {SAMPLED_HIGHER} of them score higher than the target: with full ranking its rank is
        {SAMPLED_HIGHER}, a miss for HR@10. A *sampled* metric ranks the target against only
        {SAMPLED_NEGATIVES} negatives drawn uniformly **without replacement** from the
        {SAMPLED_CATALOGUE}. What is the probability that this user counts as a hit for sampled
        HR@10 (fewer than 10 of the sampled negatives score higher)? Store it in
        `sampled_hit_probability` (relative tolerance $10^{{-3}}$).
        """,
    answer_type=Number(rtol=1e-3, atol=0.0),
    expected=_sampled_hit_probability(SAMPLED_CATALOGUE, SAMPLED_HIGHER, SAMPLED_NEGATIVES, 10),
    properties=(Property("the answer is a probability, in [0, 1]", _a_probability),),
    mistakes=(
        Mistake(
            "that is the full-ranking answer; the sampled metric sees only the sampled negatives",
            0.0,
        ),
        Mistake(
            "the negatives are drawn without replacement: the count is hypergeometric, not "
            "binomial",
            source="""
                import math

                p = 80 / 1000  # with replacement: each negative is higher with probability p
                sampled_hit_probability = sum(
                    math.comb(100, j) * p**j * (1 - p) ** (100 - j) for j in range(10)
                )
                """,
        ),
        Mistake(
            "a hit allows 0 to 9 higher negatives (fewer than 10), not 0 to 10",
            _sampled_hit_probability(SAMPLED_CATALOGUE, SAMPLED_HIGHER, SAMPLED_NEGATIVES, 11),
        ),
    ),
)


TASKS = [HIT_AND_NDCG, LEAVE_ONE_OUT, TRANSITION_COUNTS, SAMPLED_HIT_PROBABILITY]
