"""Position information for self-attention, which on its own does not know the order of tokens.

Without position information self-attention is permutation-equivariant: permute the tokens and
the outputs permute the same way. The encodings here are the ways to give it order.

Absolute (one vector per position, added to the token embeddings):

- :func:`sinusoidal` - fixed ``sin``/``cos`` encoding (Vaswani et al. 2017, "Attention Is All
  You Need", section 3.5).
- :class:`LearnedPositionalEmbedding` - a trained table (BERT, GPT-2); it has no row past its
  last position, so it cannot serve longer sequences.

Relative (the score of query ``i`` and key ``j`` depends on ``j - i``):

- :func:`relative_position_bucket` and :class:`RelativePositionBias` - T5's learned bias per
  head and log-spaced distance bucket (Raffel et al. 2020, "Exploring the Limits of Transfer
  Learning with a Unified Text-to-Text Transformer", section 2.1).
- :func:`apply_rope` - rotary position embedding: rotate ``q`` and ``k`` so that ``q·k``
  depends only on ``i - j`` (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
  Position Embedding").
- :func:`rope_ntk_base` - the larger base of NTK-aware RoPE scaling, to run a RoPE model on
  ``scale`` times its trained length (fractional ``positions`` of :func:`apply_rope` give
  position interpolation instead).
- :func:`alibi_slopes` and :func:`alibi_bias` - a fixed linear penalty on distance per head
  (Press et al. 2022, "Train Short, Test Long: Attention with Linear Biases Enables Input Length
  Extrapolation").

Which kind comes back: functions that transform data (:func:`apply_rope`,
:func:`relative_position_bucket`) follow their input, NumPy in -> NumPy out, torch in -> torch
out on the same device; functions built from sizes alone (:func:`sinusoidal`,
:func:`alibi_slopes`, :func:`alibi_bias`) return torch tensors on ``device`` (the CPU when
``device=None``) in ``dtype`` (float32 by default); call ``.numpy()`` for the NumPy code paths.
They are computed in float64 and rounded once to ``dtype``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import _arrays as A
from ._arrays import Array

__all__ = [
    "sinusoidal",
    "LearnedPositionalEmbedding",
    "relative_position_bucket",
    "RelativePositionBias",
    "apply_rope",
    "rope_ntk_base",
    "alibi_slopes",
    "alibi_bias",
]


# --- absolute encodings -------------------------------------------------------------------


def sinusoidal(
    num_positions: int,
    dim: int,
    *,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """The fixed sinusoidal position encoding of "Attention Is All You Need" (section 3.5).

    .. math::

        PE[p, 2i]   = \\sin\\!\\left(p / \\text{base}^{2i / d}\\right), \\qquad
        PE[p, 2i+1] = \\cos\\!\\left(p / \\text{base}^{2i / d}\\right)

    for ``i = 0 .. d/2 - 1``: sine on the even dims and cosine on the odd ones (interleaved), with
    wavelengths from ``2π`` to ``2π · base``. Because each ``(sin, cos)`` pair is a point on a
    circle, ``PE[p + k]`` is ``PE[p]`` with pair ``i`` rotated by the angle
    ``k / base^(2i/d)``: a fixed linear map that depends on the offset ``k`` only.

    Args:
        num_positions: number of positions ``P >= 0`` (rows ``p = 0 .. P-1``).
        dim: model width ``d``, a positive even integer.
        base: the wavelength base, 10000 in the paper.
        dtype: floating dtype of the result (float32 by default).
        device: where to put the result; ``None`` means the CPU.

    Returns:
        ``(num_positions, dim)`` tensor, to be added to token embeddings ``(B, L, dim)`` as
        ``x + sinusoidal(L, dim)``.

    Raises:
        ValueError: ``dim`` is odd or not positive, ``num_positions`` negative, ``base <= 0``.
    """
    num_positions = A.check_int("num_positions", num_positions, minimum=0)
    dim = _check_even_dim("dim", dim)
    base = _check_base(base)
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    frequencies = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (d/2,)
    angles = positions * frequencies  # (P, d/2), angles[p, i] = p / base^(2i/d)
    encoding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (P, d/2, 2)
    return encoding.reshape(num_positions, dim).to(device=device, dtype=dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A trained table of absolute position vectors, as in BERT and GPT-2.

    ``E`` has shape ``(max_positions, dim)``; position ``p`` gets row ``E[p]``. Unlike
    :func:`sinusoidal`, a learned table has no row for a position it was not built with: a
    sequence longer than ``max_positions`` raises ``ValueError`` instead of silently wrapping.

    Args:
        max_positions: number of rows, the longest sequence the table can serve.
        dim: model width ``d``.
        generator: optional ``torch.Generator`` for the initial values (deterministic set-up).
        device, dtype: where and in what dtype to create the table.

    Attributes:
        weight: ``(max_positions, dim)`` parameter, initialised from ``N(0, 0.02²)`` (GPT-2).

    Example::

        >>> table = LearnedPositionalEmbedding(512, 64)
        >>> x = torch.zeros(2, 10, 64)
        >>> table(x).shape             # x + E[0:10]
        torch.Size([2, 10, 64])
        >>> table(10).shape            # E[0:10]
        torch.Size([10, 64])
    """

    def __init__(
        self,
        max_positions: int,
        dim: int,
        *,
        generator: torch.Generator | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.max_positions = A.check_int("max_positions", max_positions, minimum=1)
        self.dim = A.check_int("dim", dim, minimum=1)
        self.weight = nn.Parameter(
            torch.empty(self.max_positions, self.dim, device=device, dtype=dtype)
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the table again from ``N(0, 0.02²)``, from ``generator`` when given."""
        nn.init.normal_(self.weight, mean=0.0, std=0.02, generator=generator)

    def lookup(self, positions: torch.Tensor) -> torch.Tensor:
        """Rows of the table: ``E[positions]``, of shape ``positions.shape + (dim,)``.

        Raises ``ValueError`` for a position outside ``0 .. max_positions - 1``.
        """
        if (
            not A.is_tensor(positions)
            or positions.is_floating_point()
            or positions.dtype == torch.bool
        ):
            raise TypeError(
                f"positions must be an integer torch.Tensor, got {_describe(positions)}"
            )
        if positions.numel() > 0:
            largest, smallest = int(positions.max()), int(positions.min())
            if largest >= self.max_positions:
                raise ValueError(
                    f"position {largest} is past the table of {self.max_positions} positions "
                    f"(0 to {self.max_positions - 1}); a learned table cannot extrapolate"
                )
            if smallest < 0:
                raise ValueError(f"positions must be non-negative, got {smallest}")
        return self.weight[positions.to(self.weight.device)]

    def forward(self, x: torch.Tensor | int, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Add position vectors to ``x``, or return them for a length.

        Args:
            x: either an int ``L``, giving ``E[0:L]`` of shape ``(L, dim)``; or a float tensor
                ``(..., L, dim)`` of token embeddings, giving ``x + E[positions]``.
            positions: optional integer tensor broadcastable to ``(..., L)``, e.g. ``(L,)`` or
                ``(B, L)``; default ``arange(L)``. Only with a tensor ``x``.

        Returns:
            ``(L, dim)`` for an int; ``x + E[positions]`` of ``x``'s shape for a tensor.
        """
        if not A.is_tensor(x):
            if positions is not None:
                raise TypeError("positions= goes with a tensor x; for a length, pass only the int")
            length = A.check_int("length", x, minimum=0)
            return self.lookup(torch.arange(length, device=self.weight.device))
        A.check_array("x", x, min_ndim=2, floating=True)
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have last dim {self.dim} (the table's dim), "
                f"got shape {A.shape_str(x.shape)}"
            )
        if positions is None:
            positions = torch.arange(x.shape[-2], device=x.device)
        else:
            A.check_array("positions", positions)
            A.broadcast_shape("positions", positions.shape, "x.shape[:-1]", x.shape[:-1])
        return x + self.lookup(positions).to(x.device)

    def extra_repr(self) -> str:
        return f"max_positions={self.max_positions}, dim={self.dim}"


# --- T5 relative position buckets ---------------------------------------------------------


def relative_position_bucket(
    relative_position,
    *,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> Array:
    """Map a relative position ``j - i`` (key minus query) to one of ``num_buckets`` buckets, as T5.

    T5 learns one bias per head and bucket (:class:`RelativePositionBias`). Small distances get a
    bucket each; larger ones share log-spaced buckets; every distance from ``max_distance`` on
    shares the last bucket, so the bias extends to any length (Raffel et al. 2020, section 2.1;
    the same computation as Hugging Face's ``T5Attention._relative_position_bucket``).

    With ``n = num_buckets`` (halved when ``bidirectional``: keys after the query, ``j > i``, use
    buckets ``n .. 2n-1``; the rest use ``0 .. n-1``), ``e = n // 2`` exact buckets, and ``r`` the
    distance (``|j - i|``; or, one-directional, ``max(i - j, 0)``, so every future key shares
    bucket 0)::

        bucket = r                                                           if r < e
        bucket = min(n - 1, e + floor(log(r / e) / log(max_distance / e) * (n - e)))   otherwise

    The logarithm is taken in float32, as in T5, so boundary cases round the same way.

    Args:
        relative_position: integer array of any shape, ``memory_position - query_position``
            (a torch tensor, a NumPy array, an int or a list).
        bidirectional: True for encoders (keys on both sides), False for causal decoders.
        num_buckets: total number of buckets (32 in T5).
        max_distance: distance from which all positions share the last bucket (128 in T5).

    Returns:
        Integer buckets in ``[0, num_buckets)``, same shape; ``torch.long`` on the input's device
        for a tensor, NumPy ``int64`` otherwise.

    Raises:
        TypeError: ``relative_position`` does not hold integers.
        ValueError: too few buckets for an exact range (``num_buckets`` must be at least 4
            bidirectional, 2 otherwise) or ``max_distance`` not above the exact range.
    """
    num_buckets = A.check_int("num_buckets", num_buckets, minimum=1)
    max_distance = A.check_int("max_distance", max_distance, minimum=1)
    relative_position = (
        relative_position if A.is_tensor(relative_position) else np.asarray(relative_position)
    )
    A.check_integer_dtype("relative_position", relative_position)

    if num_buckets < (4 if bidirectional else 2):
        raise ValueError(
            f"num_buckets must be at least {4 if bidirectional else 2} "
            f"(bidirectional={bidirectional}), got {num_buckets}"
        )
    if bidirectional:
        num_buckets //= 2  # one half for keys before the query, one for keys after it
    max_exact = num_buckets // 2
    if max_distance <= max_exact:
        raise ValueError(
            f"max_distance must exceed the {max_exact} exact buckets, "
            f"got max_distance={max_distance}"
        )

    if A.is_tensor(relative_position):
        return _bucket_torch(relative_position, bidirectional, num_buckets, max_exact, max_distance)
    return _bucket_numpy(relative_position, bidirectional, num_buckets, max_exact, max_distance)


def _bucket_torch(relative_position, bidirectional, num_buckets, max_exact, max_distance):
    relative_position = relative_position.long()
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    # Clamped below at max_exact so the log never sees 0; those entries take the exact branch.
    log_ratio = torch.log(distance.clamp(min=max_exact).float() / max_exact)
    if_large = (
        max_exact
        + (log_ratio / math.log(max_distance / max_exact) * (num_buckets - max_exact)).long()
    )
    if_large = if_large.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < max_exact, distance, if_large)


def _bucket_numpy(relative_position, bidirectional, num_buckets, max_exact, max_distance):
    relative_position = relative_position.astype(np.int64)
    buckets = np.zeros_like(relative_position)
    if bidirectional:
        buckets += (relative_position > 0).astype(np.int64) * num_buckets
        distance = np.abs(relative_position)
    else:
        distance = np.maximum(-relative_position, 0)
    log_ratio = np.log(np.maximum(distance, max_exact).astype(np.float32) / np.float32(max_exact))
    scaled = (
        log_ratio
        / np.float32(math.log(max_distance / max_exact))
        * np.float32(num_buckets - max_exact)
    )
    if_large = np.minimum(max_exact + scaled.astype(np.int64), num_buckets - 1)
    return buckets + np.where(distance < max_exact, distance, if_large)


class RelativePositionBias(nn.Module):
    """T5's learned relative position bias: one scalar per head and distance bucket.

    ``bias[0, h, i, j] = table[bucket(j - i), h]``, added to the attention scores of head ``h``
    (T5 adds it to the unscaled scores; pass it as ``bias=`` to
    :func:`~selfattn_course.attention.scaled_dot_product_attention`). See
    :func:`relative_position_bucket` for the buckets.

    Args:
        num_heads: ``H``.
        bidirectional, num_buckets, max_distance: as in :func:`relative_position_bucket`.
        generator: optional ``torch.Generator`` for the initial values.
        device, dtype: where and in what dtype to create the table.

    Attributes:
        relative_attention_bias: ``nn.Embedding(num_buckets, num_heads)`` (the name Hugging Face's
            T5 uses, so its weights copy over), initialised from ``N(0, 0.02²)``.
    """

    def __init__(
        self,
        num_heads: int,
        *,
        bidirectional: bool = True,
        num_buckets: int = 32,
        max_distance: int = 128,
        generator: torch.Generator | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.num_heads = A.check_int("num_heads", num_heads, minimum=1)
        self.bidirectional = bool(bidirectional)
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        relative_position_bucket(  # validates num_buckets and max_distance now, not at first call
            0, bidirectional=self.bidirectional, num_buckets=num_buckets, max_distance=max_distance
        )
        self.relative_attention_bias = nn.Embedding(
            num_buckets, self.num_heads, device=device, dtype=dtype
        )
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the table again from ``N(0, 0.02²)``, from ``generator`` when given."""
        nn.init.normal_(
            self.relative_attention_bias.weight, mean=0.0, std=0.02, generator=generator
        )

    def forward(self, lq: int, lk: int | None = None) -> torch.Tensor:
        """The bias for ``Lq`` queries at positions ``0..Lq-1`` and ``Lk`` keys at ``0..Lk-1``.

        Returns:
            ``(1, H, Lq, Lk)`` float tensor on the table's device; it broadcasts over the scores
            ``(B, H, Lq, Lk)``.
        """
        lq = A.check_int("lq", lq, minimum=0)
        lk = lq if lk is None else A.check_int("lk", lk, minimum=0)
        device = self.relative_attention_bias.weight.device
        query_positions = torch.arange(lq, device=device)[:, None]
        key_positions = torch.arange(lk, device=device)[None, :]
        buckets = relative_position_bucket(
            key_positions - query_positions,  # (Lq, Lk), j - i
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        values = self.relative_attention_bias(buckets)  # (Lq, Lk, H)
        return values.permute(2, 0, 1).unsqueeze(0)  # (1, H, Lq, Lk)

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, bidirectional={self.bidirectional}, "
            f"num_buckets={self.num_buckets}, max_distance={self.max_distance}"
        )


# --- rotary position embedding ------------------------------------------------------------


def apply_rope(
    x: Array, positions=None, *, base: float = 10000.0, interleaved: bool = False
) -> Array:
    """Rotary position embedding (RoPE, Su et al. 2021): rotate each pair of dims by ``p · θ_i``.

    The ``d`` features of the vector at position ``p`` form ``d/2`` pairs; pair ``i`` is rotated
    by the angle ``p · θ_i`` with ``θ_i = base^(-2i/d)``:

    .. math::

        \\begin{pmatrix} y_a \\\\ y_b \\end{pmatrix} =
        \\begin{pmatrix} \\cos p\\theta_i & -\\sin p\\theta_i \\\\
                         \\sin p\\theta_i &  \\cos p\\theta_i \\end{pmatrix}
        \\begin{pmatrix} x_a \\\\ x_b \\end{pmatrix}

    Apply it to queries and keys (not values) after the projections. Rotations keep lengths, and
    the rotated ``q_m · k_n`` equals ``q · R((n - m)θ) k``: the score depends on the positions
    only through their difference.

    Two layouts of the pairs are in use; they are the same rotation up to a fixed permutation of
    the features (so the weights of a model fix which one it needs):

    - ``interleaved=False`` (default): pair ``i`` is ``(x[i], x[i + d/2])``, the two halves
      ("rotate_half"; GPT-NeoX, LLaMA, Hugging Face).
    - ``interleaved=True``: pair ``i`` is ``(x[2i], x[2i + 1])``, adjacent features (the
      RoFormer paper, GPT-J, Meta's original LLaMA code).

    Args:
        x: ``(..., L, d)`` floating array (NumPy or torch), e.g. queries ``(B, H, L, d)``;
            ``d`` must be even.
        positions: position of each row, broadcastable to ``x.shape[:-1]``, e.g. ``(L,)``, or
            ``(B, 1, L)`` for per-sequence positions with heads; integers or floats (fractional
            positions give position interpolation). Default ``arange(L)``. Same kind as ``x``
            (a list is converted).
        base: the frequency base, 10000 in the paper.
        interleaved: the pair layout, see above.

    Returns:
        The rotated ``x``: same shape, dtype, kind and device. The angles are computed in float64
        for NumPy and float64 tensors, in float32 otherwise.

    Raises:
        ValueError: ``d`` is odd, ``x`` has fewer than 2 dims, ``positions`` does not broadcast.
        TypeError: ``x`` is not floating, or ``positions`` is of another kind than ``x``.
    """
    A.check_array("x", x, min_ndim=2, floating=True)
    dim = x.shape[-1]
    if dim % 2 != 0:
        raise ValueError(
            f"x must have an even last dim d (features form pairs), "
            f"got d={dim} in shape {A.shape_str(x.shape)}"
        )
    base = _check_base(base)
    positions = _rope_positions(x, positions)

    if A.is_tensor(x):
        angle_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        exponents = torch.arange(0, dim, 2, device=x.device, dtype=angle_dtype) / dim
        angles = positions.to(angle_dtype)[..., None] * base ** (-exponents)  # (..., L, d/2)
        cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    else:
        exponents = np.arange(0, dim, 2, dtype=np.float64) / dim
        angles = positions.astype(np.float64)[..., None] * base ** (-exponents)  # (..., L, d/2)
        cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)

    if interleaved:
        first, second = x[..., 0::2], x[..., 1::2]  # pair i = (x[2i], x[2i+1])
    else:
        first, second = x[..., : dim // 2], x[..., dim // 2 :]  # pair i = (x[i], x[i+d/2])
    rotated_first = first * cos - second * sin
    rotated_second = first * sin + second * cos
    if interleaved:
        return _stack_last(rotated_first, rotated_second).reshape(x.shape)
    return _concat_last(rotated_first, rotated_second)


def _rope_positions(x: Array, positions) -> Array:
    """``positions`` as an array of ``x``'s kind and device, checked against ``x.shape[:-1]``."""
    length = x.shape[-2]
    if positions is None:
        return torch.arange(length, device=x.device) if A.is_tensor(x) else np.arange(length)
    if not isinstance(positions, (np.ndarray, torch.Tensor)):
        positions = (
            torch.as_tensor(positions, device=x.device) if A.is_tensor(x) else np.asarray(positions)
        )
    A.check_same_kind(x=x, positions=positions)
    if not _is_real_number(positions):
        raise TypeError(f"positions must hold integers or floats, got dtype {positions.dtype}")
    A.broadcast_shape("positions", positions.shape, "x.shape[:-1]", x.shape[:-1])
    return positions


def _stack_last(a: Array, b: Array) -> Array:
    return torch.stack([a, b], dim=-1) if A.is_tensor(a) else np.stack([a, b], axis=-1)


def _concat_last(a: Array, b: Array) -> Array:
    return torch.cat([a, b], dim=-1) if A.is_tensor(a) else np.concatenate([a, b], axis=-1)


def rope_ntk_base(dim: int, scale: float, *, base: float = 10000.0) -> float:
    """The base of NTK-aware RoPE scaling: ``base · scale^(d / (d - 2))``.

    To run a RoPE model on ``scale`` times the length it was trained on, NTK-aware scaling (a
    2023 community proposal, refined by YaRN: Peng et al. 2024, "YaRN: Efficient Context Window
    Extension of Large Language Models") raises the base instead of dividing the positions. The
    frequencies become ``θ'_i = base'^(-2i/d)``: the fastest pair (``i = 0``) keeps
    ``θ_0 = 1``, and the slowest (``i = d/2 - 1``) is slowed by exactly ``scale``:

    .. math::

        \\theta'_{d/2-1} = (b\\, s^{d/(d-2)})^{-(d-2)/d} = \\theta_{d/2-1} / s .

    Pass the result as ``apply_rope(x, base=rope_ntk_base(d, s))``. Position interpolation
    (Chen et al. 2023) instead passes ``positions / s`` and slows every pair by ``s``.

    Args:
        dim: the rotated width ``d``, an even integer ``>= 4`` (for ``d = 2`` the only pair is
            the fastest one and no base slows it).
        scale: ``s >= 1``, the ratio of the new length to the trained one.
        base: the trained base, 10000 by default.

    Returns:
        The new base, a float ``>= base``.

    Raises:
        ValueError: ``dim`` odd or below 4, ``scale < 1``, ``base <= 0``.
    """
    dim = _check_even_dim("dim", dim)
    if dim < 4:
        raise ValueError(f"dim must be at least 4 for NTK-aware scaling, got dim={dim}")
    base = _check_base(base)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"scale must be a number, got {type(scale).__name__}")
    if not scale >= 1:
        raise ValueError(f"scale must be at least 1 (a longer context), got {scale}")
    return base * float(scale) ** (dim / (dim - 2))


# --- ALiBi --------------------------------------------------------------------------------


def alibi_slopes(
    num_heads: int, *, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """The per-head slopes ``m_h`` of ALiBi (Press et al. 2022, section 3).

    For ``n`` heads, ``n`` a power of two, the slopes are the geometric sequence

    .. math::

        m_h = 2^{-8 (h + 1) / n}, \\qquad h = 0 .. n-1

    e.g. 8 heads: ``1/2, 1/4, ..., 1/256``. For other counts the paper (and the official code,
    ofirpress/attention_with_linear_biases) takes the slopes of the closest power of two below,
    ``2^k < n``, then every other slope of ``2^(k+1)`` heads (the 1st, 3rd, 5th, ...) until there
    are ``n``; e.g. 12 heads: the 8 slopes ``2^-1 .. 2^-8``, then
    ``2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5``.

    Args:
        num_heads: ``H >= 1``.
        dtype, device: of the result (float32, CPU by default).

    Returns:
        ``(H,)`` tensor of slopes in ``(0, 1)``.
    """
    num_heads = A.check_int("num_heads", num_heads, minimum=1)
    return torch.tensor(_alibi_slope_list(num_heads), dtype=torch.float64).to(
        device=device, dtype=dtype
    )


def _alibi_slope_list(num_heads: int) -> list[float]:
    def power_of_two_slopes(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]

    below = 2 ** int(math.floor(math.log2(num_heads)))  # closest power of two <= num_heads
    if below == num_heads:
        return power_of_two_slopes(num_heads)
    extra = power_of_two_slopes(2 * below)[0::2][: num_heads - below]
    return power_of_two_slopes(below) + extra


def alibi_bias(
    num_heads: int,
    lq: int,
    lk: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """ALiBi's additive score bias: ``bias[h, i, j] = m_h · (j - i)``.

    Each head penalises a key linearly in its distance from the query, with the slope ``m_h`` of
    :func:`alibi_slopes`; no position vectors are added to the tokens. The bias is ``<= 0`` for
    ``j <= i`` (0 on the diagonal) and positive for ``j > i``, so ALiBi goes with a causal mask,
    which removes ``j > i``. Positions are aligned top-left (query ``i`` and key ``i`` are the
    same position), like ``causal=True``.

    Use it as the ``bias=`` of the course's attention, with ``q`` of shape ``(B, H, L, d)``::

        out = scaled_dot_product_attention(q, k, v, bias=alibi_bias(H, L, device=q.device),
                                           causal=True)

    The bias ``(H, L, L)`` broadcasts over the batch and is added to the scaled scores. (The
    official code adds ``m_h · j`` instead: each row differs from ``m_h · (j - i)`` by the
    constant ``m_h · i``, which the softmax cancels.)

    Args:
        num_heads: ``H``.
        lq: number of queries ``Lq``.
        lk: number of keys ``Lk``; default ``Lq``.
        dtype, device: of the result (float32, CPU by default).

    Returns:
        ``(H, Lq, Lk)`` tensor.
    """
    slopes = alibi_slopes(num_heads, dtype=torch.float64)  # (H,)
    lq = A.check_int("lq", lq, minimum=0)
    lk = lq if lk is None else A.check_int("lk", lk, minimum=0)
    offsets = (
        torch.arange(lk, dtype=torch.float64)[None, :]
        - torch.arange(lq, dtype=torch.float64)[:, None]
    )
    return (slopes[:, None, None] * offsets).to(device=device, dtype=dtype)  # (H, Lq, Lk)


# --- argument checks ----------------------------------------------------------------------


def _check_even_dim(name: str, dim) -> int:
    dim = A.check_int(name, dim, minimum=1)
    if dim % 2 != 0:
        raise ValueError(f"{name} must be even (sin and cos come in pairs), got {name}={dim}")
    return dim


def _check_base(base) -> float:
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be a number, got {type(base).__name__}")
    if not base > 0:
        raise ValueError(f"base must be positive, got {base}")
    return float(base)


def _is_real_number(x: Array) -> bool:
    if A.is_tensor(x):
        return not x.is_complex() and x.dtype != torch.bool
    return np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)


def _describe(x) -> str:
    return f"dtype {x.dtype}" if A.is_tensor(x) else type(x).__name__
