"""The encoder–decoder of machine translation: its three masks, a tiny model, greedy decoding.

An encoder–decoder Transformer (Vaswani et al. 2017) makes three attention calls, each with its
own boolean mask (True = may attend, as in :mod:`selfattn_course.masks`) for a right-padded batch
of ``B`` source sentences of padded length ``S`` and target sentences of padded length ``T``:

=================================  ================  ===========================================
call                               mask shape        True where
=================================  ================  ===========================================
encoder self-attention             ``(B, 1, S, S)``  key ``j`` is a real source token
decoder self-attention             ``(B, 1, T, T)``  ``j <= i`` and key ``j`` is a real target
cross-attention (decoder→encoder)  ``(B, 1, T, S)``  key ``j`` is a real source token
=================================  ================  ===========================================

Only keys are masked: the rows of padded *queries* are computed and then ignored by the loss
(they never feed a real position, because no real query may attend to a padded key).

Training uses teacher forcing: the whole shifted target goes in at once and the causal mask
stands in for "not generated yet". Decoding is sequential: :func:`greedy_decode` runs the decoder
one token at a time, with one :class:`~selfattn_course.attention.KVCache` per decoder layer for
its self-attention and the encoder's keys and values projected once for the cross-attention.
``greedy_decode(..., use_cache=False)`` recomputes the whole causal decoder over the prefix at
every step instead; the two give the same tokens and, up to rounding, the same logits.

Why the model lives here and not in a chapter: a cached step has to reach into the layer's
projections (``q_proj``, ``k_proj``, ...) to append one key and value to the cache, so the
decoding loop and the model it decodes are written together, once, for chapters 15, 16 and 24.
:class:`TinyTranslator` is deliberately small and plain (pre-LN blocks built from the package's
:class:`~selfattn_course.attention.MultiHeadAttention`, sinusoidal positions, one embedding table
shared by both languages and the output layer).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from selfattn_course.attention import (
    KVCache,
    MultiHeadAttention,
    TransformerBlock,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from selfattn_course.attention.modules import FeedForward
from selfattn_course.encodings import sinusoidal
from selfattn_course.masks import causal_mask, combine, key_padding_to_attention, padding_mask

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "Seq2SeqMasks",
    "encoder_decoder_masks",
    "DecoderLayer",
    "TinyTranslator",
    "greedy_decode",
]

#: Token ids reserved in every vocabulary of the course's toy translation tasks.
PAD, BOS, EOS = 0, 1, 2


class Seq2SeqMasks(NamedTuple):
    """The three boolean masks of an encoder–decoder (True = may attend)."""

    encoder: torch.Tensor  #: ``(B, 1, S, S)`` encoder self-attention
    decoder: torch.Tensor  #: ``(B, 1, T, T)`` decoder self-attention, causal and padding
    cross: torch.Tensor  #: ``(B, 1, T, S)`` decoder queries over encoder keys


def encoder_decoder_masks(
    src_lengths: torch.Tensor,
    tgt_lengths: torch.Tensor,
    src_len: int | None = None,
    tgt_len: int | None = None,
) -> Seq2SeqMasks:
    """The masks of the three attention calls for a right-padded batch.

    .. math::

        \\text{encoder}[b, 0, i, j] = j < S_b, \\quad
        \\text{decoder}[b, 0, i, j] = j \\le i \\wedge j < T_b, \\quad
        \\text{cross}[b, 0, i, j] = j < S_b

    Args:
        src_lengths: ``(B,)`` integer tensor, the real length ``S_b`` of each source sentence.
        tgt_lengths: ``(B,)`` integer tensor, the real length ``T_b`` of each (decoder input)
            target sentence.
        src_len, tgt_len: padded lengths ``S`` and ``T``; default the longest of each.

    Returns:
        :class:`Seq2SeqMasks` of ``torch.bool`` tensors on the device of ``src_lengths``, shaped
        to broadcast over scores ``(B, H, Lq, Lk)`` (their second dim is 1 for every head).
        ``nn.MultiheadAttention``/``nn.Transformer`` want the opposite (True = blocked): pass
        ``~mask`` there.
    """
    if src_lengths.shape != tgt_lengths.shape or src_lengths.dim() != 1:
        raise ValueError(
            "src_lengths and tgt_lengths must both have shape (B,), got "
            f"{tuple(src_lengths.shape)} and {tuple(tgt_lengths.shape)}"
        )
    src_valid = padding_mask(src_lengths, src_len)  # (B, S)
    tgt_valid = padding_mask(tgt_lengths, tgt_len)  # (B, T)
    batch, source, target = src_valid.shape[0], src_valid.shape[1], tgt_valid.shape[1]
    src_keys = key_padding_to_attention(src_valid)  # (B, 1, 1, S)
    causal = causal_mask(target, device=src_valid.device)  # (T, T)
    return Seq2SeqMasks(
        encoder=src_keys.expand(batch, 1, source, source),
        decoder=combine(key_padding_to_attention(tgt_valid), causal),  # (B, 1, T, T)
        cross=src_keys.expand(batch, 1, target, source),
    )


class DecoderLayer(nn.Module):
    """A pre-LN decoder block: causal self-attention, cross-attention, feed-forward::

        x = x + SelfAttn(LN1(x))              mask: causal and target padding
        x = x + CrossAttn(LN2(x), memory)     mask: source padding
        x = x + FFN(LN3(x))

    Shapes: ``x`` ``(B, T, d)``, ``memory`` ``(B, S, d)``; output ``(B, T, d)``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x, memory, *, self_mask, cross_mask, need_weights: bool = False):
        """All target positions at once (teacher forcing); returns ``(x, cross_weights)``,
        the weights ``(B, H, T, S)`` or None."""
        x = x + self.self_attn(self.norm1(x), mask=self_mask)[0]
        attended, weights = self.cross_attn(
            self.norm2(x),
            memory,
            mask=cross_mask,
            need_weights=need_weights,
            average_attn_weights=False,
        )
        x = x + attended
        return x + self.feed_forward(self.norm3(x)), weights

    def step(self, x_t, cache: KVCache, cross_keys, cross_values, cross_mask):
        """One new position ``x_t`` ``(B, 1, d)`` against the cached prefix.

        Its key and value join ``cache``; its query attends to every cached key (all are at or
        before it, so no causal mask is needed) and to the precomputed ``cross_keys`` and
        ``cross_values`` ``(B, H, S, d_k)`` of the source under ``cross_mask`` ``(B, 1, 1, S)``.
        """
        attn = self.self_attn
        h = self.norm1(x_t)
        q = split_heads(attn.q_proj(h), attn.num_heads)  # (B, H, 1, d_k)
        k = split_heads(attn.k_proj(h), attn.num_heads)
        v = split_heads(attn.v_proj(h), attn.num_heads)
        keys, values = cache.append(k, v)  # (B, H, t, d_k)
        x_t = x_t + attn.out_proj(merge_heads(scaled_dot_product_attention(q, keys, values)))

        cross = self.cross_attn
        q = split_heads(cross.q_proj(self.norm2(x_t)), cross.num_heads)
        mixed = scaled_dot_product_attention(q, cross_keys, cross_values, cross_mask)
        x_t = x_t + cross.out_proj(merge_heads(mixed))
        return x_t + self.feed_forward(self.norm3(x_t))


class TinyTranslator(nn.Module):
    """A small encoder–decoder Transformer for toy translation tasks.

    One embedding table serves the source, the target and (tied) the output layer, so both
    languages live in one shared vocabulary, as in multilingual translation models (Johnson et
    al. 2017); ids :data:`PAD`, :data:`BOS` and :data:`EOS` are reserved. Positions are the fixed
    sinusoidal encoding, added to the embeddings scaled by ``sqrt(d_model)``.

    Args:
        vocab_size: size of the shared vocabulary.
        d_model, num_heads, d_ff: widths of the blocks.
        encoder_layers, decoder_layers: depth of each side.
        max_positions: longest sequence the position table covers.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        d_model: int = 32,
        num_heads: int = 2,
        d_ff: int = 64,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        max_positions: int = 64,
    ):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab_size, d_model)
        # std 1/sqrt(d): the embeddings scaled by sqrt(d) have unit size, and the tied output
        # layer starts with logits of order 1 (with nn.Embedding's std 1 they are of order sqrt(d))
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        self.register_buffer("positions", sinusoidal(max_positions, d_model), persistent=False)
        self.encoder = nn.ModuleList(
            TransformerBlock(d_model, num_heads, d_ff, norm_first=True)
            for _ in range(encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff) for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)

    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``(B, L)`` ids at positions ``start..start+L-1`` -> ``(B, L, d_model)``."""
        scaled = self.embedding(tokens) * self.d_model**0.5
        return scaled + self.positions[start : start + tokens.shape[1]]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, d_model) -> (B, L, vocab)``: the final norm and the tied output layer."""
        return self.decoder_norm(x) @ self.embedding.weight.T

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """``src`` ``(B, S)`` -> memory ``(B, S, d_model)``, padded keys masked."""
        x = self.embed(src)
        mask = key_padding_to_attention(padding_mask(src_lengths, src.shape[1]))  # (B,1,1,S)
        for block in self.encoder:
            x = block(x, mask=mask)
        return self.encoder_norm(x)

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_lengths: torch.Tensor | None = None,
        *,
        need_weights: bool = False,
    ):
        """Every target position at once (teacher forcing, or recomputation while decoding).

        Args:
            tgt_in: ``(B, T)`` decoder inputs, ``BOS`` then the target shifted right.
            memory: ``(B, S, d_model)`` from :meth:`encode`.
            src_lengths, tgt_lengths: ``(B,)`` real lengths; ``tgt_lengths`` None = all real.

        Returns:
            ``(logits, cross_weights)``: ``(B, T, vocab)``, and a list with each layer's
            cross-attention weights ``(B, H, T, S)`` when ``need_weights`` (else None).
        """
        if tgt_lengths is None:
            tgt_lengths = torch.full_like(src_lengths, tgt_in.shape[1])
        masks = encoder_decoder_masks(src_lengths, tgt_lengths, memory.shape[1], tgt_in.shape[1])
        x = self.embed(tgt_in)
        weights = []
        for layer in self.decoder:
            x, w = layer(
                x,
                memory,
                self_mask=masks.decoder,
                cross_mask=masks.cross,
                need_weights=need_weights,
            )
            weights.append(w)
        return self.logits(x), (weights if need_weights else None)

    def forward(self, src, src_lengths, tgt_in, tgt_lengths):
        """``(B, T, vocab)`` logits of every target position (teacher forcing)."""
        memory = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, src_lengths, tgt_lengths)[0]


@torch.no_grad()
def greedy_decode(
    model: TinyTranslator,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    max_len: int,
    bos: int = BOS,
    eos: int = EOS,
    pad: int = PAD,
    use_cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate ``src`` by picking the most likely token at each step until ``eos``.

    With ``use_cache`` each step feeds the decoder one token: every layer appends its key and
    value to a :class:`~selfattn_course.attention.KVCache` and attends from the new query alone,
    ``O(t·d)`` per layer at step ``t``. Without it each step reruns the full causal decoder over
    the whole prefix and keeps the last row, ``O(t²·d)``. Both give the same result.

    A sentence that has produced ``eos`` is finished: its later tokens are ``pad`` (they are
    still fed to the decoder so the batch stays rectangular, but nothing real attends to them).
    The loop stops when every sentence is finished or after ``max_len`` tokens.

    Args:
        model: a :class:`TinyTranslator` (or anything with its ``encode``, ``embed``,
            ``decoder`` layers with ``step``, and ``logits``).
        src: ``(B, S)`` source ids; ``src_lengths`` ``(B,)`` their real lengths.
        max_len: most tokens to generate, ``eos`` included.

    Returns:
        ``(tokens, logits)``: ``(B, n)`` generated ids (``eos`` included, ``pad`` after it) and
        ``(B, n, vocab)`` the logits each choice was made from, ``n <= max_len``.
    """
    batch = src.shape[0]
    memory = model.encode(src, src_lengths)
    cross_mask = key_padding_to_attention(padding_mask(src_lengths, src.shape[1]))
    token = torch.full((batch, 1), bos, dtype=torch.long, device=src.device)
    prefix = token
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    tokens, all_logits = [], []
    if use_cache:
        caches, cross_kv = [], []
        for layer in model.decoder:
            attn, cross = layer.self_attn, layer.cross_attn
            caches.append(
                KVCache(
                    batch, attn.num_heads, attn.head_dim, dtype=memory.dtype, device=memory.device
                )
            )
            cross_kv.append(
                (
                    split_heads(cross.k_proj(memory), cross.num_heads),  # (B, H, S, d_k), once
                    split_heads(cross.v_proj(memory), cross.num_heads),
                )
            )
    for step in range(max_len):
        if use_cache:
            x = model.embed(token, start=step)  # (B, 1, d)
            for layer, cache, (keys, values) in zip(model.decoder, caches, cross_kv, strict=True):
                x = layer.step(x, cache, keys, values, cross_mask)
            logits = model.logits(x)[:, -1]  # (B, vocab)
        else:
            logits = model.decode(prefix, memory, src_lengths)[0][:, -1]
        choice = logits.argmax(dim=-1)
        choice = torch.where(finished, torch.full_like(choice, pad), choice)
        tokens.append(choice)
        all_logits.append(logits)
        finished = finished | (choice == eos)
        token = choice[:, None]
        prefix = torch.cat([prefix, token], dim=1)
        if bool(finished.all()):
            break
    return torch.stack(tokens, dim=1), torch.stack(all_logits, dim=1)
