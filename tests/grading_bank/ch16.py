"""Wrong submissions for chapter 16, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "ends_chosen_apart_and_a_set_overlap": {
        "mistakes": {"best_span": "separately", "token_f1": "as a set"},
    },
    "every_start_gets_max_len_ends": {
        "replace": {"span_counts-solution": "span_counts = (200 * 30, 200 * 201 // 2)\n"},
        "loses": ["span_counts"],
    },
    "all_pairs_counted_without_a_limit": {
        "replace": {"span_counts-solution": "span_counts = (5565, 200**2)\n"},
        "loses": ["span_counts"],
    },
}
