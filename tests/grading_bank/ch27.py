"""Wrong submissions for chapter 27, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "feed_forward_forgotten": {
        "mistakes": {"score_share": "left out the feed-forward", "equal_cost_length": "n = 2d"},
    },
    "tokens_instead_of_scores": {
        "mistakes": {"padding_waste": "counted padded tokens"},
    },
    "table_1_length_and_scores_only": {
        "mistakes": {"equal_cost_length": "n = d is Table 1", "score_share": "only the scores"},
    },
}
