"""Wrong submissions for chapter 4, each a realistic mistake (the format: helpers.load_bank)."""

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
