"""Chapter 29, evaluating a self-attention layer: ROC points, attention entropy, latency, pruning.

References: ``roc_points`` is written out from the definitions (Fawcett 2006): one threshold per
distinct score, the true-positive rate against the false-positive rate; the tests check it
against a loop over thresholds and its area against the rank meaning of the AUC.
``attention_entropy`` is written out (``-Σ a log a``, with ``0 log 0 = 0``); the tests check it
against a loop. ``median_latency`` calls :func:`statistics.median`. The head to prune follows
from the table of the statement (Michel et al. 2019): the smallest loss increase.
"""

from __future__ import annotations

import statistics

import torch

from selfattn_course import debug
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.predicates import whole_number

# --- task 1: roc_points ---------------------------------------------------------------------------


def roc_points(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The ROC curve's points ``(m + 1, 2)``: ``(FPR, TPR)`` from ``(0, 0)``, then one point per
    distinct score ``t`` in decreasing order, predicting positive where ``score >= t``.

    ``scores`` ``(N,)`` float, ``labels`` ``(N,)`` of 0/1 (or bool) with at least one of each.
    ``TPR = TP / P`` (recall), ``FPR = FP / N``; the result has the dtype and device of ``scores``.
    """
    positive = labels.bool()
    thresholds = torch.unique(scores).flip(0)  # (m,) distinct scores, largest first
    predicted = scores[None, :] >= thresholds[:, None]  # (m, N)
    tpr = (predicted & positive).sum(dim=-1).to(scores.dtype) / positive.sum()
    fpr = (predicted & ~positive).sum(dim=-1).to(scores.dtype) / (~positive).sum()
    origin = scores.new_zeros(1)
    return torch.stack([torch.cat([origin, fpr]), torch.cat([origin, tpr])], dim=-1)


def _scores_and_labels(n, seed, *, dtype=torch.float32, device="cpu", ties=False, rate=0.5):
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=g) < rate).long()
    labels[0], labels[1] = 1, 0  # at least one of each
    scores = labels.double() + torch.randn(n, generator=g, dtype=torch.float64)
    if ties:
        scores = torch.round(scores * 2) / 2  # many equal scores
    return {"scores": scores.to(dtype).to(device), "labels": labels.to(device)}


def _roc_hidden(dtype, device) -> list[Case]:
    kw = {"dtype": dtype, "device": device}
    constant = torch.full((6,), 0.3, dtype=dtype, device=device)
    return [
        Case("40 examples, distinct scores", _scores_and_labels(40, 20, **kw)),
        Case("50 examples, many tied scores", _scores_and_labels(50, 21, ties=True, **kw)),
        Case("imbalanced: about 10% positives", _scores_and_labels(60, 22, rate=0.1, **kw)),
        Case(
            "one score for everyone: (0, 0) then (1, 1)",
            {"scores": constant, "labels": torch.tensor([1, 0, 0, 1, 0, 0], device=device)},
        ),
        Case(
            "a perfect ranking",
            {
                "scores": torch.tensor([0.9, 0.8, 0.2, 0.1], dtype=dtype, device=device),
                "labels": torch.tensor([1, 1, 0, 0], device=device),
            },
        ),
    ]


def _from_origin_to_corner(result, _inputs) -> bool:
    ends = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=result.dtype, device=result.device)
    return bool(torch.allclose(result[[0, -1]], ends))


def _rates_never_fall(result, _inputs) -> bool:
    return bool((result.diff(dim=0) >= 0).all())


ROC_POINTS = FunctionTask(
    id="ch29.roc_points",
    title="the points of an ROC curve",
    points=3,
    statement=r"""
        A classifier gives each example a score; predicting "positive" where the score is at
        least a threshold $t$ gives a true-positive rate $\text{TPR} = TP / P$ (the recall) and a
        false-positive rate $\text{FPR} = FP / N$. Write `roc_points(scores, labels)` returning
        the ROC curve as a tensor `(m + 1, 2)` of rows `(FPR, TPR)`: first `(0, 0)`, then one row
        for each of the $m$ **distinct** scores taken as $t$, from the largest to the smallest
        (so the last row is `(1, 1)`). `scores` is `(N,)` float, `labels` `(N,)` of 0 and 1 with
        at least one of each; return the dtype and device of `scores`.
        """,
    reference=roc_points,
    visible_cases=lambda: [
        Case(
            "by hand: scores [0.9, 0.7, 0.4, 0.2], labels [1, 0, 1, 0] give "
            "(0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1)",
            {
                "scores": torch.tensor([0.9, 0.7, 0.4, 0.2]),
                "labels": torch.tensor([1, 0, 1, 0]),
            },
        ),
        Case(
            "a tie: scores [0.8, 0.5, 0.5, 0.1], labels [1, 1, 0, 0] give "
            "(0, 0), (0, 0.5), (0.5, 1), (1, 1)",
            {
                "scores": torch.tensor([0.8, 0.5, 0.5, 0.1]),
                "labels": torch.tensor([1, 1, 0, 0]),
            },
        ),
        Case("20 random examples", _scores_and_labels(20, 1)),
    ],
    hidden_cases=over_devices(_roc_hidden),
    properties=(
        Property("the curve starts at (0, 0) and ends at (1, 1)", _from_origin_to_corner),
        Property("neither rate ever decreases along the curve", _rates_never_fall),
    ),
    mistakes=(
        Mistake(
            "the columns are swapped: each row is (FPR, TPR), the false-positive rate on the "
            "x axis",
            source="""
                def roc_points(scores, labels):
                    positive = labels.bool()
                    thresholds = torch.unique(scores).flip(0)
                    predicted = scores[None, :] >= thresholds[:, None]
                    tpr = (predicted & positive).sum(-1).to(scores.dtype) / positive.sum()
                    fpr = (predicted & ~positive).sum(-1).to(scores.dtype) / (~positive).sum()
                    zero = scores.new_zeros(1)
                    return torch.stack([torch.cat([zero, tpr]), torch.cat([zero, fpr])], dim=-1)
                """,
        ),
        Mistake(
            "you predict positive where the score is strictly above the threshold; an example "
            "whose score equals t is predicted positive (score >= t)",
            source="""
                def roc_points(scores, labels):
                    positive = labels.bool()
                    thresholds = torch.unique(scores).flip(0)
                    predicted = scores[None, :] > thresholds[:, None]
                    tpr = (predicted & positive).sum(-1).to(scores.dtype) / positive.sum()
                    fpr = (predicted & ~positive).sum(-1).to(scores.dtype) / (~positive).sum()
                    zero = scores.new_zeros(1)
                    return torch.stack([torch.cat([zero, fpr]), torch.cat([zero, tpr])], dim=-1)
                """,
        ),
        Mistake(
            "you divided the counts by the number of all examples; the TPR divides by the "
            "positives P, the FPR by the negatives N",
            source="""
                def roc_points(scores, labels):
                    positive = labels.bool()
                    thresholds = torch.unique(scores).flip(0)
                    predicted = scores[None, :] >= thresholds[:, None]
                    tpr = (predicted & positive).sum(-1).to(scores.dtype) / len(scores)
                    fpr = (predicted & ~positive).sum(-1).to(scores.dtype) / len(scores)
                    zero = scores.new_zeros(1)
                    return torch.stack([torch.cat([zero, fpr]), torch.cat([zero, tpr])], dim=-1)
                """,
        ),
    ),
)


# --- task 2: attention_entropy --------------------------------------------------------------------


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy per head, in nats: ``(B, H, Lq, Lk) -> (H,)``.

    ``H(a) = -Σ_j a_j log a_j`` of each query's weights (``0 log 0 = 0``), averaged over the batch
    and the queries: :func:`selfattn_course.debug.attention_entropy`.
    """
    return debug.attention_entropy(weights)


def _weights(shape, seed, *, dtype=torch.float32, device="cpu", causal=False, sharp=1.0):
    g = torch.Generator().manual_seed(seed)
    scores = sharp * torch.randn(shape, generator=g, dtype=torch.float64)
    if causal:
        lq, lk = shape[-2:]
        allowed = torch.ones(lq, lk, dtype=torch.bool).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1).to(dtype).to(device)


def _entropy_hidden(dtype, device) -> list[Case]:
    kw = {"dtype": dtype, "device": device}
    return [
        Case("(3, 4, 6, 6) random weights", {"weights": _weights((3, 4, 6, 6), 40, **kw)}),
        Case(
            "(2, 3, 5, 5) causal: zeros", {"weights": _weights((2, 3, 5, 5), 41, causal=True, **kw)}
        ),
        Case(
            "(1, 2, 4, 9) sharp weights", {"weights": _weights((1, 2, 4, 9), 42, sharp=8.0, **kw)}
        ),
        Case("(2, 1, 3, 7) one head", {"weights": _weights((2, 1, 3, 7), 43, **kw)}),
    ]


def _at_most_log_keys(result, inputs) -> bool:
    keys = inputs["weights"].shape[-1]
    bound = torch.log(torch.tensor(float(keys), dtype=torch.float64)).item()
    return bool(torch.isfinite(result).all() and (result <= bound + 1e-4).all())


ATTENTION_ENTROPY = FunctionTask(
    id="ch29.attention_entropy",
    title="attention entropy per head",
    points=3,
    statement=r"""
        The entropy of one query's attention weights $a_1, \dots, a_{L_k}$ is
        $H(a) = -\sum_j a_j \log a_j$ (natural log, with $0 \log 0 = 0$): $0$ for a head that
        looks at one key, $\log L_k$ for one that spreads evenly. Write
        `attention_entropy(weights)` taking weights `(B, H, Lq, Lk)` (each row sums to 1; masked
        keys have weight exactly 0) and returning the `(H,)` mean entropy of each head, averaged
        over the batch and the queries.
        """,
    reference=attention_entropy,
    forbidden=("selfattn_course.debug.attention_entropy",),
    visible_cases=lambda: [
        Case(
            "by hand: head 0 one-hot (0), head 1 uniform over 4 keys (log 4)",
            {"weights": torch.tensor([[[[1.0, 0.0, 0.0, 0.0]], [[0.25, 0.25, 0.25, 0.25]]]])},
        ),
        Case("(2, 3, 4, 4) random weights", {"weights": _weights((2, 3, 4, 4), 1)}),
        Case("(1, 2, 4, 4) causal weights", {"weights": _weights((1, 2, 4, 4), 2, causal=True)}),
    ],
    hidden_cases=over_devices(_entropy_hidden),
    properties=(Property("every entropy is finite and at most log Lk", _at_most_log_keys),),
    mistakes=(
        Mistake(
            "you used log base 2 (bits); the task asks for nats (the natural log)",
            source="""
                def attention_entropy(weights):
                    terms = torch.special.xlogy(weights, weights) / math.log(2)
                    return -terms.sum(dim=-1).mean(dim=(0, 2))
                """,
        ),
        Mistake(
            "0 · log 0 gives nan where a key is masked (weight 0); take 0 log 0 = 0 "
            "(torch.special.xlogy, or add only where a > 0)",
            source="""
                def attention_entropy(weights):
                    return -(weights * torch.log(weights)).sum(dim=-1).mean(dim=(0, 2))
                """,
        ),
        Mistake(
            "you averaged over the keys instead of summing over them: the entropy is a sum "
            "over j of -a_j log a_j",
            source="""
                def attention_entropy(weights):
                    return -torch.special.xlogy(weights, weights).mean(dim=-1).mean(dim=(0, 2))
                """,
        ),
    ),
)


# --- task 3: median_latency -----------------------------------------------------------------------


def median_latency(times: tuple[float, ...], warmup: int) -> float:
    """The median of ``times`` after the first ``warmup`` runs are dropped (seconds in, out)."""
    return statistics.median(times[warmup:])


def _times(name: str, times: tuple[float, ...], warmup: int) -> Case:
    return Case(name, {"times": tuple(times), "warmup": warmup})


MEDIAN_LATENCY = FunctionTask(
    id="ch29.median_latency",
    title="a median latency after warm-up",
    points=2,
    statement=r"""
        A timing loop recorded `times`, the seconds of each call in order; the first `warmup`
        calls paid for one-off work (memory allocation, kernel loading, caches). Write
        `median_latency(times, warmup)` returning the median of the other calls (for an even
        count, the mean of the two middle values), as a Python float. `times` is a tuple.
        """,
    reference=median_latency,
    visible_cases=lambda: [
        _times(
            "by hand: (0.9, 0.010, 0.012, 0.011), warm-up 1 gives 0.011",
            (0.9, 0.01, 0.012, 0.011),
            1,
        ),
        _times(
            "an even count: (0.5, 0.3, 0.02, 0.01, 0.04, 0.03), warm-up 2",
            (0.5, 0.3, 0.02, 0.01, 0.04, 0.03),
            2,
        ),
    ],
    hidden_cases=lambda _devices: [
        _times("one slow outlier after warm-up", (2.0, 0.1, 0.1, 0.1, 5.0, 0.1, 0.1), 1),
        _times("no warm-up to drop", (0.3, 0.1, 0.2), 0),
        _times("unsorted, even count", (1.0, 0.7, 0.2, 0.9, 0.4, 0.6, 0.3, 0.8), 2),
        _times("three warm-up calls", (0.05, 0.04, 0.03, 0.002, 0.004, 0.001, 0.003, 0.005), 3),
    ],
    mistakes=(
        Mistake(
            "you took the mean: one slow call (a context switch, a garbage collection) moves it; "
            "the median is the middle of the sorted times",
            source="""
                def median_latency(times, warmup):
                    kept = times[warmup:]
                    return sum(kept) / len(kept)
                """,
        ),
        Mistake(
            "the warm-up calls are still in: drop the first `warmup` times before the median",
            source="""
                import statistics


                def median_latency(times, warmup):
                    return statistics.median(times)
                """,
        ),
        Mistake(
            "you took the middle of the unsorted times; sort them first",
            source="""
                def median_latency(times, warmup):
                    kept = times[warmup:]
                    return kept[len(kept) // 2]
                """,
        ),
    ),
    runner=returns_number,
)


# --- task 4: head_to_prune ------------------------------------------------------------------------

#: The loss of the full model and with each head masked, and the heads' mean entropies (nats).
FULL_LOSS = 0.210
MASKED_LOSSES = (0.215, 0.690, 0.209, 0.402)
HEAD_ENTROPIES = (2.3, 1.2, 0.9, 0.3)
HEAD_TO_PRUNE = min(range(len(MASKED_LOSSES)), key=lambda head: MASKED_LOSSES[head] - FULL_LOSS)

HEAD_TO_PRUNE_TASK = AnswerTask(
    id="ch29.head_to_prune",
    title="which head to prune",
    points=2,
    statement=r"""
        A four-head layer has validation loss 0.210. Masking one head at a time (its output set
        to zero) gives the losses 0.215, 0.690, 0.209 and 0.402 for heads 0, 1, 2 and 3; the
        heads' mean attention entropies are 2.3, 1.2, 0.9 and 0.3 nats. Following Michel et al.
        (2019), the importance of a head is the loss increase its masking causes. Which head
        would you prune first? Store its index, counted **from 0**, in `head_to_prune`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=HEAD_TO_PRUNE,
    properties=(Property("a head index is a whole number", whole_number),),
    mistakes=(
        Mistake(
            "head 1 is the most important (masking it costs the most): prune it last",
            source="""
                full_loss = 0.210
                masked_losses = [0.215, 0.690, 0.209, 0.402]
                importance = [loss - full_loss for loss in masked_losses]
                head_to_prune = max(range(len(importance)), key=lambda head: importance[head])
                """,
        ),
        Mistake(
            "a spread-out head (high entropy) is not for that reason useless: importance is "
            "measured by masking it",
            0,
        ),
        Mistake("the heads are counted from 0", 3),
    ),
)


TASKS = [ROC_POINTS, ATTENTION_ENTROPY, MEDIAN_LATENCY, HEAD_TO_PRUNE_TASK]
