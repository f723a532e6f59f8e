"""Chapter 19, attention masks: build the common masks, then apply one where it belongs.

References: the package's masks (:func:`~selfattn_course.masks.padding_mask`,
:func:`~selfattn_course.masks.causal_mask` with ``align="bottom-right"``,
:func:`~selfattn_course.masks.prefix_lm_mask`) and its
:func:`~selfattn_course.attention.scaled_dot_product_attention`. While the learner's code runs it
may not call the reference of its task, nor torch's or the package's attention and softmax in the
masked-attention task. The last task is a question about what a combined mask allows.
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
from selfattn_course.grading.spec.answers import IndexSet
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS, MASK_BUILTINS
from selfattn_course.masks import causal_mask, padding_mask, prefix_lm_mask


def _is_boolean(result, _inputs) -> bool:
    return isinstance(result, torch.Tensor) and result.dtype == torch.bool


# --- task 1: padding_mask_from_lengths ------------------------------------------------------------


def padding_mask_from_lengths(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` integer lengths -> ``(B, max_len)`` bool, True for a real token (``j < length``)."""
    return padding_mask(lengths, max_len)


def _lengths_case(name, lengths, max_len, dtype=torch.int64, device="cpu"):
    return Case(
        name,
        {"lengths": torch.tensor(lengths, dtype=dtype, device=device), "max_len": max_len},
    )


def _padding_hidden(dtype, device) -> list[Case]:
    def case(name, lengths, max_len):
        return _lengths_case(name, lengths, max_len, dtype, device)

    return [
        case("lengths [3, 5], max_len 5", [3, 5], 5),
        case("more padding than the longest: [2, 1, 4], max_len 7", [2, 1, 4], 7),
        case("an empty sequence: [0, 3], max_len 3", [0, 3], 3),
        case("one sequence of length 1", [1], 1),
    ]


PADDING_MASK = FunctionTask(
    id="ch19.padding_mask_from_lengths",
    title="a padding mask from lengths",
    points=1,
    statement=r"""
        A batch of $B$ sequences is padded on the right to `max_len` tokens; `lengths` `(B,)`
        (an integer tensor) holds each sequence's real length. Write
        `padding_mask_from_lengths(lengths, max_len)` returning the `(B, max_len)` boolean mask
        that is True at the real tokens, $\text{mask}[b, j] = (j < \text{lengths}[b])$, on the
        device of `lengths`.
        """,
    reference=padding_mask_from_lengths,
    visible_cases=lambda: [
        _lengths_case(
            "by hand: lengths [3, 5], max_len 5 gives [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]",
            [3, 5],
            5,
        ),
        _lengths_case("lengths [1, 4, 2], max_len 6", [1, 4, 2], 6),
    ],
    hidden_cases=over_devices(_padding_hidden, dtypes=(torch.int64, torch.int32)),
    properties=(Property("the mask is boolean (torch.bool)", _is_boolean),),
    mistakes=(
        Mistake(
            "this is the seed's mask, arange(B)[:, None] < arange(max_len)[None, :]: it never "
            "reads the lengths; compare the positions with lengths[:, None]",
            source="""
                def padding_mask_from_lengths(lengths, max_len):
                    rows = torch.arange(len(lengths), device=lengths.device)
                    return rows[:, None] < torch.arange(max_len, device=lengths.device)[None, :]
                """,
        ),
        Mistake(
            "off by one: position j is real when j < length (positions start at 0), "
            "not j <= length",
            source="""
                def padding_mask_from_lengths(lengths, max_len):
                    positions = torch.arange(max_len, device=lengths.device)
                    return positions[None, :] <= lengths[:, None]
                """,
        ),
    ),
    forbidden=MASK_BUILTINS,
)


# --- task 2: causal_bottom_right ------------------------------------------------------------------


def causal_bottom_right(lq: int, lk: int) -> torch.Tensor:
    """``(Lq, Lk)`` bool: the queries are the last ``Lq`` of ``Lk`` positions,
    ``mask[i, j] = j <= i + Lk - Lq``."""
    return causal_mask(lq, lk, align="bottom-right")


def _last_query_sees_every_key(result, inputs) -> bool:
    return result.shape[0] == 0 or result.shape[1] == 0 or bool(result[-1].all())


CAUSAL_BOTTOM_RIGHT = FunctionTask(
    id="ch19.causal_bottom_right",
    title="a causal mask for cached decoding",
    points=2,
    statement=r"""
        With a KV cache the $L_q$ new queries are the **last** $L_q$ of the $L_k \ge L_q$
        positions whose keys are in the cache. Write `causal_bottom_right(lq, lk)` returning the
        `(lq, lk)` boolean mask (on the CPU) in which query $i$ may attend to key $j$ exactly
        when key $j$ is not later than query $i$'s position, $j \le i + L_k - L_q$.
        """,
    reference=causal_bottom_right,
    visible_cases=lambda: [
        plain_numbers("by hand: lq = 2, lk = 4 gives [[1, 1, 1, 0], [1, 1, 1, 1]]", lq=2, lk=4),
        plain_numbers("lq = lk = 3: the usual causal mask", lq=3, lk=3),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("one new token: lq = 1, lk = 9", lq=1, lk=9),
        plain_numbers("lq = 3, lk = 8", lq=3, lk=8),
        plain_numbers("lq = lk = 5", lq=5, lk=5),
        plain_numbers("lq = 1, lk = 1", lq=1, lk=1),
    ],
    properties=(
        Property("the mask is boolean (torch.bool)", _is_boolean),
        Property("the last query (the newest token) sees every key", _last_query_sees_every_key),
    ),
    mistakes=(
        Mistake(
            "this is the top-left mask (torch's is_causal, tril): it treats the new queries as "
            "positions 0..Lq-1 and hides most of the cache; shift the diagonal by Lk - Lq",
            source="""
                def causal_bottom_right(lq, lk):
                    return torch.ones(lq, lk, dtype=torch.bool).tril()
                """,
        ),
        Mistake(
            "the diagonal is shifted the wrong way: query i sits at position i + (Lk - Lq)",
            source="""
                def causal_bottom_right(lq, lk):
                    return torch.ones(lq, lk, dtype=torch.bool).tril(lq - lk)
                """,
        ),
    ),
    forbidden=MASK_BUILTINS,
)


# --- task 3: prefix_lm ----------------------------------------------------------------------------


def prefix_lm(length: int, prefix: int) -> torch.Tensor:
    """``(L, L)`` bool: ``mask[i, j] = j <= i or j < prefix``."""
    return prefix_lm_mask(length, prefix)


PREFIX_LM = FunctionTask(
    id="ch19.prefix_lm",
    title="a prefix-LM mask",
    points=2,
    statement=r"""
        A prefix language model reads its first $p$ tokens (the prompt) in both directions and
        generates the rest causally: every query sees the whole prefix, and a query past the
        prefix also sees the keys up to itself, $\text{mask}[i, j] = (j \le i) \lor (j < p)$.
        No query may see a key that is both past the prefix and later than itself. Write
        `prefix_lm(length, prefix)` returning this `(length, length)` boolean mask (on the CPU).
        """,
    reference=prefix_lm,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: length 4, prefix 2 gives [[1,1,0,0], [1,1,0,0], [1,1,1,0], [1,1,1,1]]",
            length=4,
            prefix=2,
        ),
        plain_numbers("length 6, prefix 3", length=6, prefix=3),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("no prefix: the causal mask", length=5, prefix=0),
        plain_numbers("all prefix: the full mask", length=4, prefix=4),
        plain_numbers("prefix of 1", length=7, prefix=1),
        plain_numbers("length 9, prefix 5", length=9, prefix=5),
    ],
    properties=(Property("the mask is boolean (torch.bool)", _is_boolean),),
    mistakes=(
        Mistake(
            "the prefix's queries see every key, the target's included: that leaks the "
            "tokens to be generated into the prefix; allow the prefix's keys (j < p), not "
            "the prefix's queries (i < p)",
            source="""
                def prefix_lm(length, prefix):
                    i = torch.arange(length)[:, None]
                    j = torch.arange(length)[None, :]
                    return (j <= i) | (i < prefix)
                """,
        ),
        Mistake(
            "off by one: the prefix is keys 0..p-1 (j < p), not 0..p",
            source="""
                def prefix_lm(length, prefix):
                    i = torch.arange(length)[:, None]
                    j = torch.arange(length)[None, :]
                    return (j <= i) | (j <= prefix)
                """,
        ),
    ),
    forbidden=MASK_BUILTINS,
)


# --- task 4: masked_attention ---------------------------------------------------------------------


def masked_attention(q, k, v, mask):
    """``softmax(q kᵀ/√d, masked) v``: ``(..., Lq, d), (..., Lk, d), (..., Lk, dv)`` and a bool
    ``mask`` (True = may attend) broadcastable to ``(..., Lq, Lk)`` -> ``(..., Lq, dv)``; a query
    with no allowed key gets 0."""
    return scaled_dot_product_attention(q, k, v, mask)


def _masked_case(name, *, batch, lq, lk, mask, seed, d=8, dtype=torch.float32, device="cpu"):
    inputs = C.qkv(batch=batch, lq=lq, lk=lk, d=d, seed=seed, dtype=dtype, device=device)
    return Case(name, {**inputs, "mask": mask.to(device)})


def _masked_hidden(dtype, device) -> list[Case]:
    def case(name, **kwargs):
        return _masked_case(name, dtype=dtype, device=device, **kwargs)

    valid = C.padding_valid([6, 4, 1], 6)
    padded_causal = valid[:, None, None, :] & causal_mask(6)
    left_valid = torch.tensor([[False, False, True, True, True], [True, True, True, True, True]])
    left_padded_causal = left_valid[:, None, None, :] & causal_mask(5)  # query 0 of row 0: none
    return [
        case(
            "padding (B, 1, 1, Lk) AND causal (Lq, Lk), lengths [6, 4, 1], 2 heads",
            batch=(3, 2),
            lq=6,
            lk=6,
            mask=padded_causal,
            seed=40,
        ),
        case(
            "left padding with a causal mask: two queries see no key",
            batch=(2, 1),
            lq=5,
            lk=5,
            mask=left_padded_causal,
            seed=41,
        ),
        case(
            "bottom-right causal (Lq, Lk) = (3, 7)",
            batch=(2, 2),
            lq=3,
            lk=7,
            mask=causal_mask(3, 7, align="bottom-right"),
            seed=42,
        ),
        case(
            "random mask (2, 4, 5, 9) with fully masked rows",
            batch=(2, 4),
            lq=5,
            lk=9,
            mask=C.random_mask((2, 4, 5, 9), seed=43, blocked_rows=((0, 1, 2), (1, 3, 0))),
            seed=44,
        ),
        case(
            "wide heads, d = 64, causal",
            batch=(2,),
            lq=4,
            lk=4,
            d=64,
            mask=causal_mask(4),
            seed=45,
        ),
    ]


def _masked_visible() -> list[Case]:
    valid = C.padding_valid([3, 5], 5)
    return [
        _masked_case(
            "padding only: lengths [3, 5], mask (2, 1, 1, 5)",
            batch=(2, 1),
            lq=5,
            lk=5,
            mask=valid[:, None, None, :],
            seed=1,
        ),
        _masked_case(
            "padding AND causal: mask (2, 1, 5, 5); query 0 of a sequence that starts with "
            "padding sees no key and must give 0",
            batch=(2, 1),
            lq=5,
            lk=5,
            mask=torch.tensor([[False, True, True, True, True], [True] * 5])[:, None, None, :]
            & causal_mask(5),
            seed=2,
        ),
    ]


MASKED_ATTENTION = FunctionTask(
    id="ch19.masked_attention",
    title="apply a mask in attention",
    points=4,
    statement=r"""
        Write `masked_attention(q, k, v, mask)`: scaled dot-product attention
        $\operatorname{softmax}(QK^\top/\sqrt{d})\,V$ in which `mask` (boolean, True = may
        attend, broadcastable to the scores `(..., Lq, Lk)`, e.g. `(B, 1, 1, Lk)` or
        `(Lq, Lk)`) decides which **scores** take part in the softmax. A blocked key must get
        weight exactly 0 and the allowed weights of a row must still sum to 1; a query with
        **no** allowed key must give an output of 0, not NaN. `q` is `(..., Lq, d)`, `k`
        `(..., Lk, d)`, `v` `(..., Lk, dv)`; return the output `(..., Lq, dv)` in the dtype and on
        the device of `q`.
        """,
    reference=masked_attention,
    visible_cases=_masked_visible,
    hidden_cases=over_devices(_masked_hidden),
    mistakes=(
        Mistake(
            "the weights are zeroed after the softmax (the seed's \"set the weight of padding to "
            '0"): the kept weights no longer sum to 1; mask the scores before the softmax',
            source="""
                def masked_attention(q, k, v, mask):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    weights = torch.softmax(scores, dim=-1) * mask
                    return weights @ v
                """,
        ),
        Mistake(
            "a query with no allowed key gives NaN (softmax of a row of -inf is 0/0); give "
            "such a row weights 0",
            source="""
                def masked_attention(q, k, v, mask):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    scores = scores.masked_fill(~mask, float("-inf"))
                    return torch.softmax(scores, dim=-1) @ v
                """,
        ),
        Mistake(
            "the mask is read the other way round (True = blocked, nn.MultiheadAttention's "
            "convention); here True = may attend",
            source="""
                def masked_attention(q, k, v, mask):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    scores = scores.masked_fill(mask, float("-inf"))
                    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
                    return weights @ v
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS + MASK_BUILTINS,
)


# --- task 5: keys_seen ----------------------------------------------------------------------------

KEYS_SEEN = AnswerTask(
    id="ch19.keys_seen",
    title="what a combined mask allows",
    points=1,
    statement=r"""
        A decoder gets a sequence of 4 real tokens padded on the right to 6 positions, with the
        mask `combine(key_padding_to_attention(padding_mask([4], 6)), causal_mask(6))`
        (True = may attend). Query 5 is a padding position. Which keys may query 5 attend to?
        Store their indices as a set in `keys_seen`.
        """,
    answer_type=IndexSet(size=6),
    expected=frozenset({0, 1, 2, 3}),
    properties=(
        Property(
            "the set is not empty: a key padding mask blocks keys, not queries",
            lambda keys, _: len(keys) > 0,
        ),
    ),
    mistakes=(
        Mistake(
            "the padding mask blocks the padding *keys* 4 and 5 for every query",
            source="keys_seen = {0, 1, 2, 3, 4, 5}",
        ),
        Mistake(
            "the causal mask lets query 5 see keys 0..5, and padding removes some of them",
            source="keys_seen = {5}",
        ),
    ),
)


TASKS = [PADDING_MASK, CAUSAL_BOTTOM_RIGHT, PREFIX_LM, MASKED_ATTENTION, KEYS_SEEN]
