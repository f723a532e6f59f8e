"""Wrong submissions for chapter 11, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "combinatorial_laplacian_and_unreachable_at_zero": {
        "mistakes": {
            "laplacian_pe": "combinatorial Laplacian",
            "shortest_path_distances": "left at 0",
        },
    },
    "seed_cost_and_reversed_edges": {
        "mistakes": {
            "message_passing": "wrong way",
            "message_passing_flops": "O(n·k)",
        },
    },
    "assigned_messages_and_package_flops": {
        "mistakes": {"message_passing": "assigned the messages"},
        "replace": {
            "message_passing_flops-solution": (
                "from selfattn_course.costs import message_passing_flops as package_flops\n"
                "\n"
                "\n"
                "def message_passing_flops(num_nodes, num_edges, d):\n"
                "    return package_flops(num_nodes, num_edges, d)\n"
            ),
        },
        "loses": ["message_passing_flops"],
    },
}
