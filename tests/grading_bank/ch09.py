"""Wrong submissions for chapter 9, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "keys_only_and_projections_forgotten": {
        "mistakes": {
            "kv_cache_bytes_per_token": "keys *and* values",
            "equal_cost_position": "four projections",
        },
    },
    "query_heads_cached_and_mask_top_left": {
        "mistakes": {
            "kv_cache_bytes_per_token": "query heads that share",
            "cached_attention": "aligned top-left",
        },
    },
    "cache_ignored_and_rounded_down": {
        "mistakes": {
            "cached_attention": "must also see the cache",
            "steps_to_vanish": "rounded down",
        },
    },
}
