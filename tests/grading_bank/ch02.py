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
    # Issue #14, section 1: each reaches a ready-made softmax or attention in a way the source
    # check cannot follow; the tripwires make the call fail wherever it comes from.
    "reference_from_a_thread_with_the_profiler_off": {
        "replace": {
            "masked_softmax-solution": (
                "%%capture\n"
                "import sys, threading\n"
                "import selfattn_course.attention as A\n\n"
                "def masked_softmax(scores, mask):\n"
                "    getattr(sys, 'setprofile')(None)\n"
                "    out = {}\n"
                "    ready_made = getattr(A, 'soft' + 'max')\n"
                "    worker = threading.Thread(\n"
                "        target=lambda: out.update(w=ready_made(scores, mask=mask))\n"
                "    )\n"
                "    worker.start()\n"
                "    worker.join()\n"
                "    return out['w']\n"
            ),
        },
        "loses": ["masked_softmax"],
    },
    "registry_reached_through_check": {
        "replace": {
            "masked_softmax-solution": (
                "def masked_softmax(scores, mask):\n"
                "    registry = getattr(check, '__globals__')\n"
                "    return registry['get_task']('ch02.masked_softmax').reference(scores, mask)\n"
            ),
        },
        "loses": ["masked_softmax"],
    },
    "aten_sdpa_by_a_built_name_under_a_cell_magic": {
        "replace": {
            "attention-solution": (
                "%%capture\n"
                "import torch\n\n"
                "def attention(q, k, v, mask=None):\n"
                "    op = getattr(torch.ops.aten, 'scaled_dot_' + 'product_attention')\n"
                "    return op(q, k, v, mask)\n"
            ),
        },
        "loses": ["attention"],
    },
}
