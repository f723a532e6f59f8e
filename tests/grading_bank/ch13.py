"""Wrong submissions for chapter 13, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "reshape_without_permute": {
        "mistakes": {
            "patchify": "reshaped without moving the axes",
            "window_partition": "reshaped without moving the axes",
        },
    },
    "global_cost_and_token_ratio": {
        "mistakes": {
            "window_mixing_flops": "global attention",
            "pixels_over_patches": "ratio of the numbers of tokens",
        },
    },
    "channels_last_patches": {
        "mistakes": {"patchify": "channels last"},
    },
    "calls_unfold": {
        "replace": {
            "patchify-solution": (
                "def patchify(images, patch):\n"
                "    out = torch.nn.functional.unfold(images, kernel_size=patch, stride=patch)\n"
                "    return out.transpose(1, 2)\n"
            ),
        },
        "loses": ["patchify"],
    },
}
