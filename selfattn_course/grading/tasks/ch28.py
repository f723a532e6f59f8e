"""Chapter 28, reducing attention's cost: the online softmax, FAVOR+ features and a KV cache.

The references are written out here (``merge_blocks``) or are the package's
(:func:`selfattn_course.approximate.positive_random_features`,
:func:`selfattn_course.attention.kv_cache_bytes`). While a learner's code runs it may not call
the package's or torch's attention (``ATTENTION_BUILTINS``) nor the package's feature map.
Conventions: ``(..., L, d)`` shapes; a block's statistics are its normalised output and the
log-sum-exp of its scores, one per query row.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.approximate import positive_random_features
from selfattn_course.attention import kv_cache_bytes
from selfattn_course.grading.spec import AnswerTask, Case, FunctionTask, Mistake, over_devices
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS

GIB = 2**30

# --- task 1: merge_blocks -------------------------------------------------------------------------


def merge_blocks(
    out1: torch.Tensor, lse1: torch.Tensor, out2: torch.Tensor, lse2: torch.Tensor
) -> torch.Tensor:
    """Attention over the keys of two blocks from each block's output and log-sum-exp.

    ``out_b (..., L, dv)`` is ``softmax(s_b) v_b`` over block ``b``'s keys and ``lse_b (..., L)``
    is ``log Σ_j exp(s_bj)``. With ``lse = log(e^{lse1} + e^{lse2})`` the answer is
    ``e^{lse1 − lse} out1 + e^{lse2 − lse} out2``, computed without overflow.
    """
    lse = torch.logaddexp(lse1, lse2)
    return torch.exp(lse1 - lse).unsqueeze(-1) * out1 + torch.exp(lse2 - lse).unsqueeze(-1) * out2


def block_statistics(q, k, v, split: int, *, score_scale: float = 1.0):
    """``{"out1", "lse1", "out2", "lse2"}`` of attention over keys ``[:split]`` and ``[split:]``
    (scores ``q kᵀ / √d · score_scale``), computed directly with torch."""
    scores = q @ k.transpose(-2, -1) * (score_scale / math.sqrt(q.shape[-1]))
    stats = {}
    for index, keys in ((1, slice(None, split)), (2, slice(split, None))):
        block = scores[..., keys]
        stats[f"out{index}"] = torch.softmax(block, dim=-1) @ v[..., keys, :]
        stats[f"lse{index}"] = torch.logsumexp(block, dim=-1)
    return stats


def _blocks_case(name, *, lq, lk, split, seed, dtype=torch.float32, device="cpu", score_scale=1.0):
    qkv = C.qkv(batch=(2,), lq=lq, lk=lk, d=8, seed=seed, dtype=dtype, device=device)
    return Case(name, block_statistics(**qkv, split=split, score_scale=score_scale))


def _merge_hidden(dtype, device) -> list[Case]:
    return [
        _blocks_case(
            "4 queries, blocks of 3 and 5 keys",
            lq=4,
            lk=8,
            split=3,
            seed=20,
            dtype=dtype,
            device=device,
        ),
        _blocks_case(
            "one key in the first block", lq=3, lk=6, split=1, seed=21, dtype=dtype, device=device
        ),
        _blocks_case(
            "scores in the hundreds",
            lq=5,
            lk=10,
            split=5,
            seed=22,
            dtype=dtype,
            device=device,
            score_scale=300.0,
        ),
    ]


MERGE_BLOCKS = FunctionTask(
    id="ch28.merge_blocks",
    title="merge two blocks of keys",
    points=4,
    statement=r"""
        The keys are split in two blocks. For block $b$ you are given its attention output
        $o_b = \operatorname{softmax}(s_b)\, V_b$ `(..., L, dv)` (normalised over that block only)
        and the log-sum-exp of its scores $\ell_b = \log \sum_j e^{s_{bj}}$ `(..., L)`. Write
        `merge_blocks(out1, lse1, out2, lse2)` returning attention over **all** the keys. It must
        work when the scores are in the hundreds ($e^{\ell}$ overflows). Do not call a softmax
        or an attention function.
        """,
    reference=merge_blocks,
    visible_cases=lambda: [
        _blocks_case("2 queries, blocks of 2 and 3 keys", lq=2, lk=5, split=2, seed=1),
        _blocks_case("scores in the hundreds", lq=2, lk=4, split=2, seed=2, score_scale=300.0),
    ],
    hidden_cases=over_devices(_merge_hidden),
    mistakes=(
        Mistake(
            "you averaged the two outputs; weight each block by its share of the softmax's "
            "denominator, exp(lse_b − lse)",
            source="""
                def merge_blocks(out1, lse1, out2, lse2):
                    return (out1 + out2) / 2  # each block is already a softmax average
                """,
        ),
        Mistake(
            "exp(lse) overflows when the scores are large: subtract the larger log-sum-exp "
            "(or use torch.logaddexp) before exponentiating",
            source="""
                def merge_blocks(out1, lse1, out2, lse2):
                    w1, w2 = torch.exp(lse1), torch.exp(lse2)
                    total = w1 + w2
                    return (w1 / total).unsqueeze(-1) * out1 + (w2 / total).unsqueeze(-1) * out2
                """,
        ),
        Mistake(
            "the weights are exp(lse_b − max) but are not divided by their sum: "
            "the result must be a weighted mean of the two outputs",
            source="""
                def merge_blocks(out1, lse1, out2, lse2):
                    top = torch.maximum(lse1, lse2)
                    w1, w2 = torch.exp(lse1 - top), torch.exp(lse2 - top)
                    return w1.unsqueeze(-1) * out1 + w2.unsqueeze(-1) * out2
                """,
        ),
    ),
    forbidden=(*ATTENTION_BUILTINS, "torch.softmax", "torch.nn.functional.softmax"),
)


# --- task 2: performer_features -------------------------------------------------------------------


def _features_case(name, *, shape, m, seed, dtype=torch.float32, device="cpu", scale=1.0):
    x = C.randn(shape, seed=seed, dtype=dtype, device=device, scale=scale)
    omega = C.randn((m, shape[-1]), seed=seed + 100, dtype=dtype, device=device)
    return Case(name, {"x": x, "omega": omega})


def _features_hidden(dtype, device) -> list[Case]:
    return [
        _features_case(
            "(2, 5, 4) with 16 features", shape=(2, 5, 4), m=16, seed=30, dtype=dtype, device=device
        ),
        _features_case(
            "one token, one feature", shape=(1, 3), m=1, seed=31, dtype=dtype, device=device
        ),
        _features_case(
            "(2, 3, 6, 8), 32 features",
            shape=(2, 3, 6, 8),
            m=32,
            seed=32,
            dtype=dtype,
            device=device,
            scale=0.5,
        ),
    ]


PERFORMER_FEATURES = FunctionTask(
    id="ch28.performer_features",
    title="the Performer feature map",
    points=3,
    statement=r"""
        Write `performer_features(x, omega)`: FAVOR+'s positive random features
        $\varphi(x) = \frac{1}{\sqrt{m}} \exp\!\left(\omega_i^\top x - \tfrac{1}{2}\lVert x
        \rVert^2\right)_{i=1..m}$ for `x` `(..., L, d)` and the $m$ rows of `omega` `(m, d)`,
        returning `(..., L, m)`. Check that $\varphi(q)^\top \varphi(k)$ approaches
        $e^{q^\top k}$ when `omega` has many Gaussian rows.
        """,
    reference=positive_random_features,
    visible_cases=lambda: [
        Case(
            "by hand: x = (1, 0), ω = [(1, 0), (0, 2)] gives exp((0.5, -0.5)) / √2",
            {"x": torch.tensor([[1.0, 0.0]]), "omega": torch.tensor([[1.0, 0.0], [0.0, 2.0]])},
        ),
        _features_case("random (3, 4), 8 features", shape=(3, 4), m=8, seed=3),
    ],
    hidden_cases=over_devices(_features_hidden),
    mistakes=(
        Mistake(
            "the features lack the factor exp(−|x|²/2): without it φ(q)·φ(k) estimates "
            "exp(q·k + |q|²/2 + |k|²/2), not exp(q·k)",
            source="""
                def performer_features(x, omega):
                    return torch.exp(x @ omega.T) / math.sqrt(omega.shape[0])
                """,
        ),
        Mistake(
            "divide by √m, the square root of the number of features, so that φ(q)·φ(k) "
            "is a mean over the m features",
            lambda x, omega: torch.exp(x @ omega.T - (x * x).sum(-1, keepdim=True) / 2),
        ),
        Mistake(
            "you subtracted |x|/2; the correction is half the squared norm, |x|²/2",
            lambda x, omega: (
                torch.exp(x @ omega.T - x.norm(dim=-1, keepdim=True) / 2)
                / math.sqrt(omega.shape[0])
            ),
        ),
    ),
    forbidden=("selfattn_course.approximate.positive_random_features",),
)


# --- task 3: gqa_cache_gib ------------------------------------------------------------------------

#: The model of the task: layers, query heads, key/value heads, head width, bytes, tokens.
GQA_MODEL = {"layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128, "bytes": 2}
GQA_TOKENS = 32768


def _gqa_cache_gib() -> float:
    model = GQA_MODEL
    return (
        kv_cache_bytes(
            GQA_TOKENS, model["layers"], model["kv_heads"], model["head_dim"], model["bytes"]
        )
        / GIB
    )


GQA_CACHE_GIB = AnswerTask(
    id="ch28.gqa_cache_gib",
    title="KV-cache memory with grouped-query attention",
    points=3,
    statement=r"""
        A decoder has 32 layers, 32 query heads of width 128 and **8 key/value heads**
        (grouped-query attention), and stores its cache in float16. How many GiB
        ($2^{30}$ bytes) does the key/value cache of **one** sequence of 32 768 tokens take?
        Store the number in `gqa_cache_gib`.
        """,
    answer_type=Number(rtol=1e-6),
    expected=_gqa_cache_gib(),
    mistakes=(
        Mistake(
            "that is the cache of multi-head attention, one key and value per query head: "
            "with GQA only the 8 key/value heads are stored",
            source="""
                layers, heads, head_dim, bytes_per_number, tokens = 32, 32, 128, 2, 32768
                gqa_cache_gib = 2 * layers * heads * head_dim * tokens * bytes_per_number / 2**30
                """,
        ),
        Mistake("count both the keys and the values of every token", _gqa_cache_gib() / 2),
        Mistake("1 GiB is 2**30 bytes, not 10**9", _gqa_cache_gib() * GIB / 1e9),
    ),
)


TASKS = [MERGE_BLOCKS, PERFORMER_FEATURES, GQA_CACHE_GIB]
