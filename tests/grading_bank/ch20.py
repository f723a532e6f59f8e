"""Wrong submissions for chapter 20, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "joint_instead_of_divided": {
        "mistakes": {
            "time_attention": "all T·S tokens",
            "divided_mixing_flops": "joint attention",
        },
    },
    "time_before_channels": {
        "mistakes": {"tubelets": "time before channels"},
    },
    "space_first_and_unscaled": {
        "mistakes": {
            "tubelets": "space first",
            "time_attention": "not divided by sqrt(d)",
        },
    },
    "calls_sdpa": {
        "replace": {
            "time_attention-solution": (
                "def time_attention(q, k, v):\n"
                "    q, k, v = (x.transpose(1, 2) for x in (q, k, v))\n"
                "    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)\n"
                "    return out.transpose(1, 2)\n"
            ),
        },
        "loses": ["time_attention"],
    },
}
