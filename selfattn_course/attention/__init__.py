"""Attention, from the reference formula to memory-efficient exact variants and nn.Modules.

Functional API (NumPy arrays or torch tensors in, the same kind out; shapes ``(..., L, d)``;
boolean masks are True where attention is allowed):

- :func:`softmax` - stable, mask-aware softmax; an all-masked row is all zeros.
- :func:`scaled_dot_product_attention` - the reference, materialising ``(Lq, Lk)`` weights.
- :func:`chunked_attention` - the same result block by block with an online softmax: beside the
  output, one block of scores at a time (O(block²) extra memory instead of O(Lq·Lk)).
- :func:`sliding_window_attention` - each query sees keys within a window.

Decoding (torch): :class:`KVCache`, one layer's keys and values of the positions seen so far,
and :func:`kv_cache_bytes`, the memory of a whole model's cache.

Heads (torch): :func:`split_heads` ``(B, L, d) -> (B, h, L, d/h)`` and its inverse
:func:`merge_heads`; :func:`repeat_kv_heads` for grouped-query attention (also
``scaled_dot_product_attention(..., enable_gqa=True)``).

Modules (torch): :class:`SelfAttention`, :class:`MultiHeadAttention`, :class:`TransformerBlock`.
The two attention layers' ``forward`` returns ``(out, weights)``, ``weights`` None unless
``need_weights=True``; the block's returns ``out``.
"""

from .chunked import chunked_attention
from .heads import merge_heads, repeat_kv_heads, split_heads
from .kv_cache import KVCache, kv_cache_bytes
from .modules import MultiHeadAttention, SelfAttention, TransformerBlock
from .sdpa import scaled_dot_product_attention
from .sliding_window import sliding_window_attention
from .softmax import softmax

__all__ = [
    "softmax",
    "scaled_dot_product_attention",
    "chunked_attention",
    "sliding_window_attention",
    "split_heads",
    "merge_heads",
    "repeat_kv_heads",
    "KVCache",
    "kv_cache_bytes",
    "SelfAttention",
    "MultiHeadAttention",
    "TransformerBlock",
]
