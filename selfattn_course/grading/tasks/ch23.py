"""Chapter 23, self-attention in vision tasks: the box, matching and label arithmetic of detection
and segmentation.

The references: :func:`selfattn_course.boxes.generalized_box_iou` (tested against pixel counts in
``tests/test_boxes.py``) for the GIoU task, which the learner may not call; a brute force over
every assignment of targets to queries for DETR's matching (``itertools.permutations``: exact for
the small sets of the cases; nothing to forbid: SciPy, whose ``linear_sum_assignment`` would
solve it, is not in the course's environment); a per-patch count of class labels for the
segmentation labels. Boxes are ``xyxy``, corners ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

import itertools

import torch

from selfattn_course import boxes
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number

# --- task 1: generalized_iou ----------------------------------------------------------------------


def generalized_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU of xyxy boxes ``(N, 4)`` and ``(M, 4)``: ``(N, M)``."""
    return boxes.generalized_box_iou(boxes1, boxes2)


def _random_boxes(count, seed, dtype=torch.float32, device="cpu"):
    """``count`` xyxy boxes inside the unit square, from centres and sizes drawn uniformly."""
    generator = C.seeded_generator(seed)
    centres = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 0.8 + 0.1
    sizes = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 0.4 + 0.05
    xyxy = boxes.cxcywh_to_xyxy(torch.cat([centres, sizes], dim=-1))
    return xyxy.to(dtype=dtype, device=device)


def _giou_hidden(dtype, device) -> list[Case]:
    def pair(n, m, seed):
        return {
            "boxes1": _random_boxes(n, seed, dtype, device),
            "boxes2": _random_boxes(m, seed + 1, dtype, device),
        }

    disjoint = {
        "boxes1": torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=dtype, device=device),
        "boxes2": torch.tensor(
            [[2.0, 0.0, 3.0, 1.0], [0.0, 5.0, 1.0, 6.0], [0.5, 0.5, 0.7, 0.9]],
            dtype=dtype,
            device=device,
        ),
    }
    same = _random_boxes(4, 31, dtype, device)
    return [
        Case("random boxes (5 x 7)", pair(5, 7, 30)),
        Case("one box against one box", pair(1, 1, 32)),
        Case("disjoint boxes side by side and far apart, one inside", disjoint),
        Case("each box against itself (diagonal 1)", {"boxes1": same, "boxes2": same}),
    ]


def _giou_in_range(result, _inputs) -> bool:
    return bool(((result > -1 - 1e-6) & (result <= 1 + 1e-6)).all())


GENERALIZED_IOU = FunctionTask(
    id="ch23.generalized_iou",
    title="generalised IoU of boxes",
    points=4,
    statement=r"""
        Write `generalized_iou(boxes1, boxes2)`: for xyxy boxes `boxes1` $(N, 4)$ and `boxes2`
        $(M, 4)$, rows $(x_0, y_0, x_1, y_1)$, return the $(N, M)$ matrix of
        $\mathrm{GIoU}(A, B) = \frac{|A \cap B|}{|A \cup B|} - \frac{|C| - |A \cup B|}{|C|}$,
        where $C$ is the smallest axis-aligned box that encloses both $A$ and $B$
        (Rezatofighi et al., 2019). Two boxes that do not overlap have an intersection of area 0,
        never a negative one. Work with tensor operations (broadcast `(N, 1, ...)` against
        `(1, M, ...)`), not a Python loop over pairs.
        """,
    reference=generalized_iou,
    visible_cases=lambda: [
        Case(
            "by hand: [0,0,2,2] vs [1,1,3,3] gives 1/7 - 2/9; vs [3,0,4,2] gives -1/4",
            {
                "boxes1": torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
                "boxes2": torch.tensor([[1.0, 1.0, 3.0, 3.0], [3.0, 0.0, 4.0, 2.0]]),
            },
        ),
        Case(
            "random boxes (3 x 4)",
            {"boxes1": _random_boxes(3, 1), "boxes2": _random_boxes(4, 2)},
        ),
    ],
    hidden_cases=over_devices(_giou_hidden),
    properties=(Property("every GIoU is in (-1, 1]", _giou_in_range),),
    mistakes=(
        Mistake(
            "you return the plain IoU: subtract the share of the enclosing box C that the union "
            "does not cover",
            source="""
                def generalized_iou(boxes1, boxes2):
                    a, b = boxes1[:, None], boxes2[None]
                    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
                    lo = torch.maximum(a[..., :2], b[..., :2])
                    hi = torch.minimum(a[..., 2:], b[..., 2:])
                    inter = (hi - lo).clamp(min=0).prod(-1)
                    return inter / (area(a) + area(b) - inter)
                """,
        ),
        Mistake(
            "the empty part of the enclosing box is divided by the union; divide it by |C|",
            source="""
                def generalized_iou(boxes1, boxes2):
                    a, b = boxes1[:, None], boxes2[None]
                    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
                    lo = torch.maximum(a[..., :2], b[..., :2])
                    hi = torch.minimum(a[..., 2:], b[..., 2:])
                    inter = (hi - lo).clamp(min=0).prod(-1)
                    union = area(a) + area(b) - inter
                    c = (torch.maximum(a[..., 2:], b[..., 2:])
                         - torch.minimum(a[..., :2], b[..., :2])).prod(-1)
                    return inter / union - (c - union) / union
                """,
        ),
        Mistake(
            "the intersection's sides are not clamped at 0: two disjoint boxes get a negative "
            "(or a spurious positive) intersection",
            source="""
                def generalized_iou(boxes1, boxes2):
                    a, b = boxes1[:, None], boxes2[None]
                    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
                    lo = torch.maximum(a[..., :2], b[..., :2])
                    hi = torch.minimum(a[..., 2:], b[..., 2:])
                    inter = (hi - lo).prod(-1)
                    union = area(a) + area(b) - inter
                    c = (torch.maximum(a[..., 2:], b[..., 2:])
                         - torch.minimum(a[..., :2], b[..., :2])).prod(-1)
                    return inter / union - (c - union) / c
                """,
        ),
    ),
    forbidden=("selfattn_course.boxes.generalized_box_iou", "selfattn_course.boxes.box_iou"),
)


# --- task 2: match_queries ------------------------------------------------------------------------


def match_queries(cost: torch.Tensor) -> torch.Tensor:
    """DETR's set matching: ``cost`` ``(N, M)``, ``N >= M`` queries by targets, to the ``(M,)``
    query (int64) matched to each target, with distinct queries and the least total cost.

    Brute force over every ordered choice of ``M`` distinct queries: ``N!/(N-M)!`` of them.
    """
    num_queries, num_targets = cost.shape
    targets = torch.arange(num_targets, device=cost.device)
    best, best_total = None, None
    for chosen in itertools.permutations(range(num_queries), num_targets):
        queries = torch.tensor(chosen, dtype=torch.long, device=cost.device)
        total = cost[queries, targets].sum().item()
        if best_total is None or total < best_total:
            best, best_total = queries, total
    return best if best is not None else torch.zeros(0, dtype=torch.long, device=cost.device)


def _random_cost(n, m, seed, dtype=torch.float32, device="cpu"):
    return C.randn((n, m), seed=seed, dtype=dtype, device=device)


def _distinct_queries(result, inputs) -> bool:
    values = result.tolist()
    return len(set(values)) == len(values) and all(0 <= v < inputs["cost"].shape[0] for v in values)


# A matrix where the greedy order goes wrong: target 0 takes query 0 (cost 1), leaving target 1
# query 2 (cost 5), total 6; the optimum is query 1 -> target 0, query 0 -> target 1, total 4.
_GREEDY_TRAP = [[1.0, 2.0], [2.0, 10.0], [5.0, 5.0]]


def _match_hidden(dtype, device) -> list[Case]:
    return [
        Case("6 queries, 4 targets", {"cost": _random_cost(6, 4, 40, dtype, device)}),
        Case(
            "5 queries, 5 targets (a permutation)", {"cost": _random_cost(5, 5, 41, dtype, device)}
        ),
        Case("4 queries, 1 target", {"cost": _random_cost(4, 1, 42, dtype, device)}),
        Case(
            "a cost where greedy by target fails",
            {"cost": torch.tensor(_GREEDY_TRAP, dtype=dtype, device=device)},
        ),
        Case(
            "costs of a wider range, negative too",
            {"cost": 100 * _random_cost(6, 3, 43, dtype, device)},
        ),
    ]


MATCH_QUERIES = FunctionTask(
    id="ch23.match_queries",
    title="the optimal matching of queries to objects",
    points=3,
    statement=r"""
        DETR predicts $N$ boxes, one per object query, and an image has $M \le N$ objects. Its loss
        first matches each object $j$ to a distinct query $\sigma(j)$ so that the total cost
        $\sum_j \text{cost}[\sigma(j), j]$ is as small as possible. Write `match_queries(cost)`:
        `cost` is $(N, M)$ (queries by objects); return the $(M,)$ `torch.long` tensor of
        $\sigma(0), \dots, \sigma(M-1)$, on the device of `cost`. The sets here are small
        ($N \le 6$): trying every assignment (`itertools.permutations`) is fine, and so is the
        Hungarian algorithm.
        """,
    reference=match_queries,
    visible_cases=lambda: [
        Case(
            "by hand: [[1, 2], [2, 10], [5, 5]]: query 1 -> object 0, query 0 -> object 1 (4)",
            {"cost": torch.tensor(_GREEDY_TRAP)},
        ),
        Case("3 queries, 2 objects", {"cost": _random_cost(3, 2, 3)}),
    ],
    hidden_cases=over_devices(_match_hidden),
    properties=(Property("the matched queries are distinct valid indices", _distinct_queries),),
    mistakes=(
        Mistake(
            "each object takes its cheapest query on its own: two objects can share a query",
            source="""
                def match_queries(cost):
                    return cost.argmin(dim=0)  # the cheapest query of each object
                """,
        ),
        Mistake(
            "greedy: each object in turn takes the cheapest free query; that is not the least "
            "total cost",
            source="""
                def match_queries(cost):
                    taken, chosen = set(), []
                    for j in range(cost.shape[1]):
                        free = [q for q in torch.argsort(cost[:, j]).tolist() if q not in taken]
                        taken.add(free[0])
                        chosen.append(free[0])
                    return torch.tensor(chosen, dtype=torch.long, device=cost.device)
                """,
        ),
        Mistake(
            "you maximise the total cost; the matching minimises it",
            lambda cost: match_queries(-cost),
        ),
    ),
)


# --- task 3: patch_labels -------------------------------------------------------------------------


def patch_labels(mask: torch.Tensor, patch: int, num_classes: int) -> torch.Tensor:
    """Per-patch labels of a segmentation mask: ``(B, H, W)`` int64 labels in ``[0, num_classes)``
    to ``(B, H/p, W/p)``, the most frequent label in each ``p x p`` patch (ties: the smaller)."""
    batch, height, width = mask.shape
    cells = mask.reshape(batch, height // patch, patch, width // patch, patch)
    one_hot = torch.nn.functional.one_hot(cells, num_classes)  # (B, h, p, w, p, K)
    counts = one_hot.sum(dim=(2, 4))  # (B, h, w, K)
    return counts.argmax(dim=-1)  # argmax returns the first (smallest) label of a tie


def _random_mask(batch, height, width, num_classes, seed, device="cpu"):
    generator = C.seeded_generator(seed)
    mask = torch.randint(0, num_classes, (batch, height, width), generator=generator)
    return mask.to(device)


def _labels_hidden(device) -> list[Case]:
    def case(batch, height, width, patch, num_classes, seed):
        mask = _random_mask(batch, height, width, num_classes, seed, device)
        return {"mask": mask, "patch": patch, "num_classes": num_classes}

    tie = torch.tensor([[[2, 1], [1, 2]]], device=device)  # two 1s and two 2s
    return [
        Case("random (2, 8, 12), patch 4, 3 classes", case(2, 8, 12, 4, 3, 50)),
        Case("patch 1: the mask itself", case(1, 3, 5, 1, 4, 51)),
        Case("one patch covers the image", case(3, 6, 6, 6, 5, 52)),
        Case("a tie goes to the smaller label", {"mask": tie, "patch": 2, "num_classes": 3}),
    ]


PATCH_LABELS = FunctionTask(
    id="ch23.patch_labels",
    title="per-patch labels from a mask",
    points=2,
    statement=r"""
        A ViT that segments predicts one label per $p \times p$ patch. Write
        `patch_labels(mask, patch, num_classes)`: `mask` is $(B, H, W)$ of `torch.long` labels
        in $[0, K)$ with $K$ = `num_classes`, and $p$ = `patch` divides $H$ and $W$; return the
        $(B, H/p, W/p)$ `torch.long` tensor of the most frequent label in each patch, the
        smaller label where two are equally frequent. Patch $(i, j)$ covers rows
        $ip, \dots, ip + p - 1$ and columns $jp, \dots, jp + p - 1$.
        """,
    reference=patch_labels,
    visible_cases=lambda: [
        Case(
            "by hand: a 4 x 4 mask, patch 2, labels [[0, 1], [2, 0]]",
            {
                "mask": torch.tensor(
                    [[[0, 0, 1, 1], [0, 2, 1, 0], [2, 2, 0, 0], [2, 0, 0, 0]]],
                ),
                "patch": 2,
                "num_classes": 3,
            },
        ),
        Case(
            "random (1, 6, 6), patch 3, 4 classes",
            {"mask": _random_mask(1, 6, 6, 4, 5), "patch": 3, "num_classes": 4},
        ),
    ],
    hidden_cases=over_devices_only(_labels_hidden),
    mistakes=(
        Mistake(
            "you take each patch's top-left pixel; a patch's label is its most frequent label",
            source="""
                def patch_labels(mask, patch, num_classes):
                    return mask[:, ::patch, ::patch]
                """,
        ),
        Mistake(
            "a tie goes to the larger label; it goes to the smaller",
            lambda mask, patch, num_classes: (
                num_classes - 1 - patch_labels(num_classes - 1 - mask, patch, num_classes)
            ),
        ),
        Mistake(
            "you rounded the mean label of the patch; labels are categories, count them",
            source="""
                def patch_labels(mask, patch, num_classes):
                    pooled = torch.nn.functional.avg_pool2d(mask[:, None].double(), patch)
                    return pooled[:, 0].round().long()
                """,
        ),
    ),
)


# --- task 4: giou_by_hand -------------------------------------------------------------------------

#: The two boxes of the task, xyxy.
BOX_A = (0.0, 0.0, 4.0, 2.0)
BOX_B = (2.0, 1.0, 6.0, 5.0)


def _giou_by_hand() -> float:
    # intersection [2, 4] x [1, 2] = 2; union 8 + 16 - 2 = 22; enclosing [0, 6] x [0, 5] = 30
    return 2 / 22 - (30 - 22) / 30


GIOU_BY_HAND = AnswerTask(
    id="ch23.giou_by_hand",
    title="GIoU by hand",
    points=1,
    statement=rf"""
        Box $A$ has corners $(x_0, y_0, x_1, y_1) = {BOX_A}$ and box $B$ has ${BOX_B}$. Work out
        their generalised IoU with pencil and paper (intersection, union, enclosing box) and store
        it in `giou_by_hand` as a number (an expression such as `1 / 3 - 1 / 4` is
        fine). Do not call a function for it.
        """,
    answer_type=Number(rtol=1e-6, atol=1e-9),
    expected=_giou_by_hand(),
    mistakes=(
        Mistake(
            "that is the plain IoU, 2/22; subtract the empty share of the enclosing box", 2 / 22
        ),
        Mistake(
            "the empty part of the enclosing box, 8, is divided by |C| = 30, not the union",
            source="""
                giou_by_hand = 2 / 22 - 8 / 22
                """,
        ),
        Mistake("the union is 8 + 16 minus the intersection, 22, not 24", 2 / 24 - 6 / 30),
    ),
)


TASKS = [GENERALIZED_IOU, MATCH_QUERIES, PATCH_LABELS, GIOU_BY_HAND]
