"""From text to a padded batch of token ids: a whitespace tokenizer, a vocabulary, padding.

The course's text chapters (14, 15, 16, 18, 22) run on synthetic text, so the tokenizer is the
simplest there is: lower-case, split on whitespace. What they need to get right is the rest of
the path: ids, padding and the mask that says which positions are real.

Conventions, shared with :mod:`selfattn_course.masks` and :mod:`selfattn_course.pooling`:

- ids ``(B, L)`` ``torch.long``; ``lengths`` ``(B,)`` ``torch.long``, the number of real tokens
  of each row;
- ``valid`` ``(B, L)`` ``torch.bool``, **True = real token** (False = padding). As an attention
  mask over keys, :func:`selfattn_course.masks.key_padding_to_attention` turns it into
  ``(B, 1, 1, L)`` (True = may attend). PyTorch's ``nn.MultiheadAttention`` takes the opposite,
  ``key_padding_mask = ~valid``;
- right padding puts the real tokens first (``[a, b, <pad>]``, what encoders usually use); left
  padding puts them last (``[<pad>, a, b]``, what decoders that generate use, so that the last
  position is always the newest token).

Example::

    >>> vocab = Vocabulary.build(["the cat sat", "the dog"])
    >>> ids, lengths = encode_batch(["the cat", "a dog sat down"], vocab)
    >>> ids.tolist(), lengths.tolist()
    ([[2, 3, 0, 0], [1, 4, 5, 1]], [2, 4])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from selfattn_course import masks

__all__ = [
    "PAD",
    "UNK",
    "CLS",
    "tokenize",
    "Vocabulary",
    "pad_sequences",
    "valid_mask",
    "encode_batch",
]

#: The padding token (id 0 in every :class:`Vocabulary`).
PAD = "<pad>"
#: The unknown token (id 1): every word the vocabulary has not seen.
UNK = "<unk>"
#: The classification token a chapter may prepend (``Vocabulary.build(..., specials=(CLS,))``).
CLS = "[cls]"

_PADDING_SIDES = ("right", "left")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it on whitespace: ``"The  cat\\n" -> ["the", "cat"]``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text.lower().split()


class Vocabulary:
    """A bijection between tokens and ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Ids ``0`` and ``1`` are always :data:`PAD` and :data:`UNK`; the ``specials`` (e.g.
    :data:`CLS`) come next, then the ``tokens`` in the order given. :meth:`build` orders the words
    of a corpus by decreasing count, ties broken alphabetically, so the ids do not depend on the
    order of the texts' words within one count.
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, tokens: Iterable[str] = (), *, specials: Sequence[str] = ()):
        self._tokens: list[str] = []
        self._ids: dict[str, int] = {}
        for token in (PAD, UNK, *specials, *tokens):
            if not isinstance(token, str):
                raise TypeError(f"tokens must be str, got {type(token).__name__}")
            if token not in self._ids:
                self._ids[token] = len(self._tokens)
                self._tokens.append(token)

    @classmethod
    def build(
        cls, texts: Iterable[str], *, min_count: int = 1, specials: Sequence[str] = ()
    ) -> Vocabulary:
        """The vocabulary of the words of ``texts`` (by :func:`tokenize`) seen at least
        ``min_count`` times, most frequent first; rarer words will map to ``<unk>``."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        counts = Counter(word for text in texts for word in tokenize(text))
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(kept, specials=specials)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __getitem__(self, token: str) -> int:
        """The id of ``token``, :attr:`unk_id` for a token not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    @property
    def tokens(self) -> list[str]:
        """Every token, in id order (``tokens[i]`` has id ``i``)."""
        return list(self._tokens)

    def encode(self, text_or_tokens: str | Sequence[str]) -> list[int]:
        """The ids of a text (tokenized with :func:`tokenize`) or of a list of tokens."""
        tokens = tokenize(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens
        return [self[token] for token in tokens]

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> list[str]:
        """The tokens of ``ids`` (a list or a 1-D tensor); padding left out unless
        ``skip_pad=False``. ``IndexError`` for an id outside ``0 .. len(self) - 1``."""
        out = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            i = int(i)
            if not 0 <= i < len(self._tokens):
                raise IndexError(f"id {i} is outside the vocabulary of {len(self._tokens)} tokens")
            if skip_pad and i == self.pad_id:
                continue
            out.append(self._tokens[i])
        return out

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"


def _check_padding_side(padding_side: str) -> None:
    if padding_side not in _PADDING_SIDES:
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int = Vocabulary.pad_id,
    max_len: int | None = None,
    padding_side: str = "right",
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id lists of different lengths into ``ids (B, L)`` and ``lengths (B,)``.

    ``L`` is ``max_len``, or the longest sequence's length when ``max_len`` is None (0 for an
    empty batch). With ``padding_side="right"`` row ``b`` is ``seq + [pad_id] * (L - len)``;
    with ``"left"`` it is ``[pad_id] * (L - len) + seq``. A sequence longer than ``max_len`` is
    cut to its first ``max_len`` ids (right padding) or its last ``max_len`` ids (left padding,
    which keeps the newest tokens); ``lengths`` counts the ids kept.
    """
    _check_padding_side(padding_side)
    longest = max((len(s) for s in sequences), default=0)
    if max_len is None:
        max_len = longest
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ValueError(f"max_len must be an int >= 0, got {max_len!r}")
    ids = torch.full((len(sequences), max_len), pad_id, dtype=torch.long, device=device)
    lengths = torch.zeros(len(sequences), dtype=torch.long, device=device)
    for row, seq in enumerate(sequences):
        seq = list(seq)
        seq = seq[:max_len] if padding_side == "right" else seq[max(len(seq) - max_len, 0) :]
        n = len(seq)
        lengths[row] = n
        if n == 0:
            continue
        values = torch.tensor(seq, dtype=torch.long, device=device)
        if padding_side == "right":
            ids[row, :n] = values
        else:
            ids[row, max_len - n :] = values
    return ids, lengths


def valid_mask(lengths: torch.Tensor, max_len: int, *, padding_side: str = "right") -> torch.Tensor:
    """``(B, L)`` bool, True where a position holds a real token (the mask convention above).

    Right padding: ``valid[b, j] = j < lengths[b]`` (the same as
    :func:`selfattn_course.masks.padding_mask`). Left padding:
    ``valid[b, j] = j >= L - lengths[b]``.
    """
    _check_padding_side(padding_side)
    valid = masks.padding_mask(lengths, max_len)
    return valid if padding_side == "right" else valid.flip(-1)


def encode_batch(
    texts: Sequence[str],
    vocab: Vocabulary,
    *,
    max_len: int | None = None,
    padding_side: str = "right",
    prepend: str | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize, look up and pad a list of texts: ``ids (B, L)`` long and ``lengths (B,)`` long.

    ``prepend`` (e.g. :data:`CLS`) is put before every text's tokens (it counts in ``lengths``;
    it must be in ``vocab``). The mask of real tokens is
    ``valid_mask(lengths, ids.shape[1], padding_side=padding_side)``.
    """
    if prepend is not None and prepend not in vocab:
        raise ValueError(f"prepend={prepend!r} is not in the vocabulary; add it to its specials")
    sequences = []
    for text in texts:
        tokens = tokenize(text)
        if prepend is not None:
            tokens = [prepend, *tokens]
        sequences.append(vocab.encode(tokens))
    return pad_sequences(
        sequences, pad_id=vocab.pad_id, max_len=max_len, padding_side=padding_side, device=device
    )
