"""Attention as ``torch.nn.Module`` layers: one head, many heads, and a whole Transformer block.

Every layer here computes its attention with the course's reference
:func:`~selfattn_course.attention.scaled_dot_product_attention`; what the layers add are the
learned projections around it.

- :class:`SelfAttention` - one head: ``softmax(Q Kᵀ / √d) V`` with ``Q, K, V`` projections of
  one input ``X``. The seed Q&A's Q5 layer, corrected.
- :class:`MultiHeadAttention` - ``h`` heads of width ``d_k = embed_dim / h`` side by side, then an
  output projection; the twin of ``nn.MultiheadAttention(batch_first=True)``.
- :class:`FeedForward` - the position-wise ``Linear -> ReLU -> Linear`` network of a block.
- :class:`TransformerBlock` - attention and feed-forward sub-layers with residual connections
  and LayerNorm, pre-LN or post-LN; a twin of ``nn.TransformerEncoderLayer(batch_first=True)``.

Mask convention: a boolean ``mask`` is **True where query i may attend to key j**, as in
``torch.nn.functional.scaled_dot_product_attention``. ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` use the opposite (``attn_mask`` / ``key_padding_mask`` True =
blocked); to reuse one of their boolean masks here, invert it::

    mask = ~attn_mask                              # (Lq, Lk)
    mask = ~key_padding_mask[:, None, None, :]     # (B, Lk) -> (B, 1, 1, Lk)
    mask = ~attn_mask & ~key_padding_mask[:, None, None, :]   # both

A query whose keys are all masked gets attention weights 0 and attention output 0, never NaN
(``nn.MultiheadAttention`` gives NaN there on some of its code paths).

Initialisation: ``reset_parameters(generator=None)`` draws every weight with ``Tensor.uniform_``.
With a ``torch.Generator`` the result depends on that generator alone; without one it uses the
global generator, so ``torch.manual_seed(s)`` before construction makes a layer reproducible.

Dropout (``dropout > 0``) acts only in training mode (``module.train()``) and draws from torch's
global generator: call ``torch.manual_seed`` before the forward pass to repeat it, or use
``module.eval()`` for a deterministic layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .. import _arrays as A
from .heads import merge_heads, split_heads
from .sdpa import scaled_dot_product_attention


class SelfAttention(nn.Module):
    """One attention head over one sequence: ``X -> softmax(Q Kᵀ / √d_model) V``.

    .. math::

        Q = X W_Q + b_Q,\\quad K = X W_K + b_K,\\quad V = X W_V + b_V,\\qquad
        \\operatorname{out} =
        \\operatorname{softmax}\\!\\left(\\frac{Q K^\\top}{\\sqrt{d}}\\right) V

    This is the layer of the seed Q&A's question 5, done right. The seed wrote
    ``query @ key.transpose(0, 1)`` and ``nn.Softmax(dim=1)``, which only works for one unbatched
    ``(L, d)`` sequence: on a batch ``(B, L, d)`` the transpose swaps batch and sequence (the
    matmul fails), and ``dim=1`` would normalise over the *queries*. Here the scores are
    ``q @ k.transpose(-2, -1)`` and the softmax runs over the keys (``dim=-1``), so any number
    of leading batch dims works.

    Args:
        d_model: width ``d`` of the input, of ``Q``, ``K``, ``V`` and of the output.

    Shapes:
        - ``x``: ``(..., L, d_model)``
        - ``mask``: boolean, broadcastable to ``(..., L, L)``, True = query i may attend to key j
        - output: ``(..., L, d_model)``; weights ``(..., L, L)``, each row sums to 1 (or is all 0
          when the mask blocks every key of that query)
    """

    def __init__(self, d_model: int):
        super().__init__()
        _check_positive_int("d_model", d_model)
        self.d_model = d_model
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the projections as ``nn.Linear`` does: weights and biases ``U(±1/√d_model)``."""
        for linear in (self.q_proj, self.k_proj, self.v_proj):
            init_linear_default(linear, generator)

    def forward(
        self, x: torch.Tensor, *, mask=None, causal: bool = False, need_weights: bool = False
    ):
        """Attend from every position of ``x`` to every position of ``x``.

        Args:
            x: ``(..., L, d_model)``.
            mask: optional boolean, broadcastable to ``(..., L, L)``, True = may attend.
            causal: if True, position ``i`` attends only to ``j <= i`` (AND-ed with ``mask``).
            need_weights: also return the attention weights.

        Returns:
            ``(out, weights)``, as :class:`MultiHeadAttention` and ``nn.MultiheadAttention`` do:
            ``out`` of shape ``(..., L, d_model)``, ``weights`` of shape ``(..., L, L)`` when
            ``need_weights`` is True, else ``None``.
        """
        check_features("x", x, self.d_model, "d_model", like=self.q_proj.weight)
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # each (..., L, d_model)
        if not need_weights:
            return scaled_dot_product_attention(q, k, v, mask, causal=causal), None
        return scaled_dot_product_attention(q, k, v, mask, causal=causal, return_weights=True)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"


class MultiHeadAttention(nn.Module):
    """Multi-head attention, batch first: ``h`` heads of width ``d_k = embed_dim / h``.

    .. math::

        \\operatorname{head}_i = \\operatorname{softmax}\\!\\left(
            \\frac{(Q W^Q_i)(K W^K_i)^\\top}{\\sqrt{d_k}}\\right) V W^V_i,\\qquad
        \\operatorname{out} = [\\operatorname{head}_1, \\dots, \\operatorname{head}_h]\\, W^O

    The ``h`` per-head projections ``W^Q_i`` (``embed_dim x d_k`` each) are stored side by side as
    one ``nn.Linear(embed_dim, embed_dim)``: its output is cut into ``h`` slices of ``d_k``.
    Same for ``K`` and ``V``. With ``key``/``value`` from another sequence it is cross-attention.

    Args:
        embed_dim: model width ``E``; also the width of the output.
        num_heads: number of heads ``h``; ``embed_dim`` must be divisible by it.
        dropout: probability of zeroing each attention weight, in training mode only.
        bias: add learned biases to the four projections.
        kdim: width of ``key`` (default ``embed_dim``).
        vdim: width of ``value`` (default ``embed_dim``).

    Shapes (``B`` batch, ``H`` heads, ``Lq``/``Lk`` query/key lengths):
        - ``query``: ``(B, Lq, E)``; ``key``: ``(B, Lk, kdim)``; ``value``: ``(B, Lk, vdim)``
        - ``mask``: boolean, True = query i may attend to key j, one of

          - ``(Lq, Lk)``: the same for every example and head (e.g. a causal mask);
          - ``(B, Lq, Lk)``: one per example, shared by the heads (a head dim is inserted);
          - anything broadcastable to ``(B, H, Lq, Lk)`` with 4 dims, e.g. a key-padding mask
            ``(B, 1, 1, Lk)`` or a per-head mask ``(1, H, Lq, Lk)``.

          Rank 3 always means ``(B, Lq, Lk)``: a per-head mask needs its leading 1.
        - output: ``(B, Lq, E)``; weights ``(B, Lq, Lk)`` averaged over heads, or
          ``(B, H, Lq, Lk)`` with ``average_attn_weights=False``.

    ``nn.MultiheadAttention`` masks mean the opposite (True = blocked); see :meth:`from_torch`.
    Dropout draws from torch's global generator: seed it with ``torch.manual_seed`` or call
    ``eval()`` for deterministic results.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
    ):
        super().__init__()
        _check_positive_int("embed_dim", embed_dim)
        _check_positive_int("num_heads", num_heads)
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads}): "
                "each head gets d_k = embed_dim / num_heads features"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads  # d_k = d_v
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        _check_positive_int("kdim", self.kdim)
        _check_positive_int("vdim", self.vdim)
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise as ``nn.MultiheadAttention``: Xavier-uniform ``q/k/v`` weights,
        ``nn.Linear``'s default for the ``out_proj`` weight, all biases 0."""
        for linear in (self.q_proj, self.k_proj, self.v_proj):
            fan_out, fan_in = linear.weight.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
        init_linear_default(self.out_proj, generator)
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        average_attn_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(B, Lq, E)``.
            key: ``(B, Lk, kdim)``; defaults to ``query`` (self-attention).
            value: ``(B, Lk, vdim)``; defaults to ``key``.
            mask: optional boolean, True = may attend; ``(Lq, Lk)``, ``(B, Lq, Lk)`` or 4-D
                broadcastable to ``(B, H, Lq, Lk)`` (see the class docstring).
            causal: if True, query ``i`` attends only to keys ``j <= i`` (top-left aligned),
                AND-ed with ``mask``.
            need_weights: return the attention weights (after dropout) as well.
            average_attn_weights: average the returned weights over the heads.

        Returns:
            ``(out, weights)``: ``out`` ``(B, Lq, E)``; ``weights`` ``(B, Lq, Lk)``,
            ``(B, H, Lq, Lk)`` when not averaged, or ``None`` when ``need_weights`` is False.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        mask = self._mask_for_heads(mask, query.shape[0], query.shape[1], key.shape[1])

        q = split_heads(self.q_proj(query), self.num_heads)  # (B, H, Lq, d_k)
        k = split_heads(self.k_proj(key), self.num_heads)  # (B, H, Lk, d_k)
        v = split_heads(self.v_proj(value), self.num_heads)  # (B, H, Lk, d_k)
        dropout_p = self.dropout if self.training else 0.0
        heads, weights = scaled_dot_product_attention(
            q, k, v, mask, causal=causal, dropout_p=dropout_p, return_weights=True
        )  # heads (B, H, Lq, d_k), weights (B, H, Lq, Lk)
        out = self.out_proj(merge_heads(heads))  # (B, Lq, E)

        if not need_weights:
            return out, None
        return out, (weights.mean(dim=1) if average_attn_weights else weights)

    def _check_inputs(self, query, key, value) -> None:
        like = self.q_proj.weight
        check_features("query", query, self.embed_dim, "embed_dim", like=like, batched=True)
        check_features("key", key, self.kdim, "kdim", like=like, batched=True)
        check_features("value", value, self.vdim, "vdim", like=like, batched=True)
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                "query, key and value must have the same batch size: "
                f"got query {A.shape_str(query.shape)}, key {A.shape_str(key.shape)}, "
                f"value {A.shape_str(value.shape)}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                "key and value must have the same length Lk: got key "
                f"{A.shape_str(key.shape)}, value {A.shape_str(value.shape)}"
            )

    def _mask_for_heads(self, mask, batch: int, lq: int, lk: int):
        """Check ``mask``; give a rank-3 ``(B, Lq, Lk)`` mask its head dim, ``(B, 1, Lq, Lk)``."""
        if mask is None:
            return None
        A.check_array("mask", mask)
        hint = (
            "MultiHeadAttention has no additive mask: for float scores to add, call "
            "scaled_dot_product_attention(q, k, v, bias=...)"
        )
        if mask.ndim == 3:
            A.check_bool_mask("mask", mask, "(batch, Lq, Lk)", (batch, lq, lk), float_hint=hint)
            return mask.unsqueeze(1)
        target = (batch, self.num_heads, lq, lk)
        A.check_bool_mask("mask", mask, "scores (batch, heads, Lq, Lk)", target, float_hint=hint)
        return mask

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """A :class:`MultiHeadAttention` with the weights of ``m``, on its device and dtype.

        ``m``'s packed ``in_proj_weight`` ``(3E, E)`` (or its separate ``q/k/v_proj_weight`` when
        ``kdim``/``vdim`` differ from ``embed_dim``) and ``in_proj_bias`` are cut into the
        ``q/k/v_proj`` layers; ``out_proj`` is copied as it is. The copy is batch first whatever
        ``m.batch_first`` says. Outputs then equal ``m``'s for every input, once the masks are
        converted (``m`` blocks where its boolean masks are True, this layer attends there)::

            ours, _ = MultiHeadAttention.from_torch(m)(x, mask=~attn_mask)
            theirs, _ = m(x, x, x, attn_mask=attn_mask)                    # m.batch_first=True

            mask = ~key_padding_mask[:, None, None, :]   # key_padding_mask (B, Lk) -> (B, 1, 1, Lk)
            mask = ~attn_mask.view(B, H, Lq, Lk)         # a per-head attn_mask (B*H, Lq, Lk)

        Raises:
            TypeError: ``m`` is not an ``nn.MultiheadAttention``.
            ValueError: ``m`` uses ``add_bias_kv`` or ``add_zero_attn``, which have no twin here.
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise TypeError(f"m must be an nn.MultiheadAttention, got {type(m).__name__}")
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError(
                "from_torch does not support nn.MultiheadAttention with add_bias_kv "
                "or add_zero_attn"
            )
        bias = m.in_proj_bias is not None
        module = cls(
            m.embed_dim, m.num_heads, dropout=m.dropout, bias=bias, kdim=m.kdim, vdim=m.vdim
        )
        module.to(m.out_proj.weight)  # same device and dtype as m
        if m.in_proj_weight is not None:
            weights = m.in_proj_weight.chunk(3)  # rows [W_Q; W_K; W_V], each (E, E)
        else:
            weights = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
        biases = m.in_proj_bias.chunk(3) if bias else (None, None, None)
        with torch.no_grad():
            for linear, weight, b in zip(
                (module.q_proj, module.k_proj, module.v_proj), weights, biases, strict=True
            ):
                linear.weight.copy_(weight)
                if b is not None:
                    linear.bias.copy_(b)
        module.out_proj.load_state_dict(m.out_proj.state_dict())
        return module.train(m.training)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}, "
            f"kdim={self.kdim}, vdim={self.vdim}, dropout={self.dropout}"
        )


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``Linear(d_model, d_ff) -> ReLU -> Dropout ->
    Linear(d_ff, d_model)``, applied to each position on its own.

    Shapes: ``(..., d_model) -> (..., d_model)``.
    """

    def __init__(self, d_model: int, d_ff: int, *, dropout: float = 0.0):
        super().__init__()
        _check_positive_int("d_model", d_model)
        _check_positive_int("d_ff", d_ff)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw both layers as ``nn.Linear`` does: ``U(±1/√fan_in)``."""
        init_linear_default(self.linear1, generator)
        init_linear_default(self.linear2, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class TransformerBlock(nn.Module):
    """A Transformer encoder block: multi-head self-attention and a feed-forward network, each
    wrapped in a residual connection and a LayerNorm.

    Pre-LN (``norm_first=True``, GPT-2 and most models since; its gradients are well scaled at
    initialisation, so it trains without learning-rate warm-up more readily, Xiong et al. 2020)::

        x = x + Dropout(MHA(LN1(x)))
        x = x + Dropout(FFN(LN2(x)))

    Post-LN (``norm_first=False``, the original Transformer of Vaswani et al. 2017)::

        x = LN1(x + Dropout(MHA(x)))
        x = LN2(x + Dropout(FFN(x)))

    Args:
        d_model: model width.
        num_heads: attention heads; ``d_model`` must be divisible by it.
        d_ff: hidden width of the feed-forward network (often ``4 * d_model``).
        dropout: dropout on attention weights, inside the FFN and on both residual branches,
            in training mode only.
        norm_first: pre-LN when True, post-LN when False.

    Shapes:
        - ``x``: ``(B, L, d_model)``; output the same
        - ``mask``: boolean, True = may attend: ``(L, L)``, ``(B, L, L)`` or 4-D broadcastable to
          ``(B, H, L, L)``, e.g. a padding mask ``(B, 1, 1, L)`` (see :class:`MultiHeadAttention`)
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        dropout: float = 0.0,
        norm_first: bool = True,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.residual_dropout = nn.Dropout(dropout)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the attention and FFN weights (see theirs); LayerNorms to scale 1, shift 0."""
        self.self_attn.reset_parameters(generator)
        self.feed_forward.reset_parameters(generator)
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()

    def forward(self, x: torch.Tensor, *, mask: torch.Tensor | None = None, causal: bool = False):
        """``(B, L, d_model) -> (B, L, d_model)``.

        ``mask`` (True = may attend) and ``causal`` as in :class:`MultiHeadAttention`.
        """
        check_features(
            "x", x, self.self_attn.embed_dim, "d_model", like=self.norm1.weight, batched=True
        )
        if self.norm_first:
            x = x + self._attend(self.norm1(x), mask, causal)
            x = x + self.residual_dropout(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self._attend(x, mask, causal))
            x = self.norm2(x + self.residual_dropout(self.feed_forward(x)))
        return x

    def _attend(self, x: torch.Tensor, mask, causal: bool) -> torch.Tensor:
        out, _ = self.self_attn(x, mask=mask, causal=causal)
        return self.residual_dropout(out)

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerBlock:
        """A :class:`TransformerBlock` with the weights of ``layer``, on its device and dtype.

        ``layer`` must use ReLU and biases (torch's defaults). Outputs then equal those of
        ``layer`` (with ``batch_first=True``) once the masks are converted, since torch's are
        True = blocked::

            block = TransformerBlock.from_torch(layer)
            ours = block(x, mask=~src_key_padding_mask[:, None, None, :])
            theirs = layer(x, src_key_padding_mask=src_key_padding_mask)

        Raises:
            TypeError: ``layer`` is not an ``nn.TransformerEncoderLayer``.
            ValueError: ``layer`` uses another activation than ReLU, or ``bias=False``.
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise TypeError(
                f"layer must be an nn.TransformerEncoderLayer, got {type(layer).__name__}"
            )
        if not (layer.activation is F.relu or isinstance(layer.activation, nn.ReLU)):
            raise ValueError(f"from_torch supports activation='relu' only, got {layer.activation}")
        if layer.linear1.bias is None:
            raise ValueError("from_torch does not support nn.TransformerEncoderLayer(bias=False)")
        attn = layer.self_attn
        block = cls(
            attn.embed_dim,
            attn.num_heads,
            layer.linear1.out_features,
            dropout=layer.dropout.p,
            norm_first=layer.norm_first,
        )
        block.self_attn = MultiHeadAttention.from_torch(attn)
        block.to(layer.linear1.weight)  # same device and dtype as layer
        block.feed_forward.linear1.load_state_dict(layer.linear1.state_dict())
        block.feed_forward.linear2.load_state_dict(layer.linear2.state_dict())
        for ours, theirs in ((block.norm1, layer.norm1), (block.norm2, layer.norm2)):
            ours.load_state_dict(theirs.state_dict())
            ours.eps = theirs.eps
        return block.train(layer.training)


# --- helpers ---------------------------------------------------------------------------------


def init_linear_default(linear: nn.Linear, generator: torch.Generator | None = None) -> None:
    """``nn.Linear``'s own initialisation, with an optional generator.

    Weight and bias are drawn from ``U(-1/√fan_in, 1/√fan_in)`` (torch writes the weight's bound
    as Kaiming-uniform with ``a=√5``, which is the same number).
    """
    bound = 1.0 / math.sqrt(linear.in_features)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound, generator=generator)
        if linear.bias is not None:
            linear.bias.uniform_(-bound, bound, generator=generator)


def check_features(
    name: str, x, features: int, features_name: str, *, like: torch.Tensor, batched: bool = False
) -> None:
    """Raise unless ``x`` is a tensor ``(..., L, features)`` (exactly ``(B, L, features)`` when
    ``batched``) with the dtype and device of the parameter ``like``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if batched and x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (batch, length, {features_name}) = (B, L, {features}), "
            f"got shape {A.shape_str(x.shape)}"
        )
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (..., length, {features_name}) with at least 2 dims, "
            f"got shape {A.shape_str(x.shape)}"
        )
    if x.shape[-1] != features:
        raise ValueError(
            f"{name} must have last dim {features_name} = {features}, "
            f"got shape {A.shape_str(x.shape)}"
        )
    if x.dtype != like.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the module's parameters are {like.dtype}; "
            f"convert one of them with .to({like.dtype}) or .to({x.dtype})"
        )
    if x.device != like.device:
        raise ValueError(
            f"{name} is on {x.device} but the module's parameters are on {like.device}"
        )


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
