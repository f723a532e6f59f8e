"""Wrong submissions for chapter 23, each a realistic mistake (the format: helpers.load_bank)."""

BANK = {
    "iou_for_giou_and_greedy_matching": {
        "mistakes": {"generalized_iou": "plain IoU", "match_queries": "greedy"},
    },
    "unclamped_intersection_and_top_left_pixel": {
        "mistakes": {"generalized_iou": "not clamped", "patch_labels": "top-left pixel"},
    },
    "shared_queries_and_divided_by_union": {
        "mistakes": {"match_queries": "share a query", "giou_by_hand": "not the union"},
    },
}
