"""Chapter 22, self-attention for health records: visit times, calibration, pooling over visits.

References: ``time_encoding`` is written out here (the tests check it against the package's
:func:`selfattn_course.encodings.sinusoidal` at whole days); ``expected_calibration_error`` is
written out from the definition (the tests check it against a loop over patients);
``attention_pool`` calls the package's
:func:`selfattn_course.attention.scaled_dot_product_attention`, which the learner may not call
(nor torch's attention or the package's pooling). The constant predictor's numbers follow
from the definitions (the chapter computes them in code).
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Numbers
from selfattn_course.grading.spec.predicates import between_zero_and_one, finite
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS

POOLING_BUILTINS: tuple[str, ...] = (
    "selfattn_course.pooling.masked_mean",
    "selfattn_course.pooling.cls_pool",
    "selfattn_course.pooling.last_pool",
)

# --- task 1: time_encoding ------------------------------------------------------------------------


def time_encoding(days: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal encoding of continuous times: ``(...,)`` float -> ``(..., dim)``.

    ``out[..., 2i] = sin(t / base^(2i/dim))``, ``out[..., 2i+1] = cos(t / base^(2i/dim))`` for
    ``i = 0 .. dim/2 - 1`` (interleaved, as :func:`selfattn_course.encodings.sinusoidal`), in the
    dtype and on the device of ``days``.
    """
    exponents = torch.arange(0, dim, 2, dtype=days.dtype, device=days.device) / dim
    angles = days[..., None] / base**exponents
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


def _days(shape, seed, *, dtype=torch.float32, device="cpu", top=730.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * top).to(dtype).to(device)


def _days_hidden(dtype, device) -> list[Case]:
    return [
        Case(
            "days (4, 7) up to two years, dim 16",
            {"days": _days((4, 7), 30, dtype=dtype, device=device), "dim": 16},
        ),
        Case(
            "fractions of a day, dim 2",
            {"days": _days((5,), 31, dtype=dtype, device=device, top=1.0), "dim": 2},
        ),
        Case(
            "base 100, dim 8",
            {"days": _days((2, 3), 32, dtype=dtype, device=device), "dim": 8, "base": 100.0},
        ),
    ]


def _unit_pairs(result, _inputs) -> bool:
    pairs = result.reshape(*result.shape[:-1], -1, 2)
    norms = (pairs**2).sum(dim=-1)
    tolerance = 1e-4 if result.dtype == torch.float32 else 1e-9
    return bool(torch.allclose(norms, torch.ones_like(norms), atol=tolerance))


TIME_ENCODING = FunctionTask(
    id="ch22.time_encoding",
    title="a sinusoidal encoding of visit times",
    points=3,
    statement=r"""
        Visits in a health record happen at irregular times, so the position of a visit in the
        list says little; its time $t$ (in days, a real number) says more. Write
        `time_encoding(days, dim, base=10000.0)` returning, for a tensor `days` of any shape
        `(...,)`, the tensor `(..., dim)` with
        $\text{out}_{2i} = \sin(t / \text{base}^{2i/d})$ and
        $\text{out}_{2i+1} = \cos(t / \text{base}^{2i/d})$ for $i = 0, \dots, d/2 - 1$
        (sine and cosine interleaved, as `selfattn_course.encodings.sinusoidal`), in the dtype
        and on the device of `days`. At whole days it equals `sinusoidal(P, dim)[days]`.
        """,
    reference=time_encoding,
    visible_cases=lambda: [
        Case("by hand: t = 0 gives [0, 1, 0, 1]", {"days": torch.tensor([0.0]), "dim": 4}),
        Case("two patients, five visits, dim 8", {"days": _days((2, 5), 1), "dim": 8}),
        Case("half a day, dim 2: [sin 0.5, cos 0.5]", {"days": torch.tensor([0.5]), "dim": 2}),
    ],
    hidden_cases=over_devices(_days_hidden),
    properties=(Property("each (sin, cos) pair lies on the unit circle", _unit_pairs),),
    mistakes=(
        Mistake(
            "the sines and cosines are concatenated (all sines, then all cosines); the course's "
            "encoding interleaves them: sine on the even dims, cosine on the odd ones",
            source="""
                def time_encoding(days, dim, base=10000.0):
                    exponents = torch.arange(0, dim, 2, dtype=days.dtype, device=days.device) / dim
                    angles = days[..., None] / base**exponents
                    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
                """,
        ),
        Mistake(
            "the exponent is i/d for the i-th pair; it is 2i/d (the frequencies then fall from 1 "
            "to about 1/base, not 1/sqrt(base))",
            source="""
                def time_encoding(days, dim, base=10000.0):
                    exponents = torch.arange(dim // 2, dtype=days.dtype, device=days.device) / dim
                    angles = days[..., None] / base**exponents
                    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
                """,
        ),
    ),
)


# --- task 2: expected_calibration_error -----------------------------------------------------------


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, num_bins: int = 10
) -> torch.Tensor:
    """The expected calibration error of predicted risks: a 0-dim float64 tensor.

    ``probs`` ``(N,)`` in ``[0, 1]`` (the predicted probability of the outcome), ``labels``
    ``(N,)`` of 0 and 1. Bin ``m`` (``m = 1 .. M``) holds the ``p`` in ``((m-1)/M, m/M]``, and
    bin 1 also ``p = 0``. ``ECE = Σ_m |B_m|/N · |mean(p in B_m) − mean(y in B_m)|``; empty bins
    add nothing.
    """
    probs64 = probs.detach().to(torch.float64).cpu()
    labels64 = labels.detach().to(torch.float64).cpu()
    index = (torch.ceil(probs64 * num_bins) - 1).clamp(0, num_bins - 1).long()
    total = 0.0
    for m in range(num_bins):
        in_bin = index == m
        count = int(in_bin.sum())
        if count:
            gap = abs(float(probs64[in_bin].mean()) - float(labels64[in_bin].mean()))
            total += count / len(probs64) * gap
    return torch.tensor(total, dtype=torch.float64, device=probs.device)


def _ece_inputs(n, *, seed, dtype=torch.float32, device="cpu", overconfident=False):
    g = torch.Generator().manual_seed(seed)
    risk = torch.rand(n, generator=g, dtype=torch.float64)
    labels = (torch.rand(n, generator=g, dtype=torch.float64) < risk).to(torch.float64)
    probs = risk**3 / (risk**3 + (1 - risk) ** 3) if overconfident else risk
    return {"probs": probs.to(dtype).to(device), "labels": labels.to(dtype).to(device)}


def _ece_hidden(dtype, device) -> list[Case]:
    def ece(n, seed, **kw):
        return _ece_inputs(n, seed=seed, dtype=dtype, device=device, **kw)

    edges = torch.tensor([0.0, 0.25, 0.5, 1.0, 0.75, 0.3], dtype=dtype, device=device)
    return [
        Case("500 overconfident predictions", ece(500, 40, overconfident=True)),
        Case("300 calibrated predictions, 5 bins", {**ece(300, 41), "num_bins": 5}),
        Case(
            "probabilities on bin edges (0, 0.25, 0.5, 0.75, 1), 4 bins",
            {
                "probs": edges,
                "labels": torch.tensor([0.0, 1, 0, 1, 1, 0], dtype=dtype, device=device),
                "num_bins": 4,
            },
        ),
        Case("7 predictions, 20 bins: most bins empty", {**ece(7, 42), "num_bins": 20}),
    ]


EXPECTED_CALIBRATION_ERROR = FunctionTask(
    id="ch22.expected_calibration_error",
    title="the expected calibration error",
    points=3,
    statement=r"""
        A model that says "30 % risk" should be right about 30 % of the time. Write
        `expected_calibration_error(probs, labels, num_bins=10)` for predicted probabilities
        `probs` `(N,)` of the outcome and `labels` `(N,)` of 0 and 1: split $[0, 1]$ into $M$
        equal bins, bin $m$ holding the $p$ in $((m-1)/M, m/M]$ (and the first bin also
        $p = 0$), and return
        $\text{ECE} = \sum_m \frac{|B_m|}{N}\,\bigl|\bar p_{B_m} - \bar y_{B_m}\bigr|$,
        the mean predicted risk against the observed frequency in each bin, weighted by the
        bin's share of patients (empty bins add nothing), as a 0-dim `torch.float64` tensor on
        the device of `probs`.
        """,
    reference=expected_calibration_error,
    visible_cases=lambda: [
        Case(
            "by hand: 0.9 for four patients, three positive: ECE = |0.9 - 0.75| = 0.15",
            {"probs": torch.tensor([0.9, 0.9, 0.9, 0.9]), "labels": torch.tensor([1.0, 1, 1, 0])},
        ),
        Case("200 overconfident predictions", _ece_inputs(200, seed=1, overconfident=True)),
        Case("100 calibrated predictions, 4 bins", {**_ece_inputs(100, seed=2), "num_bins": 4}),
    ],
    hidden_cases=over_devices(_ece_hidden),
    properties=(Property("the ECE lies between 0 and 1", between_zero_and_one),),
    mistakes=(
        Mistake(
            "the bins' gaps are averaged with equal weights; each bin weighs |B_m| / N, its share "
            "of the patients",
            source="""
                def expected_calibration_error(probs, labels, num_bins=10):
                    index = (torch.ceil(probs * num_bins) - 1).clamp(0, num_bins - 1).long()
                    gaps = []
                    for m in range(num_bins):
                        in_bin = index == m
                        if in_bin.any():
                            gaps.append((probs[in_bin].mean() - labels[in_bin].mean()).abs().item())
                    value = sum(gaps) / len(gaps)
                    return torch.tensor(value, dtype=torch.float64, device=probs.device)
                """,
        ),
        Mistake(
            "the gaps are signed, so over- and under-confident bins cancel: take the absolute "
            "value of each bin's gap",
            source="""
                def expected_calibration_error(probs, labels, num_bins=10):
                    index = (torch.ceil(probs * num_bins) - 1).clamp(0, num_bins - 1).long()
                    total = 0.0
                    for m in range(num_bins):
                        in_bin = index == m
                        if in_bin.any():
                            gap = (probs[in_bin].mean() - labels[in_bin].mean()).item()
                            total += in_bin.sum().item() / len(probs) * gap
                    return torch.tensor(total, dtype=torch.float64, device=probs.device)
                """,
        ),
        Mistake(
            "one bin for all the patients measures only the mean risk against the prevalence; "
            "split [0, 1] into num_bins bins",
            source="""
                def expected_calibration_error(probs, labels, num_bins=10):
                    gap = (probs.double().mean() - labels.double().mean()).abs()
                    return gap.to(probs.device)
                """,
        ),
    ),
)


# --- task 3: attention_pool -----------------------------------------------------------------------


def attention_pool(hidden: torch.Tensor, valid: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Attention pooling over the real visits: ``(B, L, d)``, ``(B, L)``, ``(d,)`` -> ``(B, d)``.

    ``weights = softmax(hidden @ query / sqrt(d))`` over the positions where ``valid`` is True
    (True = real visit), ``pooled = weights @ hidden``; a patient with no visit pools to 0.
    """
    q = query.expand(hidden.shape[0], 1, hidden.shape[-1])
    mask = valid[:, None, :]
    return scaled_dot_product_attention(q, hidden, hidden, mask)[:, 0]


def _attention_pool_inputs(
    batch, length, d, *, seed, dtype=torch.float32, device="cpu", empty=False
):
    hidden = C.randn((batch, length, d), seed=seed, dtype=dtype, device=device)
    query = C.randn((d,), seed=seed + 1, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(seed + 2)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    if empty:
        lengths[0] = 0
    valid = (torch.arange(length)[None, :] < lengths[:, None]).to(device)
    hidden = hidden.masked_fill(~valid[..., None], 50.0)  # padding holds junk after a layer
    return {"hidden": hidden, "valid": valid, "query": query}


def _attention_pool_hidden(dtype, device) -> list[Case]:
    def pool(batch, length, d, seed, **kw):
        return _attention_pool_inputs(batch, length, d, seed=seed, dtype=dtype, device=device, **kw)

    return [
        Case("6 patients, up to 12 visits, d = 8; padding holds large junk", pool(6, 12, 8, 50)),
        Case("a patient with no visit (must give 0, not NaN)", pool(3, 5, 4, 51, empty=True)),
        Case("one visit each", pool(4, 1, 6, 52)),
    ]


ATTENTION_POOL = FunctionTask(
    id="ch22.attention_pool",
    title="masked attention pooling over visits",
    points=3,
    statement=r"""
        A record model returns one vector per visit, `hidden` `(B, L, d)`, padded to $L$ visits;
        `valid` `(B, L)` is True for a real visit and False for padding. Write
        `attention_pool(hidden, valid, query)` with a learned `query` `(d,)`: the scores
        $s_j = h_j \cdot q / \sqrt{d}$, the weights $a = \operatorname{softmax}(s)$ over the
        **real** visits only (padding gets weight 0), and the pooled vector $\sum_j a_j h_j$,
        of shape `(B, d)`. A patient with no visit must give the zero vector, not NaN. Do not call
        an attention function (the package's or torch's) or `selfattn_course.pooling`.
        """,
    reference=attention_pool,
    visible_cases=lambda: [
        Case(
            "by hand: equal scores over two real visits [2] and [4] give [3]",
            {
                "hidden": torch.tensor([[[2.0], [4.0], [99.0]]]),
                "valid": torch.tensor([[True, True, False]]),
                "query": torch.tensor([0.0]),
            },
        ),
        Case("4 patients, up to 6 visits, d = 5", _attention_pool_inputs(4, 6, 5, seed=1)),
        Case("a patient with no visit", _attention_pool_inputs(2, 3, 2, seed=2, empty=True)),
    ],
    hidden_cases=over_devices(_attention_pool_hidden),
    properties=(Property("every pooled number is finite (no NaN)", finite),),
    mistakes=(
        Mistake(
            "the softmax runs over the padding too: set the padding's scores to -inf (or its "
            "weights to 0 and renormalise) before the weighted sum",
            source="""
                def attention_pool(hidden, valid, query):
                    scores = hidden @ query / hidden.shape[-1] ** 0.5
                    weights = torch.softmax(scores, dim=-1)
                    return (weights[..., None] * hidden).sum(dim=1)
                """,
        ),
        Mistake(
            "a patient with no visit has every score at -inf and the softmax gives NaN: give "
            "that row zero weights",
            source="""
                def attention_pool(hidden, valid, query):
                    scores = hidden @ query / hidden.shape[-1] ** 0.5
                    scores = scores.masked_fill(~valid, float("-inf"))
                    weights = torch.softmax(scores, dim=-1)
                    return (weights[..., None] * hidden).sum(dim=1)
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d)",
            source="""
                def attention_pool(hidden, valid, query):
                    scores = (hidden @ query).masked_fill(~valid, float("-inf"))
                    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
                    return (weights[..., None] * hidden).sum(dim=1)
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS + POOLING_BUILTINS,
)


# --- task 4: constant_predictor -------------------------------------------------------------------


CONSTANT_PREDICTOR = AnswerTask(
    id="ch22.constant_predictor",
    title="calibrated is not the same as useful",
    points=1,
    statement=r"""
        In a cohort of 1000 patients, 100 have the outcome. A "model" ignores the record and
        predicts the risk $p = 0.1$ for every patient. Store `constant_predictor = (ece, auroc)`:
        its expected calibration error (10 bins, as above) and its area under the ROC curve
        (ties count one half).
        """,
    answer_type=Numbers(count=2, rtol=0.0, atol=1e-6),
    expected=(0.0, 0.5),
    mistakes=(
        Mistake(
            "its predicted risk, 0.1, is exactly the observed frequency in the only bin it uses, "
            "so it is perfectly calibrated; but it ranks no patient above another",
            (0.1, 0.5),
        ),
        Mistake(
            "0.9 is the accuracy of predicting 'no outcome' for everyone; a constant score ties "
            "every positive with every negative, and the AUROC counts a tie as one half",
            (0.0, 0.9),
        ),
        Mistake(
            "the AUROC is the chance that a random positive gets a higher score than a random "
            "negative; with every pair tied it is one half, not 0",
            (0.0, 0.0),
        ),
    ),
)


TASKS = [TIME_ENCODING, EXPECTED_CALIBRATION_ERROR, ATTENTION_POOL, CONSTANT_PREDICTOR]
