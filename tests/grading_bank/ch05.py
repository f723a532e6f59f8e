"""Wrong submissions for chapter 5, each a realistic mistake (the format: helpers.load_bank).

Task 4 (multi_head_self_attention) is graded with the reference split_heads and merge_heads in
place of the learner's, so a mistake there costs points once.
"""

_MHA_HEAD = (
    "class MultiHeadSelfAttention(nn.Module):\n"
    "    def __init__(self, d_model, num_heads):\n"
    "        super().__init__()\n"
    "        self.d_model, self.num_heads = d_model, num_heads\n"
    "        self.q_proj = nn.Linear(d_model, d_model)\n"
    "        self.k_proj = nn.Linear(d_model, d_model)\n"
    "        self.v_proj = nn.Linear(d_model, d_model)\n"
    "        self.out_proj = nn.Linear(d_model, d_model)\n"
    "\n"
    "    def forward(self, x, mask=None):\n"
    "        q = split_heads(self.q_proj(x), self.num_heads)\n"
    "        k = split_heads(self.k_proj(x), self.num_heads)\n"
    "        v = split_heads(self.v_proj(x), self.num_heads)\n"
)
_MHA_TAIL = "\n\nmulti_head_self_attention = MultiHeadSelfAttention\n"

BANK = {
    "transpose_fixed_softmax_still_dim_1": {"mistakes": {"self_attention": "dim=1"}},
    "strided_heads_and_scale_by_d_model": {
        "mistakes": {
            "split_heads": "every h-th feature",
            "multi_head_self_attention": "sqrt(d_model);",
        },
    },
    "merge_without_transpose_used_by_a_correct_layer": {
        "mistakes": {"merge_heads": "transpose to (B, L, h, d_k) first"},
    },
    "all_masked_rows_give_nan": {
        "replace": {
            "multi_head_self_attention-solution": _MHA_HEAD
            + "        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
            "        if mask is not None:\n"
            "            scores = scores.masked_fill(~mask, float('-inf'))\n"
            "        weights = torch.softmax(scores, dim=-1)\n"
            "        return self.out_proj(merge_heads(weights @ v)), weights\n" + _MHA_TAIL,
        },
        "loses": ["multi_head_self_attention"],
    },
    "torch_attention_and_torch_mask_convention": {
        "replace": {
            "multi_head_self_attention-solution": _MHA_HEAD
            + "        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
            "        return self.out_proj(merge_heads(out)), None\n" + _MHA_TAIL,
        },
        "mistakes": {"course_mask": "torch's (True = blocked)"},
        "loses": ["multi_head_self_attention"],
    },
}
