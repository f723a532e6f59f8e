"""Wrong submissions for chapter 14, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "mean_over_padding_and_accuracy": {
        "mistakes": {"masked_mean_pool": "over all L positions", "macro_f1": "that is accuracy"},
    },
    "nan_on_empty_rows": {"mistakes": {"masked_mean_pool": "divides 0 by 0"}},
    "calls_the_package_and_thinks_attention_sees_order": {
        "replace": {
            "masked_mean_pool-solution": (
                "from selfattn_course.pooling import masked_mean\n\n\n"
                "def masked_mean_pool(hidden, valid):\n"
                "    return masked_mean(hidden, valid)\n"
            ),
            "order_accuracy-solution": "order_accuracy = (1.0, 0.0)\n",
        },
        "loses": ["masked_mean_pool", "order_accuracy"],
    },
}
