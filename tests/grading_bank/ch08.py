"""Wrong submissions for chapter 8, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "layer_by_layer_and_input_gate": {
        "mistakes": {"steps": "wavefront", "forget_gate": "input gate"},
    },
    "cache_without_the_new_token": {"mistakes": {"attention_step": "own key and value"}},
    "calls_torch_sdpa": {
        "replace": {
            "attention_step-solution": (
                "import torch.nn.functional as F\n\n\n"
                "def attention_step(q, k, v, past_keys, past_values):\n"
                "    keys = torch.cat([past_keys, k], dim=-2)\n"
                "    values = torch.cat([past_values, v], dim=-2)\n"
                "    return F.scaled_dot_product_attention(q, keys, values)\n"
            ),
        },
        "loses": ["attention_step"],
    },
}
