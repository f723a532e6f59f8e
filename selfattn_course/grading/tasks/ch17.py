"""Chapter 17, external knowledge: per-example knowledge, cross-attention, retrieval, TransE.

References: the per-example masked mean of an example's knowledge vectors (task 1, written out
here), cross-attention from tokens to a knowledge table with missing entries masked (task 2, the
package's :func:`~selfattn_course.attention.scaled_dot_product_attention`, which the learner may
not call), top-k retrieval followed by attention (task 3, the package's
:func:`~selfattn_course.retrieval.retrieval_attention`, which the learner may not call either)
and the best tail of a TransE triple (task 4, worked out from the numbers in the statement).

Knowledge is ``(B, K, d)``, one table of ``K`` vectors per example, with a ``(B, K)`` boolean
``knowledge_mask``: True = the entry exists (may be attended to), False = a missing entry.
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Numbers
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS
from selfattn_course.retrieval import retrieval_attention


def _valid(batch: int, entries: int, counts, device="cpu") -> torch.Tensor:
    """``(batch, entries)`` bool: the first ``counts[b]`` entries of example ``b`` are valid."""
    positions = torch.arange(entries, device=device)
    return positions[None, :] < torch.tensor(counts, device=device)[:, None]


# --- task 1: add_knowledge_mean -------------------------------------------------------------------


def add_knowledge_mean(
    text_embedding: torch.Tensor, knowledge: torch.Tensor, knowledge_mask: torch.Tensor
) -> torch.Tensor:
    """``text_embedding (B, L, d) + mean of example b's valid knowledge (B, K, d)`` at every token;
    an example with no valid entry gets nothing added."""
    weights = knowledge_mask.to(knowledge.dtype)  # (B, K)
    counts = weights.sum(dim=-1, keepdim=True).clamp(min=1)  # (B, 1)
    mean = (weights.unsqueeze(-1) * knowledge).sum(dim=-2) / counts  # (B, d)
    return text_embedding + mean.unsqueeze(-2)


def _mean_inputs(batch, length, entries, d, counts, *, seed, dtype=torch.float32, device="cpu"):
    return {
        "text_embedding": C.randn((batch, length, d), seed=seed, dtype=dtype, device=device),
        "knowledge": C.randn((batch, entries, d), seed=seed + 1, dtype=dtype, device=device),
        "knowledge_mask": _valid(batch, entries, counts, device),
    }


def _examples_do_not_mix(out, inputs) -> bool:
    """Changing example 0's knowledge leaves the other examples' outputs alone."""
    if inputs["knowledge"].shape[0] < 2:
        return True
    knowledge = inputs["knowledge"].clone()
    knowledge[0] += 100.0
    other = add_knowledge_mean(inputs["text_embedding"], knowledge, inputs["knowledge_mask"])
    tolerance = 1e-4 if out.dtype == torch.float32 else 1e-9
    return bool(torch.allclose(out[1:], other[1:], rtol=tolerance, atol=tolerance))


def _mean_hidden(dtype, device) -> list[Case]:
    def inputs(*shape, counts, seed):
        return _mean_inputs(*shape, counts, seed=seed, dtype=dtype, device=device)

    return [
        Case(
            "4 examples, ragged knowledge (K = 6)", inputs(4, 5, 6, 3, counts=[6, 2, 4, 1], seed=10)
        ),
        Case("one example with no knowledge at all", inputs(3, 2, 4, 5, counts=[3, 0, 4], seed=12)),
        Case("a batch of 1, every entry valid", inputs(1, 7, 3, 4, counts=[3], seed=14)),
        Case("one token, one entry", inputs(2, 1, 1, 2, counts=[1, 1], seed=16)),
    ]


ADD_KNOWLEDGE_MEAN = FunctionTask(
    id="ch17.add_knowledge_mean",
    title="the per-example mean of the knowledge",
    points=3,
    statement=r"""
        Fix the Q&A's `knowledge_embedding`. Write
        `add_knowledge_mean(text_embedding, knowledge, knowledge_mask)`: `text_embedding` is
        `(B, L, d)`, `knowledge` `(B, K, d)` holds up to `K` knowledge vectors **per example**,
        and `knowledge_mask` `(B, K)` is True where an entry exists (False: padding). Add to
        every token of example $b$ the mean of that example's existing entries,
        $\bar{k}_b = \frac{1}{n_b} \sum_{j:\,\mathrm{mask}_{bj}} k_{bj}$ with $n_b$ the number of
        True entries of row $b$; an example with $n_b = 0$ gets nothing added (no NaN). Return
        the `(B, L, d)` result.
        """,
    reference=add_knowledge_mean,
    visible_cases=lambda: [
        Case(
            "by hand: entries [2, 2], [4, 4] and a missing [100, 100]: adds [3, 3] to each token",
            {
                "text_embedding": torch.zeros(1, 2, 2),
                "knowledge": torch.tensor([[[2.0, 2.0], [4.0, 4.0], [100.0, 100.0]]]),
                "knowledge_mask": torch.tensor([[True, True, False]]),
            },
        ),
        Case("3 examples, ragged knowledge", _mean_inputs(3, 4, 5, 3, [5, 2, 3], seed=1)),
    ],
    hidden_cases=over_devices(_mean_hidden),
    properties=(
        Property(
            "changing one example's knowledge leaves the other examples' outputs unchanged",
            _examples_do_not_mix,
        ),
    ),
    mistakes=(
        Mistake(
            "the mean is taken over the whole batch (dim 0 as well): each example gets the other "
            "examples' knowledge mixed in; average over the entries of one example (dim 1)",
            source="""
                def add_knowledge_mean(text_embedding, knowledge, knowledge_mask):
                    weights = knowledge_mask.to(knowledge.dtype)[..., None]
                    mean = (weights * knowledge).sum(dim=(0, 1)) / weights.sum().clamp(min=1)
                    return text_embedding + mean
                """,
        ),
        Mistake(
            "the missing entries are averaged in: only the entries where knowledge_mask is "
            "True count",
            lambda text_embedding, knowledge, knowledge_mask: (
                text_embedding + knowledge.mean(dim=1, keepdim=True)
            ),
        ),
        Mistake(
            "the sum of the existing entries is divided by K, not by their number n_b",
            source="""
                def add_knowledge_mean(text_embedding, knowledge, knowledge_mask):
                    weights = knowledge_mask.to(knowledge.dtype)[..., None]
                    mean = (weights * knowledge).sum(dim=1) / knowledge.shape[1]
                    return text_embedding + mean[:, None, :]
                """,
        ),
        Mistake(
            "an example with no existing entry gives 0 / 0 = NaN; add nothing to it",
            source="""
                def add_knowledge_mean(text_embedding, knowledge, knowledge_mask):
                    weights = knowledge_mask.to(knowledge.dtype)[..., None]
                    mean = (weights * knowledge).sum(dim=1) / weights.sum(dim=1)
                    return text_embedding + mean[:, None, :]
                """,
        ),
    ),
)


# --- task 2: knowledge_cross_attention ------------------------------------------------------------


def knowledge_cross_attention(
    x: torch.Tensor,
    knowledge: torch.Tensor,
    knowledge_mask: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
) -> torch.Tensor:
    """Tokens ``x (B, L, d_in)`` attend to their example's knowledge ``(B, K, d_kn)``, missing
    entries masked: ``(B, L, d_v)``, 0 for an example with no entry."""
    mask = knowledge_mask.unsqueeze(-2)  # (B, 1, K): the same entries for every token
    return scaled_dot_product_attention(x @ w_q, knowledge @ w_k, knowledge @ w_v, mask)


def _cross_inputs(batch, length, entries, counts, *, seed, dtype=torch.float32, device="cpu"):
    d_in, d_kn, d, d_v = 4, 3, 4, 2

    def tensor(shape, offset, scale=1.0):
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device, scale=scale)

    return {
        "x": tensor((batch, length, d_in), 0),
        "knowledge": tensor((batch, entries, d_kn), 1),
        "knowledge_mask": _valid(batch, entries, counts, device),
        "w_q": tensor((d_in, d), 2),
        "w_k": tensor((d_kn, d), 3),
        "w_v": tensor((d_kn, d_v), 4),
    }


def _missing_entries_are_ignored(out, inputs) -> bool:
    """Changing a missing entry's vector changes nothing."""
    knowledge = inputs["knowledge"].clone()
    knowledge[~inputs["knowledge_mask"]] = 50.0
    args = {**inputs, "knowledge": knowledge}
    tolerance = 1e-4 if out.dtype == torch.float32 else 1e-9
    return bool(
        torch.allclose(out, knowledge_cross_attention(**args), rtol=tolerance, atol=tolerance)
    )


def _cross_hidden(dtype, device) -> list[Case]:
    def inputs(*shape, counts, seed):
        return _cross_inputs(*shape, counts, seed=seed, dtype=dtype, device=device)

    return [
        Case(
            "4 examples, L = 5 tokens, K = 6, ragged", inputs(4, 5, 6, counts=[6, 3, 1, 5], seed=20)
        ),
        Case(
            "one example has no knowledge: its tokens get 0",
            inputs(3, 4, 3, counts=[3, 0, 2], seed=22),
        ),
        Case("more entries than tokens (L = 2, K = 9)", inputs(2, 2, 9, counts=[9, 7], seed=24)),
        Case("one token, one entry", inputs(1, 1, 1, counts=[1], seed=26)),
    ]


KNOWLEDGE_CROSS_ATTENTION = FunctionTask(
    id="ch17.knowledge_cross_attention",
    title="cross-attention to a knowledge table",
    points=3,
    statement=r"""
        Write `knowledge_cross_attention(x, knowledge, knowledge_mask, w_q, w_k, w_v)` from
        scratch: the tokens `x` `(B, L, d_in)` of example $b$ attend to that example's knowledge
        vectors `knowledge` `(B, K, d_kn)`, with queries $Q = x W_Q$, keys $K = \text{knowledge}\,
        W_K$, values $V = \text{knowledge}\, W_V$ (`w_q` `(d_in, d)`, `w_k` `(d_kn, d)`, `w_v`
        `(d_kn, d_v)`) and weights $\operatorname{softmax}(Q K^\top / \sqrt{d})$ over the
        **existing** entries only: `knowledge_mask` `(B, K)` is True where entry $j$ of example
        $b$ exists (True = may attend). Return `(B, L, d_v)`; the tokens of an example with no
        existing entry get 0 (not NaN). Do not call `scaled_dot_product_attention` (torch's or
        the package's), `nn.MultiheadAttention` or the package's `softmax`.
        """,
    reference=knowledge_cross_attention,
    visible_cases=lambda: [
        Case(
            "by hand: one token, entries [1, 0] and a missing [0, 1] with W_V = I: out = [1, 0]",
            {
                "x": torch.tensor([[[1.0, 1.0]]]),
                "knowledge": torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]),
                "knowledge_mask": torch.tensor([[True, False]]),
                "w_q": torch.eye(2),
                "w_k": torch.eye(2),
                "w_v": torch.eye(2),
            },
        ),
        Case("3 examples, ragged knowledge", _cross_inputs(3, 4, 5, [5, 2, 4], seed=2)),
    ],
    hidden_cases=over_devices(_cross_hidden),
    properties=(
        Property(
            "the vectors of missing entries do not change the output", _missing_entries_are_ignored
        ),
    ),
    mistakes=(
        Mistake(
            "the mask is not applied: missing entries get attention weight too",
            lambda x, knowledge, knowledge_mask, w_q, w_k, w_v: scaled_dot_product_attention(
                x @ w_q, knowledge @ w_k, knowledge @ w_v
            ),
        ),
        Mistake(
            "the scores are not divided by sqrt(d), d the width of the queries and keys",
            lambda x, knowledge, knowledge_mask, w_q, w_k, w_v: scaled_dot_product_attention(
                x @ w_q, knowledge @ w_k, knowledge @ w_v, knowledge_mask[:, None, :], scale=1.0
            ),
        ),
        Mistake(
            "an example with no existing entry gives NaN (a softmax over only -inf); its tokens "
            "must get 0",
            source="""
                def knowledge_cross_attention(x, knowledge, knowledge_mask, w_q, w_k, w_v):
                    q, k, v = x @ w_q, knowledge @ w_k, knowledge @ w_v
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    scores = scores.masked_fill(~knowledge_mask[:, None, :], float("-inf"))
                    return torch.softmax(scores, dim=-1) @ v
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


# --- task 3: retrieve_then_attend -----------------------------------------------------------------


def retrieve_then_attend(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, k: int
) -> torch.Tensor:
    """Top-``k`` entries of the memory by dot product, then scaled dot-product attention over
    them: ``(B, Lq, d)``, ``(M, d)``, ``(M, dv)`` -> ``(B, Lq, dv)``."""
    return retrieval_attention(queries, keys, values, k)


def _memory(batch, lq, m, d, dv, *, seed, dtype=torch.float32, device="cpu"):
    def tensor(shape, offset):
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device)

    return {
        "queries": tensor((batch, lq, d), 0),
        "keys": tensor((m, d), 1),
        "values": tensor((m, dv), 2),
    }


def _retrieval_hidden(dtype, device) -> list[Case]:
    def case(name, *shape, k, seed):
        return Case(name, {**_memory(*shape, seed=seed, dtype=dtype, device=device), "k": k})

    return [
        case("B = 3, Lq = 4, memory of 50, k = 5", 3, 4, 50, 6, 3, k=5, seed=30),
        case("k = 1: the value of the best key", 2, 3, 20, 4, 4, k=1, seed=32),
        case("k = M: full attention over the memory", 2, 2, 7, 3, 2, k=7, seed=34),
        case("one query, memory of 200, k = 8", 1, 1, 200, 8, 5, k=8, seed=36),
    ]


RETRIEVE_THEN_ATTEND = FunctionTask(
    id="ch17.retrieve_then_attend",
    title="top-k retrieval, then attention",
    points=2,
    statement=r"""
        A memory holds `M` entries: keys `keys` `(M, d)` and values `values` `(M, dv)`, the same
        for every query. Write `retrieve_then_attend(queries, keys, values, k)` for `queries`
        `(B, Lq, d)`: for each query $q$, find the `k` keys with the **largest dot product**
        $q \cdot k_j$, then attend to those `k` entries only, with weights
        $\operatorname{softmax}_j(q \cdot k_j / \sqrt{d})$ over the retrieved $j$ and output
        $\sum_j \alpha_j v_j$. Return `(B, Lq, dv)`. (`torch.topk` and indexing `keys[indices]`
        are the tools.) Do not call the package's `selfattn_course.retrieval` functions or any
        attention built-in.
        """,
    reference=retrieve_then_attend,
    visible_cases=lambda: [
        Case(
            "by hand: k = 1 returns the value of the key with the largest dot product (key 2)",
            {
                "queries": torch.tensor([[[1.0, 0.5]]]),
                "keys": torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]]),
                "values": torch.tensor([[1.0], [2.0], [3.0], [4.0]]),
                "k": 1,
            },
        ),
        Case("B = 2, Lq = 3, memory of 12, k = 3", {**_memory(2, 3, 12, 4, 2, seed=3), "k": 3}),
    ],
    hidden_cases=over_devices(_retrieval_hidden),
    mistakes=(
        Mistake(
            "the softmax runs over the whole memory, not over the k retrieved entries",
            lambda queries, keys, values, k: scaled_dot_product_attention(queries, keys, values),
        ),
        Mistake(
            "the k entries with the smallest dot products are retrieved; topk must take the "
            "largest",
            source="""
                def retrieve_then_attend(queries, keys, values, k):
                    indices = (queries @ keys.T).topk(k, dim=-1, largest=False).indices
                    chosen_keys, chosen_values = keys[indices], values[indices]
                    scores = (chosen_keys @ queries[..., None]).squeeze(-1)
                    weights = torch.softmax(scores / queries.shape[-1] ** 0.5, dim=-1)
                    return (weights[..., None, :] @ chosen_values).squeeze(-2)
                """,
        ),
        Mistake(
            "the entries are chosen by cosine similarity; the task retrieves by dot product",
            lambda queries, keys, values, k: retrieval_attention(
                queries, keys, values, k, metric="cosine"
            ),
        ),
    ),
    forbidden=(
        *ATTENTION_BUILTINS,
        "selfattn_course.retrieval.retrieval_attention",
        "selfattn_course.retrieval.attend_to_entries",
        "selfattn_course.retrieval.nearest_neighbours",
    ),
)


# --- task 4: transe_best_tail ---------------------------------------------------------------------

#: Head entity, relation and four candidate tails of a TransE model (d = 2).
TRANSE_HEAD = (1.0, 0.0)
TRANSE_RELATION = (0.0, 1.0)
TRANSE_TAILS = ((1.0, 2.0), (1.2, 0.9), (0.0, 1.0), (2.0, 2.0))


def _transe_answer(head, relation, tails) -> tuple[float, float]:
    """The index of the tail nearest ``head + relation`` (L2) and that distance."""
    head, relation, tails = torch.tensor(head), torch.tensor(relation), torch.tensor(tails)
    distances = (head + relation - tails).norm(dim=-1)
    best = int(distances.argmin())
    return best, float(distances[best])


TRANSE_BEST_TAIL = AnswerTask(
    id="ch17.transe_best_tail",
    title="the best tail under TransE",
    points=2,
    statement=r"""
        TransE embeds a triple (head, relation, tail) so that $h + r \approx t$, and scores it
        by the distance $\lVert h + r - t \rVert_2$ (smaller is more plausible). With
        $h = (1, 0)$, $r = (0, 1)$ and the four candidate tails $t_0 = (1, 2)$,
        $t_1 = (1.2, 0.9)$, $t_2 = (0, 1)$, $t_3 = (2, 2)$: which tail completes the triple
        best, and at what distance? Store `transe_best_tail = (index, distance)`, e.g. `(0, 1.5)`.
        """,
    answer_type=Numbers(count=2, rtol=1e-3, atol=1e-3),
    expected=_transe_answer(TRANSE_HEAD, TRANSE_RELATION, TRANSE_TAILS),
    properties=(
        Property(
            "the index is one of the tails, 0 to 3", lambda answer, _inputs: 0 <= answer[0] <= 3
        ),
        Property("a distance is not negative", lambda answer, _inputs: answer[1] >= 0),
    ),
    mistakes=(
        Mistake(
            "that is the tail with the largest dot product with h; TransE measures the distance "
            "from h + r to t",
            source="""
                head, relation = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
                tails = torch.tensor([[1.0, 2.0], [1.2, 0.9], [0.0, 1.0], [2.0, 2.0]])
                scores = tails @ head
                transe_best_tail = (int(scores.argmax()), float(scores.max()))
                """,
        ),
        Mistake(
            "that is the tail nearest h - r; TransE translates the head by +r",
            _transe_answer(TRANSE_HEAD, tuple(-x for x in TRANSE_RELATION), TRANSE_TAILS),
        ),
        Mistake(
            "that is the tail nearest h itself: the relation r is left out",
            _transe_answer(TRANSE_HEAD, (0.0, 0.0), TRANSE_TAILS),
        ),
    ),
)


TASKS = [ADD_KNOWLEDGE_MEAN, KNOWLEDGE_CROSS_ATTENTION, RETRIEVE_THEN_ATTEND, TRANSE_BEST_TAIL]
