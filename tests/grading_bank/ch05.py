"""Wrong submissions for chapter 5, each a realistic mistake.

BANK maps a name to:
  replace: {solution cell id: the learner's whole cell source}
  delete:  [cell ids the learner deleted] (optional)
  loses:   the tasks (test cell ids) that must score less than full marks; every other task keeps
           full marks. Task 4 (multi_head_self_attention) is graded with the reference split_heads
           and merge_heads in place of the learner's, so a mistake there costs points once.
"""

_SELF_ATTENTION_HEAD = (
    "class SelfAttention(nn.Module):\n"
    "    def __init__(self, d_model):\n"
    "        super().__init__()\n"
    "        self.d_model = d_model\n"
    "        self.query_linear = nn.Linear(d_model, d_model)\n"
    "        self.key_linear = nn.Linear(d_model, d_model)\n"
    "        self.value_linear = nn.Linear(d_model, d_model)\n"
    "\n"
)

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
)

BANK = {
    "transpose_fixed_softmax_still_dim_1": {
        "replace": {
            "self_attention-solution": _SELF_ATTENTION_HEAD + "    def forward(self, x):\n"
            "        query, key, value = self.query_linear(x), self.key_linear(x), self.value_linear(x)\n"
            "        weights = nn.Softmax(dim=1)(query @ key.transpose(-2, -1) / self.d_model ** 0.5)\n"
            "        return weights @ value, weights\n"
            "\n"
            "\n"
            "self_attention = SelfAttention\n",
        },
        "loses": ["self_attention"],
    },
    "strided_heads_and_scale_by_d_model": {
        "replace": {
            "split_heads-solution": (
                "def split_heads(x, num_heads):\n"
                "    b, l, d = x.shape\n"
                "    return x.reshape(b, l, d // num_heads, num_heads).permute(0, 3, 1, 2)\n"
            ),
            "multi_head_self_attention-solution": _MHA_HEAD
            + "    def forward(self, x, mask=None):\n"
            "        q, k, v = (split_heads(p(x), self.num_heads) for p in (self.q_proj, self.k_proj, self.v_proj))\n"
            "        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)\n"
            "        if mask is not None:\n"
            "            scores = scores.masked_fill(~mask, float('-inf'))\n"
            "        weights = torch.nan_to_num(torch.softmax(scores, dim=-1))\n"
            "        return self.out_proj(merge_heads(weights @ v)), weights\n"
            "\n"
            "\n"
            "multi_head_self_attention = MultiHeadSelfAttention\n",
        },
        "loses": ["split_heads", "multi_head_self_attention"],
    },
    "merge_without_transpose_used_by_a_correct_layer": {
        "replace": {
            "merge_heads-solution": (
                "def merge_heads(x):\n"
                "    b, h, l, d_k = x.shape\n"
                "    return x.reshape(b, l, h * d_k)\n"
            ),
        },
        "loses": ["merge_heads"],
    },
    "all_masked_rows_give_nan": {
        "replace": {
            "multi_head_self_attention-solution": _MHA_HEAD
            + "    def forward(self, x, mask=None):\n"
            "        q = split_heads(self.q_proj(x), self.num_heads)\n"
            "        k = split_heads(self.k_proj(x), self.num_heads)\n"
            "        v = split_heads(self.v_proj(x), self.num_heads)\n"
            "        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
            "        if mask is not None:\n"
            "            scores = scores.masked_fill(~mask, float('-inf'))\n"
            "        weights = torch.softmax(scores, dim=-1)\n"
            "        return self.out_proj(merge_heads(weights @ v)), weights\n"
            "\n"
            "\n"
            "multi_head_self_attention = MultiHeadSelfAttention\n",
        },
        "loses": ["multi_head_self_attention"],
    },
    "torch_attention_and_torch_mask_convention": {
        "replace": {
            "multi_head_self_attention-solution": _MHA_HEAD
            + "    def forward(self, x, mask=None):\n"
            "        q = split_heads(self.q_proj(x), self.num_heads)\n"
            "        k = split_heads(self.k_proj(x), self.num_heads)\n"
            "        v = split_heads(self.v_proj(x), self.num_heads)\n"
            "        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
            "        return self.out_proj(merge_heads(out)), None\n"
            "\n"
            "\n"
            "multi_head_self_attention = MultiHeadSelfAttention\n",
            "course_mask-solution": (
                "def course_mask(attn_mask, key_padding_mask):\n"
                "    return attn_mask[None, None] | key_padding_mask[:, None, None, :]\n"
            ),
        },
        "loses": ["multi_head_self_attention", "course_mask"],
    },
}
