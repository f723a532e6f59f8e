"""Wrong submissions for chapter 3, each a realistic mistake.

BANK maps a name to:
  replace: {solution cell id: the learner's whole cell source}
  delete:  [cell ids the learner deleted] (optional)
  loses:   the tasks (test cell ids) that must score less than full marks; every other task keeps
           full marks. A task whose answer the notebook computes from an earlier function loses
           points with it when the learner builds on the wrong function (longest_context below).
"""

BANK = {
    "multiply_add_counted_once": {
        "replace": {
            "attention_flops-solution": (
                "def attention_flops(n, d):\n"
                "    # one FLOP per multiply-add\n"
                "    return 4 * n * d * d + 2 * n * n * d\n"
            ),
            "rnn_flops-solution": "def rnn_flops(n, d):\n    return 2 * n * d * d\n",
        },
        "loses": ["attention_flops", "rnn_flops"],
    },
    "mixing_only_and_table_1_crossover": {
        "replace": {
            "attention_flops-solution": "def attention_flops(n, d):\n    return 4 * n * n * d  # scores and mixing\n",
            "crossover_length-solution": "d = 768\ncrossover_length = d  # attention is cheaper while n < d\n",
        },
        "loses": ["attention_flops", "crossover_length"],
    },
    "megabytes_and_keys_only": {
        "replace": {
            "weights_mib-solution": (
                "def weights_mib(batch, heads, n, bytes_per_number):\n"
                "    return batch * heads * n**2 * bytes_per_number / 1e6\n"
            ),
            "kv_cache_gib-solution": (
                "def kv_cache_gib(layers, n, d_model, bytes_per_number):\n"
                "    return layers * n * d_model * bytes_per_number / 2**30\n"
            ),
        },
        "loses": ["weights_mib", "kv_cache_gib", "longest_context"],
    },
    "context_rounded_up_and_test_deleted": {
        "replace": {
            "longest_context-solution": (
                "layers, d_model, bytes_per_number, budget_gib = 40, 5120, 2, 24\n"
                "longest_context = math.ceil(budget_gib / kv_cache_gib(layers, 1, d_model, bytes_per_number))\n"
            ),
        },
        # nbgrader puts the deleted test cell back (OverwriteCells.add_missing_cells); rnn_flops is right.
        "delete": ["rnn_flops"],
        "loses": ["longest_context"],
    },
}
