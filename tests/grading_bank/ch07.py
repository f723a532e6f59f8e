"""Wrong submissions for chapter 7, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "the_seeds_big_o": {
        "mistakes": {"conv1d_flops": "O(n·k)", "mixing_crossover": "n = k compares"},
    },
    "kernel_taps_and_flipped_kernel": {
        "mistakes": {"conv2d_flops": "k² taps", "circular_conv1d": "flipped the kernel"},
    },
    "zero_padding_and_one_head": {
        "mistakes": {
            "circular_conv1d": "padded with zeros",
            "weights_over_activations": "multiply by the number of heads",
        },
    },
    "calls_torch_conv1d": {
        "replace": {
            "circular_conv1d-solution": (
                "def circular_conv1d(x, weight):\n"
                "    k = weight.shape[-1]\n"
                "    n, c_in = x.shape[-2:]\n"
                "    channels_first = x.reshape(-1, n, c_in).transpose(1, 2)\n"
                "    padded = torch.nn.functional.pad(\n"
                "        channels_first, (k // 2, k // 2), mode='circular'\n"
                "    )\n"
                "    out = torch.nn.functional.conv1d(padded, weight)\n"
                "    return out.transpose(1, 2).reshape(*x.shape[:-1], weight.shape[0])\n"
            ),
        },
        "loses": ["circular_conv1d"],
    },
}
