"""Wrong submissions for chapter 4, each a realistic mistake.

BANK maps a name to:
  replace: {solution cell id: the learner's whole cell source}
  delete:  [cell ids the learner deleted] (optional)
  loses:   the tasks (test cell ids) that must score less than full marks; every other task keeps
           full marks.
"""

BANK = {
    "patch_values_channels_last": {
        "replace": {
            "patchify-solution": (
                "def patchify(images, patch):\n"
                "    # 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'\n"
                "    b, c, h, w = images.shape\n"
                "    grid = images.reshape(b, c, h // patch, patch, w // patch, patch)\n"
                "    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, patch * patch * c)\n"
            ),
        },
        "loses": ["patchify"],
    },
    "padding_mask_inverted": {
        "replace": {
            "padding_masks-solution": (
                "def padding_masks(tokens):\n"
                "    pad = tokens == 0  # torch's key_padding_mask convention\n"
                "    return pad, pad[:, None, None, :]\n"
            ),
        },
        "loses": ["padding_masks"],
    },
    "causal_mask_from_the_package_and_padding_on_queries": {
        "replace": {
            "next_item_mask-solution": (
                "from selfattn_course import masks\n\n"
                "def next_item_mask(history):\n"
                "    real = history != 0\n"
                "    causal = masks.causal_mask(history.shape[-1], device=history.device)\n"
                "    return real[:, None, :, None] & causal\n"
            ),
        },
        "loses": ["next_item_mask"],
    },
    "future_items_and_swapped_targets": {
        "replace": {
            "next_item_mask-solution": (
                "def next_item_mask(history):\n"
                "    length = history.shape[-1]\n"
                "    future = torch.ones(length, length, dtype=torch.bool, device=history.device).triu()\n"
                "    return (history != 0)[:, None, None, :] & future\n"
            ),
            "inputs_and_targets-solution": (
                "def inputs_and_targets(history):\n    return history[:, 1:], history[:, :-1]\n"
            ),
        },
        "loses": ["next_item_mask", "inputs_and_targets"],
    },
}
