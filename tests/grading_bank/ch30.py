"""Wrong submissions for chapter 30, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "pytorch_mask_convention_and_bits": {
        "mistakes": {"fixed_attention": "wrong way round", "head_entropy": "bits"},
    },
    "nan_rows_and_std_for_variance": {
        "mistakes": {"fixed_attention": "gives NaN", "unscaled_variance": "standard deviation"},
    },
    "zero_log_zero": {"mistakes": {"head_entropy": "0 · log 0"}},
}
