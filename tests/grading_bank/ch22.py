"""Wrong submissions for chapter 22, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "concatenated_encoding_and_unweighted_bins": {
        "mistakes": {
            "time_encoding": "concatenated",
            "expected_calibration_error": "equal weights",
        },
    },
    "softmax_over_padding": {"mistakes": {"attention_pool": "over the padding too"}},
    "calls_sdpa_and_thinks_calibrated_means_useless": {
        "replace": {
            "attention_pool-solution": (
                "from selfattn_course.attention import scaled_dot_product_attention\n\n\n"
                "def attention_pool(hidden, valid, query):\n"
                "    q = query.expand(hidden.shape[0], 1, hidden.shape[-1])\n"
                "    return scaled_dot_product_attention(q, hidden, hidden, valid[:, None])[:, 0]\n"
            ),
            "constant_predictor-solution": "constant_predictor = (0.1, 0.5)\n",
        },
        "loses": ["attention_pool", "constant_predictor"],
    },
}
