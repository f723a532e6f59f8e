"""Wrong submissions for chapter 2, each a realistic mistake (the format: helpers.load_bank).

Task 3 (attention) is graded with the reference attention_scores and masked_softmax in place
of the learner's, so mistakes there cost points once.
"""

BANK = {
    "missing_scale": {"mistakes": {"attention_scores": "not divided by sqrt(d_k)"}},
    "softmax_over_queries": {"mistakes": {"masked_softmax": "over the queries"}},
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
    "mask_applied_after_softmax": {"mistakes": {"attention": "after the softmax"}},
    "calls_torch_sdpa_and_reports_std": {
        "replace": {
            "attention-solution": (
                "import torch.nn.functional as F\n\n"
                "def attention(q, k, v, mask=None):\n"
                "    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
            ),
        },
        "mistakes": {"score_variance": "standard deviation"},
        "loses": ["attention"],
    },
}
