"""Wrong submissions for chapter 17, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "seed_mean_over_the_batch": {"mistakes": {"add_knowledge_mean": "whole batch"}},
    "no_mask_and_smallest_neighbours": {
        "mistakes": {
            "knowledge_cross_attention": "NaN",
            "retrieve_then_attend": "smallest",
        },
    },
    "dot_product_tail": {"mistakes": {"transe_best_tail": "largest dot product"}},
    "calls_the_package_retrieval": {
        "replace": {
            "retrieve_then_attend-solution": (
                "from selfattn_course.retrieval import retrieval_attention\n\n\n"
                "def retrieve_then_attend(queries, keys, values, k):\n"
                "    return retrieval_attention(queries, keys, values, k)\n"
            ),
        },
        "loses": ["retrieve_then_attend"],
    },
}
