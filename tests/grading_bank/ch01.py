"""Wrong submissions for chapter 1, each a realistic mistake.

BANK maps a name to:
  replace: {solution cell id: the learner's whole cell source}
  delete:  [cell ids the learner deleted] (optional)
  loses:   the tasks (test cell ids) that must score less than full marks; every other task keeps
           full marks.
"""

SCORES = """scores = np.array([[2.0, 1.0, 0.0],
                   [0.0, 0.0, 0.0],
                   [1.0, 3.0, 1.0]])
"""

BANK = {
    "softmax_over_columns": {
        "replace": {
            "weights-solution": SCORES
            + "exp_scores = np.exp(scores)\nweights = exp_scores / exp_scores.sum(axis=0, keepdims=True)\n",
        },
        "loses": ["weights"],
    },
    "path_length_off_by_one": {
        "replace": {"path_lengths-solution": "path_lengths = (1, 9)  # h_0 to h_9\n"},
        "loses": ["path_lengths"],
    },
    "causal_rows_reversed_and_convolution_choice": {
        "replace": {
            "rows_changed_causal-solution": "rows_changed_causal = {0, 1, 2}\n",
            "mixing-solution": 'mixing = "a"\n',
        },
        "loses": ["rows_changed_causal", "mixing"],
    },
    "deleted_test_cell": {
        # nbgrader puts the deleted test cell back (OverwriteCells.add_missing_cells) and runs it.
        "replace": {"rows_changed-solution": "rows_changed = {2}\n"},
        "delete": ["rows_changed"],
        "loses": ["rows_changed"],
    },
}
