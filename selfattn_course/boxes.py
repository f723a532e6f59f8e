"""Boxes for detection: format conversions, areas, IoU and generalised IoU (chapter 23).

A box is four numbers in the last dimension. Two formats:

- ``xyxy``: corners ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1`` (what IoU uses);
- ``cxcywh``: centre and size ``(cx, cy, w, h)`` (what DETR's box head predicts, in ``[0, 1]``
  after a sigmoid; Carion et al. 2020).

:func:`box_iou` and :func:`generalized_box_iou` are pairwise, like torchvision's: boxes ``(N, 4)``
and ``(M, 4)`` give an ``(N, M)`` matrix. For boxes ``A`` and ``B`` with union ``U`` and ``C`` the
smallest box that encloses both (Rezatofighi et al. 2019),

    IoU(A, B) = |A ∩ B| / |A ∪ B|,      GIoU(A, B) = IoU(A, B) - |C \\ U| / |C|,

so IoU is in ``[0, 1]`` and GIoU in ``(-1, 1]``; ``1 - GIoU`` keeps a gradient when the boxes do
not overlap, where ``1 - IoU`` is flat. A pair whose union has zero area (two empty boxes) gets
IoU 0 and GIoU 0 rather than NaN.
"""

from __future__ import annotations

import torch


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    if boxes.shape[-1:] != (4,):
        raise ValueError(
            f"{name} must have 4 numbers in its last dimension, got {tuple(boxes.shape)}"
        )


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` centre and size ``(cx, cy, w, h)`` to corners
    ``(cx - w/2, cy - h/2, cx + w/2, cy + h/2)``."""
    _check_boxes(boxes, "boxes")
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` corners ``(x0, y0, x1, y1)`` to centre and size
    ``((x0+x1)/2, (y0+y1)/2, x1-x0, y1-y0)``."""
    _check_boxes(boxes, "boxes")
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` xyxy boxes to ``(...)`` areas ``(x1 - x0)(y1 - y0)``."""
    _check_boxes(boxes, "boxes")
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _intersection_union(boxes1: torch.Tensor, boxes2: torch.Tensor):
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    sides = (bottom_right - top_left).clamp(min=0)
    intersection = sides[..., 0] * sides[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - intersection
    return intersection, union


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, 1), 0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes ``(N, 4)`` and ``(M, 4)``: ``(N, M)``, ``|A ∩ B| / |A ∪ B|``."""
    intersection, union = _intersection_union(boxes1, boxes2)
    return _safe_ratio(intersection, union)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise generalised IoU of xyxy boxes ``(N, 4)`` and ``(M, 4)``: ``(N, M)``,
    ``IoU - |C minus (A ∪ B)| / |C|`` with ``C`` the smallest box enclosing ``A`` and ``B``."""
    intersection, union = _intersection_union(boxes1, boxes2)
    iou = _safe_ratio(intersection, union)
    top_left = torch.minimum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    sides = (bottom_right - top_left).clamp(min=0)
    enclosing = sides[..., 0] * sides[..., 1]
    return iou - _safe_ratio(enclosing - union, enclosing)
