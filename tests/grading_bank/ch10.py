"""Wrong submissions for chapter 10, each a realistic mistake (the format: helpers.load_bank).

Task 2 (graph_attention) is graded with the package's adjacency_mask in place of the learner's,
so a wrong mask in task 1 costs points there only.
"""

BANK = {
    "mask_transposed": {"mistakes": {"adjacency_mask": "transposed"}},
    "attends_along_outgoing_edges_and_applies_perm": {
        "mistakes": {"graph_attention": "transposed", "relabel_edges": "instead of its inverse"},
    },
    "dot_product_favourites": {"mistakes": {"favourite_keys": "dot-product scores"}},
    "calls_the_package_mask": {
        "replace": {
            "adjacency_mask-solution": (
                "from selfattn_course.graphs import adjacency_mask as package_mask\n\n\n"
                "def adjacency_mask(edges, num_nodes, directed=False, self_loops=True):\n"
                "    return package_mask(edges, num_nodes, directed=directed, "
                "self_loops=self_loops)\n"
            ),
        },
        "loses": ["adjacency_mask"],
    },
}
