"""selfattn_course: the support package of the self-attention course.

Subpackages and modules (import what you need)::

    selfattn_course.attention   softmax, scaled_dot_product_attention, chunked and sliding-window
                                attention, SelfAttention, MultiHeadAttention, TransformerBlock
    selfattn_course.masks       boolean masks, True = may attend / real token
    selfattn_course.encodings   sinusoidal, learned, T5 relative buckets, RoPE, ALiBi
    selfattn_course.devices     default_device(), available_devices()
    selfattn_course.kernels     the Triton flash-attention kernel (CUDA, or TRITON_INTERPRET=1)

The package imports neither nbgrader nor jupyter-book, so GPU machines can run it with just
torch and numpy installed.
"""

__version__ = "0.1.0"
