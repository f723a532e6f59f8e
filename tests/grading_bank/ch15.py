"""Wrong submissions for chapter 15, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "no_causal_mask_and_no_padding_after_end": {
        "mistakes": {
            "decoder_masks": "also needs the causal mask",
            "greedy_tokens": "a finished sentence must stop",
        },
    },
    "queries_masked_and_cached_count": {
        "mistakes": {
            "decoder_masks": "not the padded target queries",
            "scores_without_cache": "count with a cache",
        },
    },
    "end_token_dropped": {"mistakes": {"greedy_tokens": "end token itself"}},
}
