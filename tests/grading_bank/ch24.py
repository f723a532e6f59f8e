"""Wrong submissions for chapter 24, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "weights_only_and_no_mixing": {
        "mistakes": {
            "block_parameters": "weight matrices only",
            "flops_per_token": "left out the attention scores",
        },
    },
    "post_ln_block": {"mistakes": {"pre_ln_block": "post-LN block"}},
    "no_layer_norms_and_unbiased_variance": {
        "mistakes": {
            "block_parameters": "left out the two LayerNorms",
            "pre_ln_block": "unbiased variance",
        },
    },
}
