"""Chapter 24, self-attention inside the Transformer: the block's parameters, its FLOPs per token,
and a pre-LN block written from scratch.

The counts follow the package's modules: :class:`~selfattn_course.attention.TransformerBlock`
(``MultiHeadAttention`` with biases on its four ``d x d`` projections, ``FeedForward`` with two
biased linear layers, two ``LayerNorm`` with a scale and a shift each) and the FLOP convention of
:mod:`selfattn_course.costs` (a multiply-add is 2 FLOPs). The block's reference is written out
here with torch's ``layer_norm`` and the package's ``scaled_dot_product_attention``; the learner's
block may not call an attention built-in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfattn_course.attention import merge_heads, scaled_dot_product_attention, split_heads
from selfattn_course.grading.spec import Case, FunctionTask, Mistake, Property, over_devices
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS

# --- task 1: block_parameters ---------------------------------------------------------------------


def block_parameters(d: int, d_ff: int) -> int:
    """Parameters of one ``TransformerBlock(d, heads, d_ff)``: attention ``4d² + 4d``, FFN
    ``2·d·d_ff + d_ff + d``, two LayerNorms ``4d``; the number of heads does not matter."""
    return 4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d + 4 * d


def _sizes_hidden(_devices) -> list[Case]:
    return [
        plain_numbers("d = 512, d_ff = 2048: the base Transformer", d=512, d_ff=2048),
        plain_numbers("d = 1, d_ff = 1", d=1, d_ff=1),
        plain_numbers("d = 768, d_ff = 3072: BERT-base", d=768, d_ff=3072),
        plain_numbers("d = 64, d_ff = 100: d_ff not a multiple of d", d=64, d_ff=100),
    ]


BLOCK_PARAMETERS = FunctionTask(
    id="ch24.block_parameters",
    title="parameters of a Transformer block",
    points=3,
    statement=r"""
        Write `block_parameters(d, d_ff)`: the number of parameters of one
        `TransformerBlock(d, num_heads, d_ff)` of the package: multi-head attention with four
        $d \times d$ projections ($W_Q, W_K, W_V, W_O$), each with a bias; the feed-forward
        network $\mathrm{Linear}(d, d_{ff}) \to \mathrm{ReLU} \to \mathrm{Linear}(d_{ff}, d)$ with
        biases; and two LayerNorms, each with a scale and a shift of length $d$. Check your
        formula against `sum(p.numel() for p in block.parameters())`.
        """,
    reference=block_parameters,
    visible_cases=lambda: [
        plain_numbers("by hand: d = 2, d_ff = 3 gives 16 + 8 + 12 + 3 + 2 + 8 = 49", d=2, d_ff=3),
        plain_numbers("d = 16, d_ff = 64", d=16, d_ff=64),
    ],
    hidden_cases=_sizes_hidden,
    mistakes=(
        Mistake(
            "you counted the weight matrices only (4d² + 2·d·d_ff): every linear layer has a "
            "bias, and each LayerNorm a scale and a shift",
            source="""
                def block_parameters(d, d_ff):
                    return 4 * d * d + 2 * d * d_ff
                """,
        ),
        Mistake(
            "you left out the two LayerNorms: each has a scale and a shift of length d (4d)",
            source="""
                def block_parameters(d, d_ff):
                    return 4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d
                """,
        ),
        Mistake(
            "you counted one FFN matrix: the FFN has two, d x d_ff and d_ff x d",
            lambda d, d_ff: 4 * d * d + 4 * d + d * d_ff + d_ff + d + 4 * d,
        ),
    ),
    runner=returns_number,
)


# --- task 2: flops_per_token ----------------------------------------------------------------------


def flops_per_token(n: int, d: int, d_ff: int) -> int:
    """Forward FLOPs per token of one block over ``n`` tokens: projections ``8d²``, FFN
    ``4·d·d_ff``, scores and mixing ``4nd`` (``n`` keys, each a ``d``-long dot product twice)."""
    return 8 * d * d + 4 * d * d_ff + 4 * n * d


FLOPS_PER_TOKEN = FunctionTask(
    id="ch24.flops_per_token",
    title="FLOPs per token of a block",
    points=2,
    statement=r"""
        Write `flops_per_token(n, d, d_ff)`: the forward FLOPs of one Transformer block per
        token, for a sequence of $n$ tokens of width $d$ (a multiply-add counts as 2 FLOPs).
        Count the four $d \times d$ projections, the two FFN matrices, and the token's share of
        the scores $QK^\top$ and of the mixing $AV$ (its query meets $n$ keys). Ignore biases,
        softmax, LayerNorm and residual additions (they are $O(d)$ or $O(n)$ per token).
        """,
    reference=flops_per_token,
    visible_cases=lambda: [
        plain_numbers("by hand: n = 1, d = 1, d_ff = 4 gives 8 + 16 + 4 = 28", n=1, d=1, d_ff=4),
        plain_numbers("n = 128, d = 64, d_ff = 256", n=128, d=64, d_ff=256),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("n = 1024, d = 512, d_ff = 2048", n=1024, d=512, d_ff=2048),
        plain_numbers("n = 16384, d = 64, d_ff = 256: mixing dominates", n=16384, d=64, d_ff=256),
        plain_numbers("n = 3, d = 1000, d_ff = 10", n=3, d=1000, d_ff=10),
    ],
    mistakes=(
        Mistake(
            "you left out the attention scores and the mixing: each token's query meets n keys, "
            "4nd FLOPs that grow with the sequence",
            source="""
                def flops_per_token(n, d, d_ff):
                    return 8 * d * d + 4 * d * d_ff
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2 (one multiply, one add)",
            lambda n, d, d_ff: 4 * d * d + 2 * d * d_ff + 2 * n * d,
        ),
        Mistake(
            "you counted the whole sequence's scores per token (4n²d): per token it is 4nd",
            lambda n, d, d_ff: 8 * d * d + 4 * d * d_ff + 4 * n * n * d,
        ),
    ),
    runner=returns_number,
)


# --- task 3: pre_ln_block -------------------------------------------------------------------------


def pre_ln_block(x, w_q, w_k, w_v, w_o, w_1, w_2, num_heads):
    """A pre-LN Transformer block without biases or LayerNorm affine (eps 1e-5):
    ``h = x + MHA(LN(x))``, ``y = h + relu(LN(h) @ w_1) @ w_2``; ``x @ W`` convention.

    Shapes: ``x`` ``(..., L, d)``; ``w_q, w_k, w_v, w_o`` ``(d, d)``; ``w_1`` ``(d, d_ff)``,
    ``w_2`` ``(d_ff, d)``; output ``(..., L, d)``.
    """
    *lead, length, d = x.shape
    x3 = x.reshape(-1, length, d)  # split_heads takes (B, L, d)
    a = F.layer_norm(x3, (d,), eps=1e-5)
    q, k, v = (split_heads(a @ w, num_heads) for w in (w_q, w_k, w_v))
    h = x3 + merge_heads(scaled_dot_product_attention(q, k, v)) @ w_o
    b = F.layer_norm(h, (d,), eps=1e-5)
    return (h + torch.relu(b @ w_1) @ w_2).reshape(*lead, length, d)


def _block_inputs(*, batch, length, d, d_ff, heads, seed, dtype=torch.float32, device="cpu"):
    def w(shape, offset):
        return C.randn(
            shape, seed=seed + offset, dtype=dtype, device=device, scale=shape[0] ** -0.5
        )

    return {
        "x": C.randn((*batch, length, d), seed=seed, dtype=dtype, device=device),
        "w_q": w((d, d), 1),
        "w_k": w((d, d), 2),
        "w_v": w((d, d), 3),
        "w_o": w((d, d), 4),
        "w_1": w((d, d_ff), 5),
        "w_2": w((d_ff, d), 6),
        "num_heads": heads,
    }


def _block_hidden(dtype, device) -> list[Case]:
    def inputs(**sizes):
        return _block_inputs(**sizes, dtype=dtype, device=device)

    return [
        Case("(2, 5, 8), 2 heads", inputs(batch=(2,), length=5, d=8, d_ff=32, heads=2, seed=20)),
        Case("one token", inputs(batch=(1,), length=1, d=8, d_ff=16, heads=4, seed=30)),
        Case(
            "extra batch dims (2, 3, 4, 6)",
            inputs(batch=(2, 3), length=4, d=6, d_ff=12, heads=3, seed=40),
        ),
        Case("one head, d_ff < d", inputs(batch=(3,), length=7, d=8, d_ff=4, heads=1, seed=50)),
    ]


def _same_shape_as_x(result, inputs) -> bool:
    return tuple(result.shape) == tuple(inputs["x"].shape)


PRE_LN_BLOCK = FunctionTask(
    id="ch24.pre_ln_block",
    title="a pre-LN block from scratch",
    points=5,
    statement=r"""
        Write `pre_ln_block(x, w_q, w_k, w_v, w_o, w_1, w_2, num_heads)`: the forward pass of a
        pre-LN Transformer block without biases, for `x` of shape `(..., L, d)`:

        $$h = x + \mathrm{MHA}(\mathrm{LN}(x)), \qquad
          y = h + \mathrm{ReLU}(\mathrm{LN}(h)\, W_1)\, W_2 .$$

        $\mathrm{LN}$ normalises each token over its $d$ features, $(z - \mu)/\sqrt{\sigma^2 +
        10^{-5}}$ with the biased variance, and has no scale or shift. $\mathrm{MHA}$ computes
        $Q = \mathrm{LN}(x) W_Q$ (and $K$, $V$ alike), splits the last dimension into
        `num_heads` heads of width $d_h = d/$`num_heads`, applies
        $\mathrm{softmax}(QK^\top/\sqrt{d_h})\,V$ in each head (no mask), concatenates the heads
        and multiplies by $W_O$. Weights multiply on the right (`z @ W`). Write the attention
        yourself: attention built-ins are not allowed.
        """,
    reference=pre_ln_block,
    visible_cases=lambda: [
        Case(
            "(1, 3, 4), 2 heads", _block_inputs(batch=(1,), length=3, d=4, d_ff=8, heads=2, seed=1)
        ),
        Case(
            "(2, 6, 8), 4 heads", _block_inputs(batch=(2,), length=6, d=8, d_ff=32, heads=4, seed=2)
        ),
    ],
    hidden_cases=over_devices(_block_hidden),
    properties=(Property("the output has the shape of x", _same_shape_as_x),),
    mistakes=(
        Mistake(
            "you wrote a post-LN block (LayerNorm after each residual addition); pre-LN "
            "normalises the input of each branch and leaves the residual path untouched",
            source="""
                def pre_ln_block(x, w_q, w_k, w_v, w_o, w_1, w_2, num_heads):
                    def ln(z):
                        mu = z.mean(-1, keepdim=True)
                        var = z.var(-1, unbiased=False, keepdim=True)
                        return (z - mu) / torch.sqrt(var + 1e-5)

                    def heads(z):
                        *lead, length, d = z.shape
                        return z.reshape(*lead, length, num_heads, d // num_heads).transpose(-3, -2)

                    q, k, v = heads(x @ w_q), heads(x @ w_k), heads(x @ w_v)
                    weights = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
                    mixed = (weights @ v).transpose(-3, -2).flatten(-2)
                    h = ln(x + mixed @ w_o)
                    return ln(h + torch.relu(h @ w_1) @ w_2)
                """,
        ),
        Mistake(
            "the scores are scaled by 1/sqrt(d), the model width; scale by 1/sqrt(d_h), the "
            "width of one head",
            source="""
                def pre_ln_block(x, w_q, w_k, w_v, w_o, w_1, w_2, num_heads):
                    def ln(z):
                        mu = z.mean(-1, keepdim=True)
                        var = z.var(-1, unbiased=False, keepdim=True)
                        return (z - mu) / torch.sqrt(var + 1e-5)

                    def heads(z):
                        *lead, length, d = z.shape
                        return z.reshape(*lead, length, num_heads, d // num_heads).transpose(-3, -2)

                    a = ln(x)
                    q, k, v = heads(a @ w_q), heads(a @ w_k), heads(a @ w_v)
                    weights = torch.softmax(q @ k.transpose(-2, -1) / x.shape[-1] ** 0.5, dim=-1)
                    mixed = (weights @ v).transpose(-3, -2).flatten(-2)
                    h = x + mixed @ w_o
                    return h + torch.relu(ln(h) @ w_1) @ w_2
                """,
        ),
        Mistake(
            "your LayerNorm uses the unbiased variance (divides by d - 1); LayerNorm divides by d",
            source="""
                def pre_ln_block(x, w_q, w_k, w_v, w_o, w_1, w_2, num_heads):
                    def ln(z):
                        variance = z.var(-1, keepdim=True)  # divides by d - 1
                        return (z - z.mean(-1, keepdim=True)) / torch.sqrt(variance + 1e-5)

                    def heads(z):
                        *lead, length, d = z.shape
                        return z.reshape(*lead, length, num_heads, d // num_heads).transpose(-3, -2)

                    a = ln(x)
                    q, k, v = heads(a @ w_q), heads(a @ w_k), heads(a @ w_v)
                    weights = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
                    mixed = (weights @ v).transpose(-3, -2).flatten(-2)
                    h = x + mixed @ w_o
                    return h + torch.relu(ln(h) @ w_1) @ w_2
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


TASKS = [BLOCK_PARAMETERS, FLOPS_PER_TOKEN, PRE_LN_BLOCK]
