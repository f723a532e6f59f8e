"""Wrong submissions for chapter 6, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "flipped_kernel_and_no_plus_one": {
        "mistakes": {"conv1d": "flip the kernel", "receptive_field": "left out the position"},
    },
    "dilation_ignored_everywhere": {
        "mistakes": {
            "conv1d": "i + t instead of i + t·dilation",
            "receptive_field": "dilations are ignored",
            "layers_to_connect": "n/k layers",
        },
    },
    "conv_is_sequential": {
        "mistakes": {"sequential_layer": "outputs depend only on its inputs"},
    },
    "calls_torch_conv1d": {
        "replace": {
            "conv1d-solution": (
                "import torch.nn.functional as F\n\n\n"
                "def conv1d(x, weight, bias=None, dilation=1):\n"
                "    return F.conv1d(x, weight, bias, dilation=dilation)\n"
            ),
        },
        "loses": ["conv1d"],
    },
    # Issue #14: torch's convolution by an operator name built at run time, in a cell the source
    # check cannot read (%%capture); the tripwires stop it in the dispatcher.
    "aten_convolution_by_a_built_name": {
        "replace": {
            "conv1d-solution": (
                "%%capture\n"
                "import torch\n\n\n"
                "def conv1d(x, weight, bias=None, dilation=1):\n"
                "    op = getattr(torch.ops.aten, 'convo' + 'lution')\n"
                "    return op(x, weight, bias, [1], [0], [dilation], False, [0], 1)\n"
            ),
        },
        "loses": ["conv1d"],
    },
}
