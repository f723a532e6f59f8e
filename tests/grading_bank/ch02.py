"""Wrong submissions for chapter 2, each a realistic mistake.

BANK maps a name to:
  replace: {solution cell id: the learner's whole cell source}
  delete:  [cell ids the learner deleted] (optional)
  loses:   the tasks (test cell ids) that must score less than full marks; every other task keeps
           full marks. Task 3 (attention) is graded with the reference attention_scores and
           masked_softmax in place of the learner's, so mistakes there cost points once.
"""

BANK = {
    "missing_scale": {
        "replace": {
            "attention_scores-solution": "def attention_scores(q, k):\n    return q @ k.transpose(-2, -1)\n",
        },
        "loses": ["attention_scores"],
    },
    "softmax_over_queries": {
        "replace": {
            "masked_softmax-solution": (
                "def masked_softmax(scores, mask):\n"
                "    if mask is not None:\n"
                "        scores = scores.masked_fill(~mask, float('-inf'))\n"
                "    return torch.nan_to_num(torch.softmax(scores, dim=-2), nan=0.0)\n"
            ),
        },
        "loses": ["masked_softmax"],
    },
    "all_masked_row_gives_nan": {
        "replace": {
            "masked_softmax-solution": (
                "def masked_softmax(scores, mask):\n"
                "    if mask is not None:\n"
                "        scores = scores.masked_fill(~mask, float('-inf'))\n"
                "    return torch.softmax(scores, dim=-1)\n"
            ),
        },
        "loses": ["masked_softmax"],
    },
    "mask_applied_after_softmax": {
        "replace": {
            "attention-solution": (
                "def attention(q, k, v, mask=None):\n"
                "    weights = torch.softmax(attention_scores(q, k), dim=-1)\n"
                "    if mask is not None:\n"
                "        weights = weights * mask\n"
                "    return weights @ v\n"
            ),
        },
        "loses": ["attention"],
    },
    "calls_torch_sdpa_and_reports_std": {
        "replace": {
            "attention-solution": (
                "import torch.nn.functional as F\n\n"
                "def attention(q, k, v, mask=None):\n"
                "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
            ),
            "score_variance-solution": "d_k = 64\nscore_variance = (8, 1)\n",
        },
        "loses": ["attention", "score_variance"],
    },
}
