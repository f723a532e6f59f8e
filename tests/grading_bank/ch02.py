"""Wrong submissions for chapter 2, each a realistic mistake.

BANK maps a name to (see ``helpers.load_bank``):
  mistakes: {task name: words of a Mistake's description}: the mistake's source, from the task
            spec, replaces the task's solution cell, and the task loses points
  replace:  {solution cell id: the learner's whole cell source} (hand-written entries)
  delete:   [cell ids the learner deleted] (optional)
  loses:    the tasks (test cell ids) that must score less than full marks besides those of
            ``mistakes``; every other task keeps full marks. Task 3 (attention) is graded with
            the reference attention_scores and masked_softmax in place of the learner's, so
            mistakes there cost points once.
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
