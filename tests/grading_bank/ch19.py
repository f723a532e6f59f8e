"""Wrong submissions for chapter 19, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "seed_padding_mask_and_top_left_cache_mask": {
        "mistakes": {
            "padding_mask_from_lengths": "the seed's mask",
            "causal_bottom_right": "top-left mask",
        },
    },
    "prefix_leaks_the_target": {"mistakes": {"prefix_lm": "leaks the tokens"}},
    "weights_zeroed_after_softmax": {"mistakes": {"masked_attention": "zeroed after the softmax"}},
    "nan_rows_and_padding_queries_see_nothing": {
        "mistakes": {"masked_attention": "NaN"},
        "replace": {"keys_seen-solution": "keys_seen = {0, 1, 2, 3, 4, 5}"},
        "loses": ["keys_seen"],
    },
}
