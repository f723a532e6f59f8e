"""Chapter 21, speech as tokens: frames, the mel scale, subsampling and streaming masks.

The references are the package's :mod:`selfattn_course.audio` (``tests/test_audio.py`` checks it
against hand-worked values, torch.stft and ``nn.Conv1d``) and :mod:`selfattn_course.costs`. The
learner may not call ``selfattn_course.audio`` (nor torch's convolutions for the lengths), which
would give the answers away.
"""

from __future__ import annotations

import math

import torch

from selfattn_course import audio, costs
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.spec.predicates import positive, whole_number
from selfattn_course.grading.verdicts.forbid import CONV_BUILTINS

#: What the tasks may not call: the package's answers and torch's convolutions.
AUDIO_BUILTINS: tuple[str, ...] = (
    "selfattn_course.audio.num_frames",
    "selfattn_course.audio.conv_output_length",
    "selfattn_course.audio.hz_to_mel",
    "selfattn_course.audio.chunk_mask",
    *CONV_BUILTINS,
)

# --- task 1: num_frames ---------------------------------------------------------------------------


def num_frames(num_samples: int, window: int, hop: int) -> int:
    """``1 + ⌊(num_samples − window) / hop⌋`` or 0: :func:`selfattn_course.audio.num_frames`."""
    return audio.num_frames(num_samples, window, hop)


NUM_FRAMES = FunctionTask(
    id="ch21.num_frames",
    title="frames in a signal",
    points=2,
    statement=r"""
        Write `num_frames(num_samples, window, hop)`: how many frames of `window` samples,
        starting every `hop` samples, fit entirely inside a signal of `num_samples` samples
        (no padding, like `torch.stft(..., center=False)`). A signal shorter than one window has
        0 frames. Return a whole number.
        """,
    reference=num_frames,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 10 samples, window 4, hop 2 gives 4", num_samples=10, window=4, hop=2
        ),
        plain_numbers("1 s at 16 kHz, 25 ms / 10 ms", num_samples=16000, window=400, hop=160),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("30 s at 16 kHz", num_samples=480000, window=400, hop=160),
        plain_numbers("shorter than a window", num_samples=100, window=400, hop=160),
        plain_numbers("exactly one window", num_samples=400, window=400, hop=160),
        plain_numbers("hop larger than the window", num_samples=1000, window=100, hop=300),
        plain_numbers("8 kHz, 2.5 s", num_samples=20000, window=200, hop=80),
    ],
    properties=(Property("the count is a whole number", whole_number),),
    mistakes=(
        Mistake(
            "you divided the whole signal by the hop; the last frame must fit entirely, so "
            "count the starts 0, hop, 2·hop, ... up to num_samples − window",
            source="""
                def num_frames(num_samples, window, hop):
                    return num_samples // hop
                """,
        ),
        Mistake(
            "one frame short: the frame that starts at 0 counts too (1 + ...)",
            lambda num_samples, window, hop: max(0, (num_samples - window) // hop),
        ),
        Mistake(
            "a signal shorter than one window has no frame, not a negative or 1",
            lambda num_samples, window, hop: 1 + (num_samples - window) // hop,
        ),
    ),
    runner=returns_number,
    forbidden=AUDIO_BUILTINS,
)


# --- task 2: subsampled_length --------------------------------------------------------------------


def subsampled_length(length: int, kernel: int, stride: int, layers: int) -> int:
    """Length after ``layers`` unpadded ``Conv1d(kernel, stride)`` in a row."""
    for _ in range(layers):
        length = audio.conv_output_length(length, kernel, stride)
    return length


SUBSAMPLED_LENGTH = FunctionTask(
    id="ch21.subsampled_length",
    title="length after strided convolutions",
    points=2,
    statement=r"""
        A speech encoder shortens its frames with `layers` convolutions in a row, each with
        kernel `kernel`, stride `stride` and no padding (`nn.Conv1d(..., kernel, stride)`).
        Write `subsampled_length(length, kernel, stride, layers)`: the number of tokens left from
        `length` frames. One layer gives $\lfloor (L - k) / s \rfloor + 1$. Return a whole
        number; every case leaves at least one token.
        """,
    reference=subsampled_length,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 9 frames, k 3, s 2, one layer gives 4", length=9, kernel=3, stride=2, layers=1
        ),
        plain_numbers(
            "1 s of frames, two k 3, s 2 layers", length=98, kernel=3, stride=2, layers=2
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("30 s, two layers", length=2998, kernel=3, stride=2, layers=2),
        plain_numbers("three layers", length=500, kernel=3, stride=2, layers=3),
        plain_numbers("stride 1", length=50, kernel=5, stride=1, layers=2),
        plain_numbers("no layer", length=77, kernel=3, stride=2, layers=0),
        plain_numbers("kernel 4 stride 4", length=103, kernel=4, stride=4, layers=1),
    ],
    properties=(Property("the length is a whole number", whole_number),),
    mistakes=(
        Mistake(
            "you divided by the stride only; without padding each layer also loses kernel − 1 "
            "frames at the edge: ⌊(L − k) / s⌋ + 1",
            source="""
                def subsampled_length(length, kernel, stride, layers):
                    return length // stride**layers
                """,
        ),
        Mistake(
            "you kept ⌈L / s⌉ tokens per layer, as 'same' padding would; without padding a "
            "layer keeps ⌊(L − k) / s⌋ + 1",
            lambda length, kernel, stride, layers: math.ceil(length / stride**layers),
        ),
    ),
    runner=returns_number,
    forbidden=AUDIO_BUILTINS,
)


# --- task 3: hz_to_mel ----------------------------------------------------------------------------


def hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """HTK's mel scale ``2595 · log10(1 + f / 700)``: :func:`selfattn_course.audio.hz_to_mel`."""
    return audio.hz_to_mel(freq)


def _freqs(values, dtype=torch.float32, device="cpu"):
    return {"freq": torch.tensor(values, dtype=dtype, device=device)}


def _hz_to_mel_hidden(dtype, device) -> list[Case]:
    def uniform(shape, seed):
        return {"freq": 3000 * C.randn(shape, seed=seed, dtype=dtype, device=device).abs()}

    return [
        Case("random frequencies (3, 7), |N(0, 3000²)|", uniform((3, 7), 40)),
        Case("one frequency", uniform((1,), 41)),
        Case("0 Hz and the Nyquist of 16 kHz", _freqs([0.0, 8000.0], dtype, device)),
    ]


def _mel_increases(result, inputs) -> bool:
    order = inputs["freq"].flatten().argsort()
    mels = result.flatten()[order]
    return bool((mels[1:] >= mels[:-1] - 1e-3).all())


HZ_TO_MEL = FunctionTask(
    id="ch21.hz_to_mel",
    title="from hertz to mel",
    points=2,
    statement=r"""
        Write `hz_to_mel(freq)`: HTK's mel scale $m = 2595 \log_{10}(1 + f / 700)$ of every
        frequency in the tensor `freq` (Hz), same shape, dtype and device. 1000 Hz is about
        1000 mel.
        """,
    reference=hz_to_mel,
    visible_cases=lambda: [
        Case("by hand: 0 Hz is 0 mel, 700 Hz is 2595 log10(2)", _freqs([0.0, 700.0])),
        Case("1000 Hz is about 1000 mel", _freqs([1000.0, 4000.0])),
    ],
    hidden_cases=over_devices(_hz_to_mel_hidden),
    properties=(Property("the mel scale increases with frequency", _mel_increases),),
    mistakes=(
        Mistake(
            "you used the natural logarithm with 2595; HTK's 2595 goes with log10 (1127 goes "
            "with ln)",
            source="""
                def hz_to_mel(freq):
                    return 2595 * torch.log(1 + freq / 700)
                """,
        ),
        Mistake(
            "the 1 inside the logarithm is missing: 0 Hz must map to 0 mel",
            source="""
                def hz_to_mel(freq):
                    return 2595 * torch.log10(freq / 700)
                """,
        ),
    ),
    forbidden=AUDIO_BUILTINS,
)


# --- task 4: chunk_mask ---------------------------------------------------------------------------


def chunk_mask(length: int, chunk: int, lookahead: int) -> torch.Tensor:
    """:func:`selfattn_course.audio.chunk_mask`: ``j < (⌊i / chunk⌋ + 1)·chunk + lookahead``."""
    return audio.chunk_mask(length, chunk, lookahead)


def _mask_shape(result, inputs) -> bool:
    length = inputs["length"]
    return tuple(result.shape) == (length, length) and result.dtype == torch.bool


CHUNK_MASK = FunctionTask(
    id="ch21.chunk_mask",
    title="a streaming mask with look-ahead",
    points=3,
    statement=r"""
        Write `chunk_mask(length, chunk, lookahead)` for a streaming speech encoder: a boolean
        `(length, length)` mask, True = may attend (row = query frame, column = key frame).
        The frames are cut into consecutive chunks of `chunk` frames (the last may be shorter);
        frame $i$ may attend to every earlier frame, to every frame of its own chunk, and to the
        `lookahead` frames right after its chunk:
        `mask[i, j]` is True when $j < (\lfloor i / c \rfloor + 1)\,c + \text{lookahead}$.
        `chunk=1, lookahead=0` is the causal mask.
        """,
    reference=chunk_mask,
    visible_cases=lambda: [
        plain_numbers("by hand: length 5, chunk 2, look-ahead 1", length=5, chunk=2, lookahead=1),
        plain_numbers("chunk 1, no look-ahead: causal", length=4, chunk=1, lookahead=0),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("chunk 4, look-ahead 2", length=16, chunk=4, lookahead=2),
        plain_numbers("the last chunk is shorter", length=10, chunk=4, lookahead=1),
        plain_numbers("one chunk covers everything", length=6, chunk=8, lookahead=0),
        plain_numbers("look-ahead past the end", length=7, chunk=3, lookahead=10),
        plain_numbers("one frame", length=1, chunk=1, lookahead=0),
    ],
    properties=(Property("the mask is (length, length) and boolean", _mask_shape),),
    mistakes=(
        Mistake(
            "each frame only sees its own chunk; a streaming encoder keeps every earlier chunk too",
            source="""
                def chunk_mask(length, chunk, lookahead):
                    pos = torch.arange(length)
                    end = (pos // chunk + 1) * chunk + lookahead
                    start = (pos // chunk) * chunk
                    return (pos[None, :] < end[:, None]) & (pos[None, :] >= start[:, None])
                """,
        ),
        Mistake(
            "the look-ahead is counted from the query frame, not from the end of its chunk",
            source="""
                def chunk_mask(length, chunk, lookahead):
                    pos = torch.arange(length)
                    return pos[None, :] <= pos[:, None] + lookahead
                """,
        ),
        Mistake(
            "rows and columns are swapped: row i is the query, column j the key",
            source="""
                def chunk_mask(length, chunk, lookahead):
                    pos = torch.arange(length)
                    end = (pos // chunk + 1) * chunk + lookahead
                    return pos[:, None] < end[None, :]
                """,
        ),
    ),
    forbidden=AUDIO_BUILTINS,
)


# --- task 5: mixing_ratio -------------------------------------------------------------------------

#: The setting of the answer task: 10 s of audio, 10 ms hop, subsampling by 4, width 256.
SECONDS, HOP_MS, FACTOR, WIDTH = 10, 10, 4, 256


def _mixing_ratio() -> float:
    frames = SECONDS * 1000 // HOP_MS
    tokens = frames // FACTOR
    return costs.attention_mixing_flops(frames, WIDTH) / costs.attention_mixing_flops(tokens, WIDTH)


MIXING_RATIO = AnswerTask(
    id="ch21.mixing_ratio",
    title="attention's cost before and after subsampling",
    points=1,
    statement=rf"""
        An encoder layer attends over {SECONDS} s of audio at one frame every {HOP_MS} ms
        (width $d = {WIDTH}$), or over the same audio after convolutions that subsample the
        frames by {FACTOR}. How many times more FLOPs does the mixing ($Q K^\top$ and $A V$,
        $4 n^2 d$) cost over the frames than over the subsampled tokens? Store the number in
        `mixing_ratio`.
        """,
    answer_type=Number(rtol=1e-9, atol=0.0),
    expected=_mixing_ratio(),
    properties=(Property("the ratio is positive", positive),),
    mistakes=(
        Mistake(
            "that is the ratio of the numbers of tokens; the mixing grows with n², so the ratio "
            "is squared",
            source=f"""
                frames = {SECONDS} * 1000 // {HOP_MS}
                tokens = frames // {FACTOR}
                mixing_ratio = frames / tokens
                """,
        ),
        Mistake("the ratio is frames over tokens, not the other way round", 1 / FACTOR**2),
    ),
)

assert math.isclose(_mixing_ratio(), FACTOR**2)

TASKS = [NUM_FRAMES, SUBSAMPLED_LENGTH, HZ_TO_MEL, CHUNK_MASK, MIXING_RATIO]
