"""Fused GPU kernels written in Triton, with their launch wrappers.

- :func:`flash_attention` - exact attention in fused kernels (FlashAttention-2, forward and
  backward, multi-head, grouped- or multi-query with ``enable_gqa``), for CUDA tensors, or CPU
  tensors under Triton's interpreter (``TRITON_INTERPRET=1``).

Importing this package does not import Triton; the first call does. So the package imports on
machines without Triton, and only a call there fails, with a message saying why.
"""

from .flash_attention import SUPPORTED_DTYPES, SUPPORTED_HEAD_DIMS, flash_attention

__all__ = ["flash_attention", "SUPPORTED_DTYPES", "SUPPORTED_HEAD_DIMS"]
