"""Chapter 5, self-attention in PyTorch: the seed's layer fixed, many heads, torch's masks.

Two tasks ask for an ``nn.Module`` class. The grader builds the learner's class and the reference
class from the same :class:`~selfattn_course.grading.spec.calls.LayerSpec`, loads the same weights
into both (so the parameter names the statements give are part of the task) and compares what
their ``forward`` returns (:class:`~selfattn_course.grading.spec.calls.ModuleRunner`).

References: the reference classes hold the learner's parameter names and hand the computation to
the package's :class:`~selfattn_course.attention.SelfAttention` and
:class:`~selfattn_course.attention.MultiHeadAttention`; ``split_heads`` and ``merge_heads`` are
the package's (:mod:`selfattn_course.attention.heads`), ``course_mask`` is written out here.
While the learner's code runs it may not call the package's attention, heads or masks, nor
torch's attention (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``); the
multi-head task gets the reference heads as its provided helpers.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import torch
from torch import nn

from selfattn_course.attention import MultiHeadAttention, SelfAttention, merge_heads, split_heads
from selfattn_course.grading.spec import (
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.calls import LayerSpec, ModuleRunner
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS
from selfattn_course.masks import causal_mask

PACKAGE_HEADS = ("selfattn_course.attention.split_heads", "selfattn_course.attention.merge_heads")
FROM_SCRATCH = (
    ATTENTION_BUILTINS
    + PACKAGE_HEADS
    + (
        "selfattn_course.masks.key_padding_to_attention",
        "selfattn_course.masks.causal_mask",
        "selfattn_course.masks.combine",
    )
)


def _rows_sum_to_one_or_zero(result, _inputs) -> bool:
    """Each row of the weights ``result[1]`` sums to 1 (or to 0: a query with no allowed key)."""
    weights = result[1]
    sums = weights.sum(dim=-1)
    tolerance = 1e-4 if weights.dtype == torch.float32 else 1e-9
    return bool(((sums - 1).abs() <= tolerance).logical_or(sums.abs() <= tolerance).all())


# --- task 1: self_attention -----------------------------------------------------------------------

#: The seed's layer, as the seed prints it (task 1's statement shows it).
SEED_LAYER = "\n".join(
    [
        "class SelfAttention(nn.Module):",
        "    def __init__(self, d_model):",
        "        super(SelfAttention, self).__init__()",
        "        self.d_model = d_model",
        "        self.query_linear = nn.Linear(d_model, d_model)",
        "        self.key_linear = nn.Linear(d_model, d_model)",
        "        self.value_linear = nn.Linear(d_model, d_model)",
        "        self.softmax = nn.Softmax(dim=1)",
        "",
        "    def forward(self, x):",
        "        query = self.query_linear(x)",
        "        key = self.key_linear(x)",
        "        value = self.value_linear(x)",
        "",
        "        attn_weights = self.softmax("
        "torch.matmul(query, key.transpose(0, 1)) / (self.d_model ** 0.5))",
        "        attn_output = torch.matmul(attn_weights, value)",
        "        return attn_output",
    ]
)


class FixedSelfAttention(nn.Module):
    """The seed's one-head layer, batched:
    ``x (..., L, d) -> (out (..., L, d), weights (..., L, L))``.

    Parameter names are the seed's (``query_linear``, ``key_linear``, ``value_linear``); the
    computation is the package's :class:`~selfattn_course.attention.SelfAttention`.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.query_linear = nn.Linear(d_model, d_model)
        self.key_linear = nn.Linear(d_model, d_model)
        self.value_linear = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten
            layer = SelfAttention(self.d_model)
        layer.to(device=x.device, dtype=x.dtype)
        pairs = (
            (self.query_linear, layer.q_proj),
            (self.key_linear, layer.k_proj),
            (self.value_linear, layer.v_proj),
        )
        for ours, theirs in pairs:
            theirs.load_state_dict(ours.state_dict())
        return layer(x, need_weights=True)


def _seed_layer_weights(layer: LayerSpec) -> dict[str, torch.Tensor]:
    """The three projections of the seed's layer, ``U``-like scale ``1/√d``, drawn from the seed."""
    (d_model,) = layer.init_args
    weights = {}
    for offset, name in enumerate(("query_linear", "key_linear", "value_linear")):
        seed = layer.weights_seed * 10 + 2 * offset
        weights[f"{name}.weight"] = C.randn(
            (d_model, d_model), seed=seed, dtype=torch.float64, scale=d_model**-0.5
        )
        weights[f"{name}.bias"] = C.randn(
            (d_model,), seed=seed + 1, dtype=torch.float64, scale=d_model**-0.5
        )
    return weights


def _seed_layer_case(
    name: str, shape: Sequence[int], seed: int, dtype=torch.float32, device="cpu"
) -> Case:
    layer = LayerSpec("SelfAttention", (shape[-1],), seed)
    return Case(name, {"layer": layer, "x": C.randn(shape, seed=seed, dtype=dtype, device=device)})


def _self_attention_hidden(dtype, device) -> list[Case]:
    def case(name, shape, seed):
        return _seed_layer_case(name, shape, seed, dtype, device)

    return [
        case("batch (3, 7, 16)", (3, 7, 16), 10),
        case(
            "B = L = 5: a mix-up of the batch and sequence axes keeps the shape here",
            (5, 5, 8),
            11,
        ),
        case("two leading dims (2, 3, 4, 8)", (2, 3, 4, 8), 12),
        case("length-1 sequences (4, 1, 8)", (4, 1, 8), 13),
        case("d_model = 64, where the scale matters most, (2, 6, 64)", (2, 6, 64), 14),
    ]


class _Unscaled(FixedSelfAttention):
    def forward(self, x):
        q, k, v = self.query_linear(x), self.key_linear(x), self.value_linear(x)
        weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        return weights @ v, weights


SELF_ATTENTION = FunctionTask(
    id="ch05.self_attention",
    title="fix the seed's layer for batches",
    points=3,
    statement="The seed's layer works for one sequence `(L, d)` only:\n\n"
    f"```python\n{SEED_LAYER}\n```\n"
    + textwrap.dedent(
        """
        Write the `forward` of `SelfAttention` below so that it takes `x` of shape
        `(..., L, d_model)` (one sequence, a batch `(B, L, d_model)`, or more leading dims) and
        returns `(output, weights)`: the output `(..., L, d_model)` and the weights `(..., L, L)`,
        each row of which sums to 1. The test copies its weights into the package's
        `SelfAttention` and compares both.
        """
    ),
    reference=FixedSelfAttention,
    visible_cases=lambda: [
        _seed_layer_case("a batch of 2 sequences of 5 tokens, d_model = 8", (2, 5, 8), seed=1),
        _seed_layer_case(
            "one unbatched sequence (L, d) = (5, 8), as the seed used it", (5, 8), seed=2
        ),
    ],
    hidden_cases=over_devices(_self_attention_hidden),
    properties=(
        Property(
            "each row of the weights sums to 1 (the softmax runs over the keys, dim=-1)",
            _rows_sum_to_one_or_zero,
        ),
    ),
    mistakes=(
        Mistake(
            "the softmax runs over dim=1, the queries of a batch; use dim=-1 (the keys)",
            source="""
                class SelfAttention(nn.Module):
                    def __init__(self, d_model):
                        super().__init__()
                        self.d_model = d_model
                        self.query_linear = nn.Linear(d_model, d_model)
                        self.key_linear = nn.Linear(d_model, d_model)
                        self.value_linear = nn.Linear(d_model, d_model)

                    def forward(self, x):
                        query, key, value = (
                            self.query_linear(x), self.key_linear(x), self.value_linear(x)
                        )
                        scores = query @ key.transpose(-2, -1) / self.d_model ** 0.5
                        weights = nn.Softmax(dim=1)(scores)
                        return weights @ value, weights


                self_attention = SelfAttention
                """,
        ),
        Mistake("the scores are not divided by sqrt(d_model)", _Unscaled),
    ),
    forbidden=FROM_SCRATCH,
    runner=ModuleRunner(_seed_layer_weights),
)


# --- task 2: split_heads --------------------------------------------------------------------------


def _split_hidden(dtype, device) -> list[Case]:
    def x(shape, seed):
        return C.randn(shape, seed=seed, dtype=dtype, device=device)

    return [
        Case("(3, 7, 12), 3 heads", {"x": x((3, 7, 12), 21), "num_heads": 3}),
        Case("one head: (2, 4, 8) -> (2, 1, 4, 8)", {"x": x((2, 4, 8), 22), "num_heads": 1}),
        Case("d_k = 1: (2, 3, 6), 6 heads", {"x": x((2, 3, 6), 23), "num_heads": 6}),
        Case("length 1: (4, 1, 16), 4 heads", {"x": x((4, 1, 16), 24), "num_heads": 4}),
    ]


SPLIT_HEADS = FunctionTask(
    id="ch05.split_heads",
    title="split the heads",
    points=1,
    statement=r"""
        Multi-head attention runs $h$ heads side by side, each on its own $d_k = d/h$ features.
        Write `split_heads(x, num_heads)`: `(B, L, d)` → `(B, h, L, d_k)`, where head $t$ gets
        features $t \cdot d_k$ to $(t+1) \cdot d_k - 1$ of every position.
        """,
    reference=split_heads,
    visible_cases=lambda: [
        Case(
            "by hand: x = [[[0..3], [4..7]]] (1, 2, 4), 2 heads: head 0 = [[0, 1], [4, 5]], "
            "head 1 = [[2, 3], [6, 7]]",
            {"x": torch.arange(8.0).reshape(1, 2, 4), "num_heads": 2},
        ),
        Case("(2, 5, 8), 4 heads of width 2", {"x": C.randn((2, 5, 8), seed=20), "num_heads": 4}),
    ],
    hidden_cases=over_devices(_split_hidden),
    mistakes=(
        Mistake(
            "a reshape to (B, h, L, d_k) mixes positions between heads: reshape to "
            "(B, L, h, d_k), then transpose",
            lambda x, num_heads: x.reshape(
                x.shape[0], num_heads, x.shape[1], x.shape[2] // num_heads
            ),
        ),
        Mistake(
            "head t gets every h-th feature; it must get the block t·d_k .. (t+1)·d_k - 1: "
            "reshape to (B, L, h, d_k)",
            source="""
                def split_heads(x, num_heads):
                    b, l, d = x.shape
                    return x.reshape(b, l, d // num_heads, num_heads).permute(0, 3, 1, 2)
                """,
        ),
    ),
    forbidden=PACKAGE_HEADS,
)


# --- task 3: merge_heads --------------------------------------------------------------------------


def _merge_hidden(dtype, device) -> list[Case]:
    def x(shape, seed):
        return C.randn(shape, seed=seed, dtype=dtype, device=device)

    return [
        Case("(3, 3, 7, 4)", {"x": x((3, 3, 7, 4), 31)}),
        Case("one head (2, 1, 4, 8)", {"x": x((2, 1, 4, 8), 32)}),
        Case("d_k = 1: (2, 6, 3, 1)", {"x": x((2, 6, 3, 1), 33)}),
        Case("length 1: (4, 4, 1, 4)", {"x": x((4, 4, 1, 4), 34)}),
    ]


MERGE_HEADS = FunctionTask(
    id="ch05.merge_heads",
    title="merge the heads",
    points=1,
    statement=r"""
        Write `merge_heads(x)`: `(B, h, L, d_k)` → `(B, L, h·d_k)`, the heads' outputs side by
        side (the inverse of `split_heads`).
        """,
    reference=merge_heads,
    visible_cases=lambda: [
        Case(
            "by hand: head 0 = [[0, 1], [4, 5]], head 1 = [[2, 3], [6, 7]] gives "
            "[[[0..3], [4..7]]]",
            {"x": torch.tensor([[[[0.0, 1.0], [4.0, 5.0]], [[2.0, 3.0], [6.0, 7.0]]]])},
        ),
        Case("(2, 4, 5, 2): 4 heads of width 2", {"x": C.randn((2, 4, 5, 2), seed=30)}),
    ],
    hidden_cases=over_devices(_merge_hidden),
    mistakes=(
        Mistake(
            "a reshape of (B, h, L, d_k) to (B, L, h·d_k) mixes positions: transpose to "
            "(B, L, h, d_k) first",
            source="""
                def merge_heads(x):
                    b, h, l, d_k = x.shape
                    return x.reshape(b, l, h * d_k)
                """,
        ),
        Mistake(
            "the heads are interleaved feature by feature; they go side by side: "
            "(B, L, h, d_k) -> (B, L, h·d_k)",
            lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
        ),
    ),
    forbidden=PACKAGE_HEADS,
)


# --- task 4: multi_head_self_attention ------------------------------------------------------------


class ReferenceMultiHeadSelfAttention(nn.Module):
    """``h`` heads of width ``d/h``: ``x (B, L, d) -> (out (B, L, d), weights (B, h, L, L))``.

    Parameters ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (each ``nn.Linear(d, d)``); the
    computation is the package's :class:`~selfattn_course.attention.MultiHeadAttention`.
    """

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.d_model, self.num_heads = d_model, num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten
            layer = MultiHeadAttention(self.d_model, self.num_heads)
        layer.to(device=x.device, dtype=x.dtype)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            getattr(layer, name).load_state_dict(getattr(self, name).state_dict())
        return layer(x, mask=mask, need_weights=True, average_attn_weights=False)


def _torch_mha(layer: LayerSpec) -> nn.MultiheadAttention:
    """An ``nn.MultiheadAttention(d, h, batch_first=True)`` in float64 with weights drawn from the
    seed (torch's global generator is left as it was)."""
    d_model, num_heads = layer.init_args
    with torch.random.fork_rng(devices=[]):
        torch_mha = nn.MultiheadAttention(d_model, num_heads, batch_first=True, dtype=torch.float64)
    seed = layer.weights_seed * 10
    scale = d_model**-0.5
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(
            C.randn((3 * d_model, d_model), seed=seed, dtype=torch.float64, scale=scale)
        )
        torch_mha.in_proj_bias.copy_(
            C.randn((3 * d_model,), seed=seed + 1, dtype=torch.float64, scale=scale)
        )
        torch_mha.out_proj.weight.copy_(
            C.randn((d_model, d_model), seed=seed + 2, dtype=torch.float64, scale=scale)
        )
        torch_mha.out_proj.bias.copy_(
            C.randn((d_model,), seed=seed + 3, dtype=torch.float64, scale=scale)
        )
    return torch_mha.eval()


def _mha_weights(layer: LayerSpec) -> dict[str, torch.Tensor]:
    """The weights of a seeded ``nn.MultiheadAttention``, cut as the chapter does: its packed
    ``in_proj_weight`` ``(3d, d)`` holds ``W_Q``, ``W_K``, ``W_V`` as three row blocks."""
    torch_mha = _torch_mha(layer)
    weights = {}
    projections = zip(
        ("q_proj", "k_proj", "v_proj"),
        torch_mha.in_proj_weight.chunk(3),
        torch_mha.in_proj_bias.chunk(3),
        strict=True,
    )
    for name, weight, bias in projections:
        weights[f"{name}.weight"] = weight.detach().clone()
        weights[f"{name}.bias"] = bias.detach().clone()
    weights["out_proj.weight"] = torch_mha.out_proj.weight.detach().clone()
    weights["out_proj.bias"] = torch_mha.out_proj.bias.detach().clone()
    return weights


def _outputs_finite(result, _inputs) -> bool:
    return bool(torch.isfinite(result[0]).all() and torch.isfinite(result[1]).all())


def _mha_case(name, shape, num_heads, seed, mask=None, dtype=torch.float32, device="cpu") -> Case:
    layer = LayerSpec("MultiHeadSelfAttention", (shape[-1], num_heads), seed)
    x = C.randn(shape, seed=seed, dtype=dtype, device=device)
    return Case(name, {"layer": layer, "x": x}, {"mask": mask} if mask is not None else {})


def _padding_and_causal(lengths: Sequence[int], length: int, device="cpu") -> torch.Tensor:
    """``(B, 1, L, L)``: right padding AND causal, True = may attend."""
    return C.key_padding_mask(lengths, length, device=device) & causal_mask(length, device=device)


def _mha_hidden(dtype, device) -> list[Case]:
    def case(name, shape, num_heads, seed, mask=None):
        return _mha_case(name, shape, num_heads, seed, mask, dtype, device)

    left_padding = C.key_padding_mask([5, 2], 5, device=device).flip(-1)
    return [
        case("(3, 5, 12), 3 heads, no mask", (3, 5, 12), 3, 42),
        case("one head (d_k = d_model), (2, 4, 8)", (2, 4, 8), 1, 43),
        case("d_k = 1: 6 heads of (2, 3, 6)", (2, 3, 6), 6, 44),
        case("length 1: (3, 1, 8), 2 heads", (3, 1, 8), 2, 45),
        case("causal mask (L, L)", (2, 6, 16), 4, 46, causal_mask(6, device=device)),
        case(
            "padding mask (B, 1, 1, L), lengths [6, 2]",
            (2, 6, 8),
            2,
            47,
            C.key_padding_mask([6, 2], 6, device=device),
        ),
        case(
            "left padding AND causal: the first queries of sequence 1 have no allowed key",
            (2, 5, 8),
            2,
            48,
            left_padding & causal_mask(5, device=device),
        ),
        case("d_model = 64, 2 heads (d_k = 32), where the scale matters", (2, 4, 64), 2, 49),
    ]


class _NoOutputProjection(ReferenceMultiHeadSelfAttention):
    def forward(self, x, mask=None):
        q, k, v = (
            split_heads(proj(x), self.num_heads) for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
        return merge_heads(weights @ v), weights


class _InvertedMask(ReferenceMultiHeadSelfAttention):
    def forward(self, x, mask=None):
        return super().forward(x, None if mask is None else ~mask)


_PROVIDED_HEADS = {"split_heads": split_heads, "merge_heads": merge_heads}

MULTI_HEAD_SELF_ATTENTION = FunctionTask(
    id="ch05.multi_head_self_attention",
    title="multi-head self-attention",
    points=2,
    statement=r"""
        Write the `forward` of `MultiHeadSelfAttention` below: project `x` `(B, L, d_model)` to
        $Q, K, V$, split them into heads, compute each head's attention with the scale
        $1/\sqrt{d_k}$ and the optional boolean `mask` (broadcastable to `(B, h, L, L)`,
        True = may attend; a query with no allowed key gets weights 0), merge the heads and apply
        the output projection. Return `(out, weights)`: `out` `(B, L, d_model)` and the weights
        of every head, `(B, h, L, L)`. Use your `split_heads` and `merge_heads`: while this task
        is graded they are replaced by correct versions, so a mistake there costs points once.
        The test loads the weights of an `nn.MultiheadAttention` into your layer (its
        `in_proj_weight` holds $W_Q, W_K, W_V$ as three row blocks) and compares with the
        package's `MultiHeadAttention`.
        """,
    reference=ReferenceMultiHeadSelfAttention,
    visible_cases=lambda: [
        _mha_case("(2, 6, 16), 4 heads, no mask", (2, 6, 16), 4, seed=40),
        _mha_case(
            "(2, 5, 16), 4 heads, padding (lengths [5, 3]) AND causal mask (B, 1, L, L)",
            (2, 5, 16),
            4,
            seed=41,
            mask=_padding_and_causal([5, 3], 5),
        ),
    ],
    hidden_cases=over_devices(_mha_hidden),
    properties=(
        Property(
            "every output and weight is finite (a query with no allowed key gets weights 0, "
            "not NaN)",
            _outputs_finite,
        ),
        Property(
            "each row of each head's weights sums to 1, or is all 0 for a query with no "
            "allowed key",
            _rows_sum_to_one_or_zero,
        ),
    ),
    mistakes=(
        Mistake(
            "the scores are divided by sqrt(d_model); each head divides by "
            "sqrt(d_k) = sqrt(d_model / h)",
            source="""
                class MultiHeadSelfAttention(nn.Module):
                    def __init__(self, d_model, num_heads):
                        super().__init__()
                        self.d_model, self.num_heads = d_model, num_heads
                        self.q_proj = nn.Linear(d_model, d_model)
                        self.k_proj = nn.Linear(d_model, d_model)
                        self.v_proj = nn.Linear(d_model, d_model)
                        self.out_proj = nn.Linear(d_model, d_model)

                    def forward(self, x, mask=None):
                        q, k, v = (
                            split_heads(p(x), self.num_heads)
                            for p in (self.q_proj, self.k_proj, self.v_proj)
                        )
                        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
                        if mask is not None:
                            scores = scores.masked_fill(~mask, float('-inf'))
                        weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
                        return self.out_proj(merge_heads(weights @ v)), weights


                multi_head_self_attention = MultiHeadSelfAttention
                """,
        ),
        Mistake(
            "the output projection out_proj is missing: concatenate the heads, then project",
            _NoOutputProjection,
        ),
        Mistake("the mask is read the wrong way round: True means 'may attend'", _InvertedMask),
    ),
    forbidden=FROM_SCRATCH,
    provided=_PROVIDED_HEADS,
    runner=ModuleRunner(_mha_weights, provided=_PROVIDED_HEADS),
)


# --- task 5: course_mask --------------------------------------------------------------------------


def course_mask(attn_mask: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
    """``nn.MultiheadAttention``'s masks (True = blocked) -> the course's ``(B, 1, Lq, Lk)``,
    True = may attend.

    ``attn_mask`` ``(Lq, Lk)``, ``key_padding_mask`` ``(B, Lk)``: a position is allowed when
    neither blocks it, ``~attn_mask & ~key_padding_mask[:, None, None, :]``.
    """
    return ~attn_mask[None, None, :, :] & ~key_padding_mask[:, None, None, :]


def _blocked_where_torch_blocks(mask, inputs) -> bool:
    blocked = inputs["attn_mask"][None, None] | inputs["key_padding_mask"][:, None, None, :]
    return not bool((mask & blocked).any())


def _allowed_where_torch_allows(mask, inputs) -> bool:
    allowed = ~inputs["attn_mask"][None, None] & ~inputs["key_padding_mask"][:, None, None, :]
    return bool(mask[allowed].all())


def _same_output_as_torch(mask, inputs) -> bool:
    """The package's MultiHeadAttention given this mask matches nn.MultiheadAttention given
    torch's masks, at every query that has an allowed key."""
    attn_mask, key_padding_mask = inputs["attn_mask"].cpu(), inputs["key_padding_mask"].cpu()
    (batch, lk), lq = key_padding_mask.shape, attn_mask.shape[0]
    torch_mha = _torch_mha(LayerSpec("nn.MultiheadAttention", (8, 2), 97))
    query = C.randn((batch, lq, 8), seed=95, dtype=torch.float64)
    memory = C.randn((batch, lk, 8), seed=96, dtype=torch.float64)
    with torch.no_grad():
        theirs, _ = torch_mha(
            query,
            memory,
            memory,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
        )
        ours, _ = MultiHeadAttention.from_torch(torch_mha)(query, memory, memory, mask=mask.cpu())
    has_a_key = course_mask(attn_mask, key_padding_mask).any(dim=-1)[:, 0]  # (B, Lq)
    return bool(torch.allclose(ours[has_a_key], theirs[has_a_key], rtol=1e-9, atol=1e-12))


def _torch_masks(attn_mask, key_padding_mask) -> dict[str, torch.Tensor]:
    return {"attn_mask": attn_mask, "key_padding_mask": key_padding_mask}


def _course_mask_hidden(device) -> list[Case]:
    def masks(attn_mask, key_padding_mask):
        return _torch_masks(attn_mask.to(device), key_padding_mask.to(device))

    return [
        Case(
            "causal (blocked above the diagonal), lengths [6, 4, 1]",
            masks(~causal_mask(6), ~C.padding_valid([6, 4, 1], 6)),
        ),
        Case(
            "cross-attention Lq = 2, Lk = 7, random masks",
            masks(~C.random_mask((2, 7), seed=51), ~C.padding_valid([7, 5], 7)),
        ),
        Case(
            "one sequence entirely padding: its rows are all-masked",
            masks(~C.random_mask((4, 4), seed=52), ~C.padding_valid([4, 0], 4)),
        ),
        Case(
            "length 1 (Lq = Lk = 1)",
            masks(torch.zeros(1, 1, dtype=torch.bool), torch.tensor([[False], [True]])),
        ),
        Case(
            "attn_mask blocks nothing, padding only, B = 1",
            masks(torch.zeros(5, 5, dtype=torch.bool), ~C.padding_valid([3], 5)),
        ),
    ]


COURSE_MASK = FunctionTask(
    id="ch05.course_mask",
    title="convert torch's masks",
    points=3,
    statement=r"""
        `nn.MultiheadAttention` takes `attn_mask` `(Lq, Lk)` and `key_padding_mask` `(B, Lk)`,
        both boolean and **True = blocked**. Write `course_mask(attn_mask, key_padding_mask)`
        returning the course's mask `(B, 1, Lq, Lk)`, **True = may attend**: query $i$ of
        sequence $b$ may attend to key $j$ when neither of torch's masks blocks it. Both masks are
        always given (neither is `None`). The test runs
        the package's `MultiHeadAttention` with your mask and `nn.MultiheadAttention` with the
        two masks, and compares their outputs.
        """,
    reference=course_mask,
    visible_cases=lambda: [
        Case(
            "by hand: attn_mask blocks the future (3, 3), key_padding_mask [[False, False, True]]: "
            "allowed [[T, F, F], [T, T, F], [T, T, F]]",
            _torch_masks(
                torch.ones(3, 3, dtype=torch.bool).triu(1), torch.tensor([[False, False, True]])
            ),
        ),
        Case(
            "random masks, B = 2, Lq = 4, Lk = 5",
            _torch_masks(~C.random_mask((4, 5), seed=50), ~C.padding_valid([5, 3], 5)),
        ),
    ],
    hidden_cases=over_devices_only(_course_mask_hidden),
    properties=(
        Property(
            "every position torch blocks (attn_mask or key_padding_mask True) is False in your "
            "mask",
            _blocked_where_torch_blocks,
        ),
        Property(
            "every position neither of torch's masks blocks is True in your mask",
            _allowed_where_torch_allows,
        ),
        Property(
            "the course's MultiHeadAttention given your mask matches nn.MultiheadAttention given "
            "torch's two masks (at every query with an allowed key)",
            _same_output_as_torch,
        ),
    ),
    mistakes=(
        Mistake(
            "the mask is torch's (True = blocked): invert both masks",
            source="""
                def course_mask(attn_mask, key_padding_mask):
                    return attn_mask[None, None] | key_padding_mask[:, None, None, :]
                """,
        ),
        Mistake(
            "the two masks are combined with OR; a position is allowed only if neither blocks "
            "it (AND)",
            lambda attn_mask, key_padding_mask: (
                ~attn_mask[None, None] | ~key_padding_mask[:, None, None, :]
            ),
        ),
        Mistake(
            "the key padding is applied to the queries (rows); it hides keys (columns): "
            "key_padding_mask[:, None, None, :]",
            lambda attn_mask, key_padding_mask: (
                ~attn_mask[None, None] & ~key_padding_mask[:, None, :, None]
            ),
        ),
        Mistake(
            "only attn_mask is inverted; key_padding_mask is True = padding too",
            lambda attn_mask, key_padding_mask: (
                ~attn_mask[None, None] & key_padding_mask[:, None, None, :]
            ),
        ),
    ),
    forbidden=FROM_SCRATCH,
)


TASKS = [SELF_ATTENTION, SPLIT_HEADS, MERGE_HEADS, MULTI_HEAD_SELF_ATTENTION, COURSE_MASK]
