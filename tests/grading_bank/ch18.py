"""Wrong submissions for chapter 18, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "rank_off_by_one_and_rolled_history": {
        "mistakes": {"hit_and_ndcg": "counts the target itself", "leave_one_out": "torch.roll"},
    },
    "natural_log_discount": {"mistakes": {"hit_and_ndcg": "not the natural log"}},
    "padding_pairs_and_binomial": {
        "mistakes": {
            "transition_counts": "a padding item counts",
            "sampled_hit_probability": "not binomial",
        },
    },
}
