"""Speech as tokens: frames, the mel scale, log-mel features, subsampling and streaming masks.

A speech encoder sees audio as a sequence of short overlapping frames: a window of ``window``
samples moved by ``hop`` samples (25 ms and 10 ms in most systems, so about 100 frames per
second). Each frame's power spectrum (``torch.stft``) is pooled by triangular filters spaced
evenly on the mel scale (HTK's formula, ``mel = 2595 log10(1 + f / 700)``) and its logarithm
taken: the log-mel features, ``(..., frames, n_mels)``. Strided convolutions then shorten the
sequence before attention (:func:`conv_output_length`), and a streaming encoder restricts
attention with :func:`chunk_mask` (True = may attend, the course's convention).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "chunk_mask",
    "conv_output_length",
    "hz_to_mel",
    "log_mel",
    "mel_filterbank",
    "mel_to_hz",
    "num_frames",
]


def hz_to_mel(freq):
    """HTK's mel scale, ``2595 · log10(1 + f / 700)``: 1000 Hz is about 1000 mel.

    ``freq`` in Hz: a float, a NumPy array or a tensor; the result has the same kind.
    """
    if isinstance(freq, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    return 2595.0 * np.log10(1.0 + np.asarray(freq, dtype=float) / 700.0)


def mel_to_hz(mel):
    """The inverse of :func:`hz_to_mel`: ``700 · (10^(mel / 2595) − 1)``."""
    if isinstance(mel, torch.Tensor):
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=float) / 2595.0) - 1.0)


def num_frames(num_samples: int, window: int, hop: int) -> int:
    """Frames of ``window`` samples every ``hop`` samples that fit in ``num_samples`` (no
    padding, ``torch.stft(..., center=False)``): ``1 + ⌊(num_samples − window) / hop⌋``, or 0
    when the signal is shorter than one window."""
    for name, value in (("num_samples", num_samples), ("window", window), ("hop", hop)):
        if int(value) != value or value < (0 if name == "num_samples" else 1):
            raise ValueError(f"{name} must be a whole number >= 1 (>= 0 for samples), got {value}")
    if num_samples < window:
        return 0
    return 1 + (int(num_samples) - int(window)) // int(hop)


def conv_output_length(length: int, kernel: int, stride: int, padding: int = 0) -> int:
    """The output length of a 1-D convolution (``nn.Conv1d``, dilation 1):
    ``⌊(length + 2·padding − kernel) / stride⌋ + 1``."""
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"need kernel, stride >= 1 and padding >= 0, got {kernel, stride, padding}"
        )
    if length + 2 * padding < kernel:
        raise ValueError(f"length {length} (+2·padding {padding}) is shorter than kernel {kernel}")
    return (length + 2 * padding - kernel) // stride + 1


def mel_filterbank(
    n_fft: int,
    n_mels: int,
    sample_rate: int,
    *,
    f_min: float = 0.0,
    f_max: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Triangular filters spaced evenly on the mel scale, ``(n_fft // 2 + 1, n_mels)``.

    The ``n_mels + 2`` edges are evenly spaced in mel from ``f_min`` to ``f_max`` (default
    ``sample_rate / 2``); filter ``m`` rises linearly (in Hz) from edge ``m`` to 1 at edge
    ``m + 1`` and falls to 0 at edge ``m + 2``. Column ``m`` weighs the ``n_fft // 2 + 1`` bins
    of a power spectrum (bin ``k`` is ``k · sample_rate / n_fft`` Hz), so
    ``power @ filterbank`` gives ``(..., n_mels)``. No area normalisation (torchaudio's
    ``melscale_fbanks(..., norm=None, mel_scale="htk")``).
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got {f_min}, {f_max}")
    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(
        float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64
    )
    edges = mel_to_hz(edges_mel)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(dtype)


def log_mel(
    signal: torch.Tensor,
    sample_rate: int,
    *,
    window_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_mels: int = 40,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Log-mel features of ``signal`` ``(..., samples)``: ``(..., frames, n_mels)``.

    Hann windows of ``window_ms`` every ``hop_ms`` (no padding, so
    ``frames = num_frames(samples, window, hop)``), an FFT of the window's length
    (``n_fft = window``: bin ``k`` is ``k · sample_rate / window`` Hz; ``torch.stft`` frames the
    signal by ``n_fft``, so a longer FFT would drop frames); power spectrum ``|STFT|²``;
    :func:`mel_filterbank`; ``log(· + eps)``.
    """
    window = round(sample_rate * window_ms / 1000)
    hop = round(sample_rate * hop_ms / 1000)
    n_fft = window
    batch_shape = signal.shape[:-1]
    spectrum = torch.stft(
        signal.reshape(-1, signal.shape[-1]),
        n_fft=n_fft,
        hop_length=hop,
        win_length=window,
        window=torch.hann_window(window, dtype=signal.dtype, device=signal.device),
        center=False,
        return_complex=True,
    )  # (batch, n_fft // 2 + 1, frames)
    power = spectrum.abs().square().transpose(-2, -1)
    filters = mel_filterbank(n_fft, n_mels, sample_rate, dtype=power.dtype).to(power.device)
    features = torch.log(power @ filters + eps)
    return features.reshape(*batch_shape, *features.shape[-2:])


def chunk_mask(length: int, chunk: int, lookahead: int = 0, *, device=None) -> torch.Tensor:
    """The mask of a streaming encoder: ``(length, length)`` bool, True = may attend.

    Frames are cut into chunks of ``chunk`` frames; frame ``i`` sees every frame up to the end of
    its own chunk and ``lookahead`` frames past it:
    ``mask[i, j] = j < (⌊i / chunk⌋ + 1) · chunk + lookahead``. ``chunk=1, lookahead=0`` is the
    causal mask; ``chunk >= length`` is full attention.
    """
    if chunk < 1 or lookahead < 0:
        raise ValueError(f"need chunk >= 1 and lookahead >= 0, got {chunk}, {lookahead}")
    positions = torch.arange(length, device=device)
    visible_end = (positions // chunk + 1) * chunk + lookahead
    return positions[None, :] < visible_end[:, None]
