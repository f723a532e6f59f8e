"""Chapter 14, self-attention for text classification: pooling a padded batch, macro-F1, order.

References: ``masked_mean_pool`` is the package's :func:`selfattn_course.pooling.masked_mean`
(the learner may not call it, nor ``cls_pool``/``last_pool``); ``macro_f1`` is written out here
from the definition (the tests check it against a loop over classes and hand-worked cases); the
order question's answer follows from permutation invariance (the chapter shows it in code).
"""

from __future__ import annotations

import torch

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
from selfattn_course.pooling import masked_mean

POOLING_BUILTINS: tuple[str, ...] = (
    "selfattn_course.pooling.masked_mean",
    "selfattn_course.pooling.cls_pool",
    "selfattn_course.pooling.last_pool",
)

# --- task 1: masked_mean_pool ---------------------------------------------------------------------


def masked_mean_pool(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ``(B, L, d)`` over the real positions (``valid`` ``(B, L)``, True =
    real token): ``(B, d)``; a row with no real token gives 0, never NaN."""
    return masked_mean(hidden, valid)


def _pool_inputs(batch, length, d, *, seed, dtype=torch.float32, device="cpu", empty_row=False):
    hidden = C.randn((batch, length, d), seed=seed, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(seed + 1)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    if empty_row:
        lengths[0] = 0
    valid = (torch.arange(length)[None, :] < lengths[:, None]).to(device)
    hidden = hidden.masked_fill(~valid[..., None], 1e3)  # padding holds junk, as after a layer
    return {"hidden": hidden, "valid": valid}


def _pool_hidden(dtype, device) -> list[Case]:
    def pool(batch, length, d, seed, **kw):
        return _pool_inputs(batch, length, d, seed=seed, dtype=dtype, device=device, **kw)

    return [
        Case("batch 5, L = 9, d = 6, padding holds large junk", pool(5, 9, 6, 50)),
        Case("a row that is all padding (must give 0, not NaN)", pool(3, 4, 2, 51, empty_row=True)),
        Case("L = 1: every row one token", pool(4, 1, 3, 52)),
        Case("d = 1, long rows", pool(2, 40, 1, 53)),
    ]


MASKED_MEAN_POOL = FunctionTask(
    id="ch14.masked_mean_pool",
    title="masked mean pooling",
    points=4,
    statement=r"""
        A self-attention encoder returns one vector per position, `hidden` `(B, L, d)`; a
        classifier needs one per text. Write `masked_mean_pool(hidden, valid)` returning the
        mean over the **real** positions only,
        $\text{pooled}_b = \sum_j v_{bj} h_{bj} / \sum_j v_{bj}$, of shape `(B, d)`, where
        `valid` `(B, L)` is boolean, True for a real token and False for padding. Padding
        positions may hold anything (after a layer they are not zero). A row with no real token
        must give the zero vector, not NaN. Do not call `selfattn_course.pooling`.
        """,
    reference=masked_mean_pool,
    visible_cases=lambda: [
        Case(
            "by hand: [[1], [3], [100]] with the last position padding gives [2]",
            {
                "hidden": torch.tensor([[[1.0], [3.0], [100.0]]]),
                "valid": torch.tensor([[True, True, False]]),
            },
        ),
        Case("random: batch 3, L = 5, d = 4", _pool_inputs(3, 5, 4, seed=1)),
        Case("an all-padding row", _pool_inputs(2, 3, 2, seed=2, empty_row=True)),
    ],
    hidden_cases=over_devices(_pool_hidden),
    properties=(Property("every pooled number is finite (no NaN)", finite),),
    mistakes=(
        Mistake(
            "the mean runs over all L positions, padding included: divide by the number of real "
            "tokens and leave the padding out of the sum",
            source="""
                def masked_mean_pool(hidden, valid):
                    return hidden.mean(dim=1)
                """,
        ),
        Mistake(
            "the padding is left out of the sum but the sum is divided by L, not by the number "
            "of real tokens",
            source="""
                def masked_mean_pool(hidden, valid):
                    return (hidden * valid[..., None]).sum(dim=1) / hidden.shape[1]
                """,
        ),
        Mistake(
            "an all-padding row divides 0 by 0 and gives NaN: clamp the count to at least 1",
            source="""
                def masked_mean_pool(hidden, valid):
                    total = (hidden * valid[..., None]).sum(dim=1)
                    return total / valid.sum(dim=1, keepdim=True)
                """,
        ),
    ),
    forbidden=POOLING_BUILTINS,
)


# --- task 2: macro_f1 -----------------------------------------------------------------------------


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Macro-F1 of the predictions ``argmax(logits, -1)``: a 0-dim float64 tensor on the
    device of ``logits``.

    ``logits`` ``(N, C)``, ``labels`` ``(N,)`` in ``0 .. C-1``. For each of the ``C`` classes
    ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (0 when the class is neither predicted nor
    present), and macro-F1 is their plain mean over all ``C`` classes.
    """
    predicted = logits.argmax(dim=-1)
    num_classes = logits.shape[-1]
    scores = []
    for c in range(num_classes):
        tp = int(((predicted == c) & (labels == c)).sum())
        fp = int(((predicted == c) & (labels != c)).sum())
        fn = int(((predicted != c) & (labels == c)).sum())
        denominator = 2 * tp + fp + fn
        scores.append(0.0 if denominator == 0 else 2 * tp / denominator)
    return torch.tensor(sum(scores) / num_classes, dtype=torch.float64, device=logits.device)


def _f1_inputs(n, num_classes, *, seed, device="cpu", skew=False):
    logits = C.randn((n, num_classes), seed=seed, device=device)
    g = torch.Generator().manual_seed(seed + 1)
    if skew:  # class 0 dominates the labels: accuracy and macro-F1 part ways
        labels = (torch.rand(n, generator=g) < 0.2).long() * torch.randint(
            1, num_classes, (n,), generator=g
        )
    else:
        labels = torch.randint(num_classes, (n,), generator=g)
    labels = labels.to(device)
    # make most predictions right, so the score is far from chance
    right = torch.rand(n, generator=g).to(device) < 0.6
    logits = logits + 5.0 * right[:, None] * torch.nn.functional.one_hot(labels, num_classes)
    return {"logits": logits, "labels": labels}


def _f1_hidden(dtype, device) -> list[Case]:
    def f1(n, k, seed, **kw):
        inputs = _f1_inputs(n, k, seed=seed, device=device, **kw)
        inputs["logits"] = inputs["logits"].to(dtype)
        return inputs

    return [
        Case("200 examples, 4 classes", f1(200, 4, 60)),
        Case("skewed labels (class 0 is 80 %)", f1(300, 3, 61, skew=True)),
        Case("two classes, 7 examples", f1(7, 2, 62)),
        Case("10 classes, 15 examples: some classes never appear", f1(15, 10, 63)),
    ]


MACRO_F1 = FunctionTask(
    id="ch14.macro_f1",
    title="macro-F1 from logits",
    points=4,
    statement=r"""
        Accuracy hides a classifier that ignores a rare class; macro-F1 does not. Write
        `macro_f1(logits, labels)` for `logits` `(N, C)` and integer `labels` `(N,)`: predict
        $\hat y = \arg\max_c \text{logits}_{\cdot c}$, count for every class $c$ the true
        positives $TP_c$, false positives $FP_c$ and false negatives $FN_c$, take
        $F1_c = 2TP_c / (2TP_c + FP_c + FN_c)$ (0 when the denominator is 0) and return the
        plain mean over **all** $C$ classes, as a 0-dim `torch.float64` tensor on the device
        of `logits` (`torch.tensor(value, dtype=torch.float64, device=logits.device)`).
        """,
    reference=macro_f1,
    visible_cases=lambda: [
        Case(
            "by hand: predictions [0, 0, 1, 1], labels [0, 1, 1, 1]: F1 = (2/3 + 4/5) / 2",
            {
                "logits": torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
                "labels": torch.tensor([0, 1, 1, 1]),
            },
        ),
        Case("random: 50 examples, 3 classes", _f1_inputs(50, 3, seed=1)),
        Case("skewed labels", _f1_inputs(40, 3, seed=2, skew=True)),
        Case(
            "by hand: 3 classes, class 2 neither present nor predicted: F1 = (4/5 + 2/3 + 0) / 3",
            {
                "logits": torch.tensor(
                    [[2.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.0]]
                ),
                "labels": torch.tensor([0, 0, 1, 1]),
            },
        ),
    ],
    hidden_cases=over_devices(_f1_hidden),
    properties=(Property("macro-F1 lies between 0 and 1", between_zero_and_one),),
    mistakes=(
        Mistake(
            "that is accuracy (the share of right predictions), which equals micro-F1 here; "
            "macro-F1 averages the per-class F1 scores",
            source="""
                def macro_f1(logits, labels):
                    return (logits.argmax(dim=-1) == labels).double().mean()
                """,
        ),
        Mistake(
            "F1 is 2TP / (2TP + FP + FN); recall TP / (TP + FN) alone ignores the false "
            "positives of a class",
            source="""
                def macro_f1(logits, labels):
                    predicted = logits.argmax(dim=-1)
                    scores = []
                    for c in range(logits.shape[-1]):
                        tp = ((predicted == c) & (labels == c)).sum().item()
                        fn = ((predicted != c) & (labels == c)).sum().item()
                        scores.append(tp / (tp + fn) if tp + fn else 0.0)
                    value = sum(scores) / len(scores)
                    return torch.tensor(value, dtype=torch.float64, device=logits.device)
                """,
        ),
        Mistake(
            "the mean must run over all C classes (a class that is never predicted nor present "
            "scores 0), not only over the classes in labels",
            source="""
                def macro_f1(logits, labels):
                    predicted = logits.argmax(dim=-1)
                    scores = []
                    for c in labels.unique().tolist():
                        tp = ((predicted == c) & (labels == c)).sum().item()
                        fp = ((predicted == c) & (labels != c)).sum().item()
                        fn = ((predicted != c) & (labels == c)).sum().item()
                        scores.append(2 * tp / (2 * tp + fp + fn))
                    value = sum(scores) / len(scores)
                    return torch.tensor(value, dtype=torch.float64, device=logits.device)
                """,
        ),
    ),
)


# --- task 3: order_accuracy -----------------------------------------------------------------------


ORDER_ACCURACY = AnswerTask(
    id="ch14.order_accuracy",
    title="what a model without positions can learn about order",
    points=2,
    statement=r"""
        A classifier embeds each token (no position encoding), applies self-attention layers
        and position-wise feed-forward layers (any number, any weights, no causal mask), then
        mean-pools and applies a linear head. The task: each text holds the markers `alpha` and
        `beta` once each among filler words; the label is 1 when `alpha` comes first. The test
        set holds, for every text, the same text with `alpha` and `beta` swapped (opposite
        label). Store `order_accuracy = (best, worst)`: the **highest** and the **lowest** test
        accuracy that any weights of this model can reach (each a number in $[0, 1]$).
        """,
    answer_type=Numbers(count=2, rtol=0.0, atol=1e-9),
    expected=(0.5, 0.5),
    mistakes=(
        Mistake(
            "self-attention mixes every token with every other, but without positions it is "
            "permutation-equivariant: a text and its swapped twin give the same logits, so "
            "exactly one of each pair is right, whatever the weights",
            (1.0, 0.0),
        ),
        Mistake(
            "the model cannot do better than chance, but it cannot do worse either: each pair "
            "gets one right and one wrong prediction",
            (0.5, 0.0),
        ),
        Mistake(
            "the model cannot tell a text from its swapped twin, so it scores one of each pair",
            (1.0, 0.5),
        ),
    ),
)


TASKS = [MASKED_MEAN_POOL, MACRO_F1, ORDER_ACCURACY]
