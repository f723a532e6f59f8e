"""selfattn_course.boxes: conversions, IoU and GIoU against hand-worked boxes and pixel counts."""

from __future__ import annotations

import pytest
import torch

from selfattn_course import boxes


def _pixel_iou_and_giou(a, b, size=40):
    """IoU and GIoU of two integer xyxy boxes by counting the unit cells of a grid they cover."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")

    def inside(box):
        return (xs > box[0]) & (xs < box[2]) & (ys > box[1]) & (ys < box[3])

    in_a, in_b = inside(a), inside(b)
    union = (in_a | in_b).sum().item()
    enclosing = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
    in_c = inside(enclosing).sum().item()
    iou = (in_a & in_b).sum().item() / union
    return iou, iou - (in_c - union) / in_c


def test_conversions_of_a_box_worked_by_hand():
    corners = torch.tensor([[1.0, 2.0, 5.0, 8.0]])
    centre_size = torch.tensor([[3.0, 5.0, 4.0, 6.0]])  # centre (3, 5), 4 wide, 6 high
    torch.testing.assert_close(boxes.xyxy_to_cxcywh(corners), centre_size)
    torch.testing.assert_close(boxes.cxcywh_to_xyxy(centre_size), corners)


def test_conversions_are_inverse_of_each_other():
    centre_size = torch.rand(3, 7, 4, generator=torch.Generator().manual_seed(0))
    back = boxes.xyxy_to_cxcywh(boxes.cxcywh_to_xyxy(centre_size))
    torch.testing.assert_close(back, centre_size)


def test_iou_and_giou_of_boxes_worked_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [3.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    # overlap 1, union 4 + 4 - 1 = 7, enclosing 3 x 3 = 9: GIoU = 1/7 - 2/9
    # disjoint: union 4 + 2 = 6, enclosing 4 x 2 = 8: IoU 0, GIoU = -2/8
    # identical: 1 and 1
    torch.testing.assert_close(boxes.box_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))
    giou = torch.tensor([[1 / 7 - 2 / 9, -0.25, 1.0]])
    torch.testing.assert_close(boxes.generalized_box_iou(a, b), giou)


@pytest.mark.parametrize("seed", range(5))
def test_iou_and_giou_equal_pixel_counts_on_a_grid(seed):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 40, (6, 2, 2), generator=generator)
    lows, highs = corners.min(dim=1).values, corners.max(dim=1).values + 1
    xyxy = torch.cat([lows, highs], dim=-1).double()
    iou = boxes.box_iou(xyxy, xyxy)
    giou = boxes.generalized_box_iou(xyxy, xyxy)
    for i in range(6):
        for j in range(6):
            want_iou, want_giou = _pixel_iou_and_giou(xyxy[i].tolist(), xyxy[j].tolist())
            assert iou[i, j].item() == pytest.approx(want_iou)
            assert giou[i, j].item() == pytest.approx(want_giou)


def test_giou_goes_to_minus_one_as_disjoint_boxes_move_apart():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    far = torch.tensor([[1000.0, 1000.0, 1001.0, 1001.0]])
    assert boxes.generalized_box_iou(a, far).item() == pytest.approx(-1.0, abs=1e-2)


def test_empty_boxes_give_zero_not_nan():
    empty = torch.zeros(1, 4)
    assert boxes.box_iou(empty, empty).item() == 0.0
    assert boxes.generalized_box_iou(empty, empty).item() == 0.0


def test_box_without_four_numbers_is_rejected_with_its_shape():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        boxes.box_area(torch.zeros(2, 3))
