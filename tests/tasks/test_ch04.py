"""Chapter 4's tasks (selfattn_course/grading/tasks/ch04.py): the references against torch and
hand-built masks, and the rule that the masks are written out."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selfattn_course.grading import CheckFailed, check
from selfattn_course.grading.tasks import ch04


def test_patchify_agrees_with_unfold():
    images = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    torch.testing.assert_close(
        ch04.patchify(images, 4), F.unfold(images, 4, stride=4).transpose(1, 2)
    )


def test_patchify_by_hand():
    tokens = ch04.patchify(torch.arange(16.0).reshape(1, 1, 4, 4), 2)
    assert tokens[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


def test_the_next_item_mask_of_a_left_padded_history():
    mask = ch04.next_item_mask(torch.tensor([[0, 4, 9]]))[0, 0].int().tolist()
    assert mask == [
        [0, 0, 0],
        [0, 1, 0],
        [0, 1, 1],
    ]  # position 0 is padding: it sees nothing, nobody sees it


def test_a_mask_task_refuses_the_package_masks():
    from selfattn_course import masks

    def next_item_mask(history):
        return masks.combine(
            masks.key_padding_to_attention(history != 0), masks.causal_mask(history.shape[-1])
        )

    with pytest.raises(CheckFailed, match="your code called selfattn_course.masks"):
        check("ch04.next_item_mask", next_item_mask)
