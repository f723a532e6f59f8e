"""Wrong submissions for chapter 12, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "halves_for_sin_cos_and_swapped_rope_layouts": {
        "mistakes": {"sinusoidal_encoding": "interleaved", "rope": "layouts are swapped"},
    },
    "wrong_exponent_step_and_power_of_two_formula_everywhere": {
        "mistakes": {
            "sinusoidal_encoding": "step the exponents by 2",
            "alibi_slope_list": "not a power of two",
        },
    },
    "rotation_backwards_and_bucket_on_the_wrong_side": {
        "mistakes": {"rope": "wrong way", "t5_bucket": "only keys after"},
    },
}
