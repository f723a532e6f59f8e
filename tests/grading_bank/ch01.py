"""Wrong submissions for chapter 1, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "softmax_over_columns": {
        # no hint: the broken property "each row of the weights sums to 1" says it
        "replace": {
            "weights-solution": (
                "scores = np.array([[2.0, 1.0, 0.0],\n"
                "                   [0.0, 0.0, 0.0],\n"
                "                   [1.0, 3.0, 1.0]])\n"
                "exp_scores = np.exp(scores)\n"
                "weights = exp_scores / exp_scores.sum(axis=0, keepdims=True)\n"
            ),
        },
        "loses": ["weights"],
    },
    "path_length_off_by_one": {"mistakes": {"path_lengths": "count the first step too"}},
    "causal_rows_reversed_and_convolution_choice": {
        "mistakes": {"rows_changed_causal": "reversed", "mixing": "convolution"},
    },
    "deleted_test_cell": {
        # nbgrader puts the deleted test cell back (OverwriteCells.add_missing_cells) and runs it.
        "mistakes": {"rows_changed": "every row holds a score against key 2"},
        "delete": ["rows_changed"],
    },
    # Issue #14, section 2: the expected answer read from the task registry. The sandbox hides
    # the task modules, so the lookup fails and the task scores 0.
    "answer_read_from_the_registry": {
        "replace": {
            "mixing-solution": (
                "from selfattn_course.grading.spec.registry import get_task\n\n"
                "mixing = get_task('ch01.mixing').expected\n"
            ),
        },
        "loses": ["mixing"],
    },
}
