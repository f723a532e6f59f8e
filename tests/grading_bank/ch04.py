"""Wrong submissions for chapter 4, each a realistic mistake.

BANK maps a name to (see ``helpers.load_bank``):
  mistakes: {task name: words of a Mistake's description}: the mistake's source, from the task
            spec, replaces the task's solution cell, and the task loses points
  replace:  {solution cell id: the learner's whole cell source} (hand-written entries)
  delete:   [cell ids the learner deleted] (optional)
  loses:    the tasks (test cell ids) that must score less than full marks besides those of
            ``mistakes``; every other task keeps full marks.
"""

BANK = {
    "patch_values_channels_last": {"mistakes": {"patchify": "(row, column, channel)"}},
    "padding_mask_inverted": {"mistakes": {"padding_masks": "the wrong way round"}},
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
        "mistakes": {"next_item_mask": "reversed", "inputs_and_targets": "swapped"},
    },
}
