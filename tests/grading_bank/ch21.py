"""Wrong submissions for chapter 21, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "divides_by_the_hop_and_the_stride": {
        "mistakes": {
            "num_frames": "divided the whole signal by the hop",
            "subsampled_length": "divided by the stride only",
        },
    },
    "natural_log_and_token_ratio": {
        "mistakes": {
            "hz_to_mel": "natural logarithm",
            "mixing_ratio": "ratio of the numbers of tokens",
        },
    },
    "own_chunk_only": {
        "mistakes": {"chunk_mask": "only sees its own chunk"},
    },
}
