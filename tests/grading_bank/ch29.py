"""Wrong submissions for chapter 29, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "swapped_roc_axes_and_mean_latency": {
        "mistakes": {"roc_points": "columns are swapped", "median_latency": "took the mean"},
    },
    "nan_entropy_and_most_important_head": {
        "mistakes": {"attention_entropy": "0 · log 0", "head_to_prune": "head 1"},
    },
    "rates_over_all_examples": {"mistakes": {"roc_points": "number of all examples"}},
}
