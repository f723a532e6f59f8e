"""Chapter 3's tasks (selfattn_course/grading/tasks/ch03.py): the references against hand
arithmetic."""

from __future__ import annotations

from selfattn_course.grading.tasks import ch03


def test_flop_counts_by_hand():
    # n = 2, d = 3: projections 4 · 2·2·3·3 = 144, scores and mixing 2 · 2·2·2·3 = 48
    assert ch03.attention_flops(2, 3) == 192
    assert ch03.rnn_flops(2, 3) == 72  # 2 steps · 2 products · 2·3·3


def test_the_crossover_is_the_largest_length_where_attention_costs_no_more_than_an_lstm():
    d, n = ch03.CROSSOVER_WIDTH, ch03._crossover_length(ch03.CROSSOVER_WIDTH)

    def lstm(length):
        return 16 * length * d**2

    assert ch03.attention_flops(n, d) <= lstm(n)
    assert ch03.attention_flops(n + 1, d) > lstm(n + 1)


def test_sizes_by_hand():
    assert ch03.weights_mib(1, 12, 512, 4) == 12  # 12 · 2**18 numbers · 4 bytes
    assert ch03.kv_cache_gib(32, 4096, 4096, 2) == 2  # 2 · 32 · 2**12 · 2**12 · 2 bytes


def test_the_longest_context_fits_and_one_more_token_does_not():
    def size(n):
        return ch03.kv_cache_gib(
            ch03.CACHE_LAYERS, n, ch03.CACHE_D_MODEL, ch03.CACHE_BYTES_PER_NUMBER
        )

    assert size(ch03.CONTEXT_THAT_FITS) <= ch03.CACHE_BUDGET_GIB < size(ch03.CONTEXT_THAT_FITS + 1)
