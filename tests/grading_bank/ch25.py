"""Wrong submissions for chapter 25, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "no_tanh_and_heads_tiled": {
        "mistakes": {
            "additive_scores": "the tanh is missing",
            "grouped_query_attention": "tiled",
        },
    },
    "multiplicative_score_and_keys_only": {
        "mistakes": {
            "additive_scores": "multiplied, not added",
            "kv_cache_saving": "keys only",
        },
    },
    "unscaled_and_gigabytes": {
        "mistakes": {
            "grouped_query_attention": "not divided by sqrt(d)",
            "kv_cache_saving": "10**9 (GB)",
        },
    },
}
