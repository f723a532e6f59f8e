"""Wrong submissions for chapter 3, each a realistic mistake (the format: helpers.load_bank).

A task whose answer the notebook computes from an earlier function loses points with it when
the learner builds on the wrong function (longest_context below).
"""

BANK = {
    "multiply_add_counted_once": {
        "mistakes": {"attention_flops": "multiply-add as 1 FLOP", "rnn_flops": "count half"},
    },
    "mixing_only_and_table_1_crossover": {
        "mistakes": {
            "attention_flops": "only the scores and the mixing",
            "crossover_length": "n < d",
        },
    },
    "megabytes_and_keys_only": {
        "mistakes": {"weights_mib": "10**6 (MB)", "kv_cache_gib": "keys and values"},
        "loses": ["longest_context"],
    },
    "context_rounded_up_and_test_deleted": {
        "replace": {
            "longest_context-solution": (
                "layers, d_model, bytes_per_number, budget_gib = 40, 5120, 2, 24\n"
                "longest_context = math.ceil(\n"
                "    budget_gib / kv_cache_gib(layers, 1, d_model, bytes_per_number)\n"
                ")\n"
            ),
        },
        # nbgrader puts the deleted test cell back (OverwriteCells.add_missing_cells);
        # rnn_flops is right.
        "delete": ["rnn_flops"],
        "loses": ["longest_context"],
    },
}
