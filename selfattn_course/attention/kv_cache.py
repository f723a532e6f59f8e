"""The key/value cache of autoregressive decoding.

A decoder that generates token ``t`` attends from its new query to the keys and values of every
position ``0..t``. Those of the earlier positions do not change (causal masking means position
``s`` never sees anything after it), so they are computed once and kept: generating one token
then costs ``O(t·d)`` for the attention instead of recomputing all ``t`` rows, ``O(t²·d)``.
The price is memory that grows with the context,

    bytes = 2 (keys and values) · layers · kv_heads · head_dim · tokens · batch · bytes_per_number,

against an RNN's fixed-size state (chapter 9).

:class:`KVCache` holds one layer's cache as ``(B, H, T, d)`` tensors (the layout of
``scaled_dot_product_attention``). Appends go into a buffer that doubles when full, so ``n``
appends of one token copy ``O(n)`` entries in all, not ``O(n²)`` as ``torch.cat`` each step would.
"""

from __future__ import annotations

import torch

from selfattn_course import _arrays as A


class KVCache:
    """Keys and values of the positions seen so far, for one attention layer.

    Args:
        batch: ``B``, the number of sequences decoded together.
        heads: ``H``, the number of key/value heads (fewer than the query heads with
            grouped-query attention).
        head_dim: ``d_k``, the width of one key.
        value_dim: ``d_v``, the width of one value; default ``head_dim``.
        dtype, device: of the stored keys and values; default float32 on the CPU.
        capacity: positions to reserve at first (the buffer doubles when it fills).

    Example (one decoding step of one head, equal to the last row of full causal attention)::

        cache = KVCache(1, 1, 8)
        for t in range(n):
            keys, values = cache.append(k[..., t : t + 1, :], v[..., t : t + 1, :])
            out_t = scaled_dot_product_attention(q[..., t : t + 1, :], keys, values)
    """

    def __init__(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        *,
        value_dim: int | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
        capacity: int = 16,
    ) -> None:
        self.batch = A.check_int("batch", batch, minimum=1)
        self.heads = A.check_int("heads", heads, minimum=1)
        self.head_dim = A.check_int("head_dim", head_dim, minimum=1)
        self.value_dim = A.check_int(
            "value_dim", head_dim if value_dim is None else value_dim, minimum=1
        )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        capacity = A.check_int("capacity", capacity, minimum=1)
        self._keys = torch.empty(batch, heads, capacity, head_dim, dtype=dtype, device=device)
        self._values = torch.empty(
            batch, heads, capacity, self.value_dim, dtype=dtype, device=device
        )
        self._length = 0

    def __len__(self) -> int:
        """``T``, the number of positions stored."""
        return self._length

    @property
    def keys(self) -> torch.Tensor:
        """``(B, H, T, d_k)``: the stored keys (a view of the buffer; do not modify it)."""
        return self._keys[:, :, : self._length]

    @property
    def values(self) -> torch.Tensor:
        """``(B, H, T, d_v)``: the stored values (a view of the buffer; do not modify it)."""
        return self._values[:, :, : self._length]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored keys and values, ``B·H·T·(d_k + d_v)·bytes_per_number``.

        The buffer may reserve up to twice as much (:attr:`capacity_bytes`).
        """
        return self._length * self._bytes_per_position()

    @property
    def capacity_bytes(self) -> int:
        """Bytes reserved by the buffer, stored positions and free ones."""
        return self._keys.shape[2] * self._bytes_per_position()

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the keys ``k`` ``(B, H, t, d_k)`` and values ``v`` ``(B, H, t, d_v)`` of ``t``
        new positions; return every key and value so far, ``(B, H, T, d_k)`` and
        ``(B, H, T, d_v)`` with ``T = len(self)``.

        ``k`` and ``v`` must have the cache's batch, heads, widths, dtype and device.
        """
        self._check_new("k", k, self.head_dim)
        self._check_new("v", v, self.value_dim)
        if k.shape[2] != v.shape[2]:
            raise ValueError(
                f"k and v must add the same number of positions, got k {A.shape_str(k.shape)} "
                f"and v {A.shape_str(v.shape)}"
            )
        new_length = self._length + k.shape[2]
        if new_length > self._keys.shape[2]:
            self._grow(new_length)
        self._keys[:, :, self._length : new_length] = k
        self._values[:, :, self._length : new_length] = v
        self._length = new_length
        return self.keys, self.values

    def _grow(self, needed: int) -> None:
        capacity = self._keys.shape[2]
        while capacity < needed:
            capacity *= 2
        for name in ("_keys", "_values"):
            old = getattr(self, name)
            new = old.new_empty(*old.shape[:2], capacity, old.shape[3])
            new[:, :, : self._length] = old[:, :, : self._length]
            setattr(self, name, new)

    def _bytes_per_position(self) -> int:
        element = self._keys.element_size()
        return self.batch * self.heads * (self.head_dim + self.value_dim) * element

    def _check_new(self, name: str, x: torch.Tensor, width: int) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        expected = (self.batch, self.heads, width)
        if x.dim() != 4 or (x.shape[0], x.shape[1], x.shape[3]) != expected:
            raise ValueError(
                f"{name} must have shape (B, H, t, d) = ({self.batch}, {self.heads}, t, {width}), "
                f"got {A.shape_str(x.shape)}"
            )
        if x.dtype != self._keys.dtype or x.device != self._keys.device:
            raise TypeError(
                f"{name} must be {self._keys.dtype} on {self._keys.device} like the cache, "
                f"got {x.dtype} on {x.device}"
            )


def kv_cache_bytes(
    tokens: int,
    layers: int,
    kv_heads: int,
    head_dim: int,
    bytes_per_number: int,
    batch: int = 1,
) -> int:
    """Memory of a model's whole KV cache: ``2 · layers · kv_heads · head_dim · tokens · batch ·
    bytes_per_number`` (keys and values of every token in every layer).

    ``kv_heads`` is the number of key/value heads: all heads for multi-head attention, fewer with
    grouped-query attention, 1 with multi-query attention.
    """
    values = {
        "tokens": tokens,
        "layers": layers,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "bytes_per_number": bytes_per_number,
        "batch": batch,
    }
    for name, value in values.items():
        A.check_int(name, value, minimum=0)
    return 2 * layers * kv_heads * head_dim * tokens * batch * bytes_per_number
