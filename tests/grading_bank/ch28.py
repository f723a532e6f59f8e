"""Wrong submissions for chapter 28, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "averaged_blocks_and_mha_cache": {
        "mistakes": {"merge_blocks": "averaged the two outputs", "gqa_cache_gib": "multi-head"},
    },
    "overflowing_merge_and_unscaled_features": {
        "mistakes": {"merge_blocks": "overflows", "performer_features": "lack the factor"},
    },
    "features_call_the_package": {
        "replace": {
            "performer_features-solution": (
                "from selfattn_course.approximate import positive_random_features\n\n\n"
                "def performer_features(x, omega):\n"
                "    return positive_random_features(x, omega)\n"
            ),
        },
        "loses": ["performer_features"],
    },
}
