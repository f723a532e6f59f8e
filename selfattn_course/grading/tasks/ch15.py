"""Chapter 15, machine translation: the masks of an encoder–decoder, greedy decoding, its cost.

References: ``decoder_masks`` is the package's
:func:`~selfattn_course.seq2seq.encoder_decoder_masks` (its decoder and cross masks);
``greedy_tokens`` is written out here (a decoding loop over a table of next-token logits, the
loop of :func:`~selfattn_course.seq2seq.greedy_decode` without the model); the number is
computed here. While ``decoder_masks`` runs, the learner may not call the package's mask
builders (``selfattn_course.masks``, ``encoder_decoder_masks``): the task is to build them.
"""

from __future__ import annotations

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
from selfattn_course.grading.spec.predicates import positive, whole_number
from selfattn_course.grading.verdicts.forbid import MASK_BUILTINS
from selfattn_course.seq2seq import encoder_decoder_masks

#: What building the masks by hand may not call.
MASKS_FROM_SCRATCH = ("selfattn_course.seq2seq.encoder_decoder_masks", *MASK_BUILTINS)

# --- task 1: decoder_masks ------------------------------------------------------------------------


def decoder_masks(
    src_lengths: torch.Tensor, tgt_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's two masks for a right-padded batch (True = may attend).

    ``self_mask`` ``(B, 1, T, T)``: ``j <= i`` and ``j < tgt_lengths[b]``;
    ``cross_mask`` ``(B, 1, T, S)``: ``j < src_lengths[b]``; ``S``, ``T`` the longest lengths.
    """
    masks = encoder_decoder_masks(src_lengths, tgt_lengths)
    return masks.decoder, masks.cross.contiguous()


def _lengths(values, device) -> dict:
    src, tgt = values
    return {
        "src_lengths": torch.tensor(src, device=device),
        "tgt_lengths": torch.tensor(tgt, device=device),
    }


def _masks_hidden(device) -> list[Case]:
    return [
        Case("three sentences, S = 6, T = 5", _lengths(([6, 2, 4], [3, 5, 1]), device)),
        Case("one sentence, nothing padded", _lengths(([4], [4]), device)),
        Case("length-1 source and target", _lengths(([1, 1], [1, 1]), device)),
        Case("source longer than target", _lengths(([9, 7], [2, 3]), device)),
        Case("target longer than source", _lengths(([2, 1, 3], [8, 6, 7]), device)),
    ]


def _blocks_the_future(result, _inputs) -> bool:
    self_mask = result[0]
    target = self_mask.shape[-1]
    future = torch.ones(target, target, dtype=torch.bool, device=self_mask.device).triu(1)
    return not bool((self_mask & future).any())


def _cross_rows_agree(result, _inputs) -> bool:
    cross = result[1]
    return bool((cross == cross[..., :1, :]).all())


DECODER_MASKS = FunctionTask(
    id="ch15.decoder_masks",
    title="the decoder's two masks",
    points=4,
    statement=r"""
        A batch of $B$ source sentences of real lengths `src_lengths` `(B,)` and target
        (decoder input) sentences of real lengths `tgt_lengths` `(B,)` is right-padded to
        $S$ = `max(src_lengths)` and $T$ = `max(tgt_lengths)`. Write
        `decoder_masks(src_lengths, tgt_lengths)` returning the tuple `(self_mask, cross_mask)`
        of boolean tensors, True = may attend, on the device of the lengths:
        `self_mask` `(B, 1, T, T)` for the decoder's self-attention (query $i$ may attend to
        key $j$ when $j \le i$ and $j$ is a real target token) and `cross_mask` `(B, 1, T, S)`
        for its cross-attention over the encoder's outputs (any target query may attend to key
        $j$ when $j$ is a real source token). Only keys are masked, never queries. Build the
        masks with torch: the package's mask builders are not allowed here.
        """,
    reference=decoder_masks,
    visible_cases=lambda: [
        Case(
            "by hand: sources of 2 and 3 tokens, targets of 3 and 1: cross rows [1, 1, 0] and "
            "[1, 1, 1]; the second self_mask has only column 0",
            _lengths(([2, 3], [3, 1]), "cpu"),
        ),
        Case("four sentences, S = 5, T = 6", _lengths(([5, 1, 3, 2], [6, 2, 4, 1]), "cpu")),
    ],
    hidden_cases=over_devices_only(_masks_hidden),
    properties=(
        Property(
            "no query of the decoder's self-attention sees a later position", _blocks_the_future
        ),
        Property(
            "every target query of the cross-attention sees the same source keys",
            _cross_rows_agree,
        ),
    ),
    mistakes=(
        Mistake(
            "the decoder's self-attention also needs the causal mask: position i may not see "
            "the target tokens after it (at training time they are the answers)",
            source="""
                def decoder_masks(src_lengths, tgt_lengths):
                    S, T = int(src_lengths.max()), int(tgt_lengths.max())
                    d = src_lengths.device
                    tgt_real = torch.arange(T, device=d)[None, :] < tgt_lengths[:, None]
                    src_real = torch.arange(S, device=d)[None, :] < src_lengths[:, None]
                    self_mask = tgt_real[:, None, None, :].expand(-1, 1, T, T)
                    cross_mask = src_real[:, None, None, :].expand(-1, 1, T, S)
                    return self_mask, cross_mask
                """,
        ),
        Mistake(
            "the causal mask is transposed: query i may attend to keys j <= i (tril), not j >= i",
            source="""
                def decoder_masks(src_lengths, tgt_lengths):
                    S, T = int(src_lengths.max()), int(tgt_lengths.max())
                    d = src_lengths.device
                    tgt_real = torch.arange(T, device=d)[None, :] < tgt_lengths[:, None]
                    src_real = torch.arange(S, device=d)[None, :] < src_lengths[:, None]
                    causal = torch.ones(T, T, dtype=torch.bool, device=d).triu()
                    self_mask = tgt_real[:, None, None, :] & causal
                    cross_mask = src_real[:, None, None, :].expand(-1, 1, T, S)
                    return self_mask, cross_mask
                """,
        ),
        Mistake(
            "the decoder's self-attention must also block padded target keys: a short "
            "target's queries must not attend to the padding after it",
            source="""
                def decoder_masks(src_lengths, tgt_lengths):
                    S, T = int(src_lengths.max()), int(tgt_lengths.max())
                    d = src_lengths.device
                    src_real = torch.arange(S, device=d)[None, :] < src_lengths[:, None]
                    causal = torch.ones(T, T, dtype=torch.bool, device=d).tril()
                    self_mask = causal.expand(len(tgt_lengths), 1, T, T)
                    cross_mask = src_real[:, None, None, :].expand(-1, 1, T, S)
                    return self_mask, cross_mask
                """,
        ),
        Mistake(
            "the cross-attention masks the padded source keys (columns), not the padded target "
            "queries (rows)",
            source="""
                def decoder_masks(src_lengths, tgt_lengths):
                    S, T = int(src_lengths.max()), int(tgt_lengths.max())
                    d = src_lengths.device
                    tgt_real = torch.arange(T, device=d)[None, :] < tgt_lengths[:, None]
                    causal = torch.ones(T, T, dtype=torch.bool, device=d).tril()
                    self_mask = tgt_real[:, None, None, :] & causal
                    cross_mask = tgt_real[:, None, :, None].expand(-1, 1, T, S)
                    return self_mask, cross_mask
                """,
        ),
    ),
    forbidden=MASKS_FROM_SCRATCH,
)


# --- task 2: greedy_tokens ------------------------------------------------------------------------

#: The padding id written after a sentence's end token.
PAD_ID = 0


def greedy_tokens(table: torch.Tensor, start: torch.Tensor, eos: int, max_len: int) -> torch.Tensor:
    """Greedy decoding with a table of next-token logits: ``(B, max_len)`` token ids.

    ``table`` ``(V, V)``: ``table[a]`` are the logits of the token after ``a``. Each row starts
    from ``start[b]``, appends ``argmax(table[last])``, and after its first ``eos`` holds
    ``PAD_ID`` (0).
    """
    last = start
    finished = torch.zeros_like(start, dtype=torch.bool)
    tokens = []
    for _ in range(max_len):
        choice = table[last].argmax(dim=-1)  # (B,)
        choice = torch.where(finished, torch.full_like(choice, PAD_ID), choice)
        tokens.append(choice)
        finished = finished | (choice == eos)
        last = choice
    return torch.stack(tokens, dim=1)


def _table(vocab, seed, dtype=torch.float32, device="cpu"):
    return C.randn((vocab, vocab), seed=seed, dtype=dtype, device=device)


def _greedy_case(vocab, batch, eos, max_len, seed, dtype=torch.float32, device="cpu") -> dict:
    generator = torch.Generator().manual_seed(seed + 1)
    start = torch.randint(1, vocab, (batch,), generator=generator).to(device)
    return {
        "table": _table(vocab, seed, dtype, device),
        "start": start,
        "eos": eos,
        "max_len": max_len,
    }


def _chain_table(dtype=torch.float32, device="cpu"):
    """By hand: 1 -> 3 -> 4 -> 2 (the end token) -> 3 ...; 5 -> 2; the largest logit is 1."""
    table = torch.zeros(6, 6, dtype=dtype, device=device)
    for a, b in [(1, 3), (3, 4), (4, 2), (2, 3), (5, 2), (0, 0)]:
        table[a, b] = 1.0
    return table


def _greedy_hidden(dtype, device) -> list[Case]:
    def case(*args):
        return _greedy_case(*args, dtype=dtype, device=device)

    chain = {
        "table": _chain_table(dtype, device),
        "start": torch.tensor([5, 1, 3], device=device),
        "eos": 2,
        "max_len": 6,
    }
    return [
        Case("by hand: chains of 1, 3 and 2 tokens to the end token", chain),
        Case("random table, 6 sentences, vocabulary 8", case(8, 6, 2, 10, 30)),
        Case("random table, one sentence, max_len 1", case(5, 1, 2, 1, 31)),
        Case("vocabulary 20, end token 7, 4 sentences", case(20, 4, 7, 15, 32)),
    ]


def _pad_after_end(result, inputs) -> bool:
    eos = inputs["eos"]
    seen = torch.cumsum((result == eos).long(), dim=1)
    after = (seen - (result == eos).long()) > 0  # positions after the first end token
    return bool((result[after] == PAD_ID).all())


GREEDY_TOKENS = FunctionTask(
    id="ch15.greedy_tokens",
    title="a greedy decoding loop with an end token",
    points=4,
    statement=r"""
        A tiny "decoder" gives the logits of the next token from the last token alone:
        `table` `(V, V)`, row `table[a]` for the token after `a`. Write
        `greedy_tokens(table, start, eos, max_len)`: for each of the $B$ sentences, starting
        from the token `start[b]` (`start` is `(B,)`, int64), generate `max_len` tokens, each
        the argmax of the logits after the token generated just before it (after `start[b]` for
        the first). Once a sentence has generated `eos` it is finished: keep the `eos` and write
        `0` (padding) in each of its later places. Return the `(B, max_len)` int64 tensor of
        generated tokens (not `start`), on the device of `table`.
        """,
    reference=greedy_tokens,
    visible_cases=lambda: [
        Case(
            "by hand: 5 -> 2 (end); 1 -> 3 -> 4 -> 2 (end); 3 -> 4 -> 2 (end); then padding",
            {
                "table": _chain_table(),
                "start": torch.tensor([5, 1, 3]),
                "eos": 2,
                "max_len": 5,
            },
        ),
        Case("random table, 3 sentences, vocabulary 6", _greedy_case(6, 3, 2, 8, 3)),
    ],
    hidden_cases=over_devices(_greedy_hidden),
    properties=(Property("after a sentence's end token come only zeros", _pad_after_end),),
    mistakes=(
        Mistake(
            "a finished sentence must stop: after its end token write 0 (padding), do not keep "
            "generating",
            source="""
                def greedy_tokens(table, start, eos, max_len):
                    last, tokens = start, []
                    for _ in range(max_len):
                        last = table[last].argmax(dim=-1)
                        tokens.append(last)
                    return torch.stack(tokens, dim=1)
                """,
        ),
        Mistake(
            "the end token itself is part of the output: pad only the places after it",
            source="""
                def greedy_tokens(table, start, eos, max_len):
                    last, tokens = start, []
                    finished = torch.zeros_like(start, dtype=torch.bool)
                    for _ in range(max_len):
                        choice = table[last].argmax(dim=-1)
                        finished = finished | (choice == eos)
                        tokens.append(torch.where(finished, 0, choice))
                        last = choice
                    return torch.stack(tokens, dim=1)
                """,
        ),
        Mistake(
            "each step must feed back the token generated just before, not the start token",
            source="""
                def greedy_tokens(table, start, eos, max_len):
                    tokens = []
                    finished = torch.zeros_like(start, dtype=torch.bool)
                    for _ in range(max_len):
                        choice = table[start].argmax(dim=-1)
                        tokens.append(torch.where(finished, 0, choice))
                        finished = finished | (choice == eos)
                    return torch.stack(tokens, dim=1)
                """,
        ),
        Mistake(
            "table[a] is the row of logits after token a: take the argmax along the last dim, "
            "not down the column table[:, a]",
            source="""
                def greedy_tokens(table, start, eos, max_len):
                    last, tokens = start, []
                    finished = torch.zeros_like(start, dtype=torch.bool)
                    for _ in range(max_len):
                        choice = table[:, last].argmax(dim=0)
                        choice = torch.where(finished, 0, choice)
                        tokens.append(choice)
                        finished = finished | (choice == eos)
                        last = choice
                    return torch.stack(tokens, dim=1)
                """,
        ),
    ),
    forbidden=("selfattn_course.seq2seq.greedy_decode",),
)


# --- task 3: scores_without_cache -----------------------------------------------------------------

#: Tokens generated in the task.
GENERATED_TOKENS = 20


def _scores_without_cache(tokens: int) -> int:
    """Step ``t`` (1-based) reruns causal attention over ``t`` positions: ``t(t+1)/2`` allowed
    query–key pairs; summed over ``t = 1..T``: ``T(T+1)(T+2)/6``."""
    return tokens * (tokens + 1) * (tokens + 2) // 6


SCORES_WITHOUT_CACHE = AnswerTask(
    id="ch15.scores_without_cache",
    title="what decoding without a cache recomputes",
    points=2,
    statement=r"""
        A decoder generates $T = 20$ tokens greedily, one per step; at step $t$ ($t = 1..T$) its
        input holds $t$ positions (`BOS` and the $t - 1$ tokens so far). Without a KV cache,
        each step reruns the decoder's causal self-attention over the whole input and keeps
        the last row. Counting one score per allowed query–key pair (per head and layer, masked
        pairs not counted), how many scores do the $T$ steps compute in all? Store the whole
        number in `scores_without_cache`. (With a cache, step $t$ computes $t$ scores.)
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=_scores_without_cache(GENERATED_TOKENS),
    properties=(
        Property("the count is a whole number", whole_number),
        Property("the count is positive", positive),
    ),
    mistakes=(
        Mistake(
            "that is the count with a cache (one new row per step); without one, step t "
            "recomputes all t rows of the causal prefix",
            source="""
                T = 20
                # one new query per step, against t keys
                scores_without_cache = sum(t for t in range(1, T + 1))
                """,
        ),
        Mistake(
            "the causal mask allows t(t+1)/2 of the t² pairs at step t: masked pairs are not "
            "counted",
            sum(t * t for t in range(1, GENERATED_TOKENS + 1)),
        ),
        Mistake(
            "that is one full pass over 20 positions (20·21/2 · 20); the prefix grows, so sum "
            "t(t+1)/2 over t = 1..20",
            GENERATED_TOKENS * GENERATED_TOKENS * (GENERATED_TOKENS + 1) // 2,
        ),
    ),
)


TASKS = [DECODER_MASKS, GREEDY_TOKENS, SCORES_WITHOUT_CACHE]
