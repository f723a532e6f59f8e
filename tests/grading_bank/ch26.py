"""Wrong submissions for chapter 26, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "equal_average_and_linear_extrapolation": {
        "mistakes": {
            "ring_attention": "averaged the shards' outputs with equal weights",
            "predicted_seconds": "the time doubles with n",
        },
    },
    "band_not_clipped": {
        "mistakes": {"kept_blocks": "cut off at the first and last blocks"},
    },
    "unscaled_scores_and_double_counted_globals": {
        "mistakes": {
            "ring_attention": "not divided by sqrt(d)",
            "kept_blocks": "counted twice",
        },
    },
}
