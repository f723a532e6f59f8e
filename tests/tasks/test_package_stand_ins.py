"""The package's own function never earns a from-scratch task's points.

A task whose answer the package already computes forbids calling it (``FunctionTask.forbidden``);
these tests submit the package function itself as the learner's answer. Every forbidden name of
every task must also name a real function, or the rule would silently never trip.
"""

from __future__ import annotations

import pytest

from selfattn_course import costs, debug, vision
from selfattn_course.attention import kv_cache_bytes
from selfattn_course.grading import CheckFailed
from selfattn_course.grading.spec import FunctionTask, chapter_tasks, get_task, registered_chapters
from selfattn_course.grading.verdicts.compare import check_function
from selfattn_course.grading.verdicts.forbid import resolve

FORBIDDEN = sorted(
    {
        (task.id, name)
        for chapter in registered_chapters()
        for task in chapter_tasks(chapter).values()
        if isinstance(task, FunctionTask)
        for name in task.forbidden
    }
)


@pytest.mark.parametrize("task_id, name", FORBIDDEN)
def test_every_forbidden_name_is_a_callable_of_the_package_or_torch(task_id, name):
    assert callable(resolve(name)), f"{task_id} forbids {name}, which is not a function"


def kv_bytes_per_token(layers, heads, kv_heads, head_dim, bytes_per_number):
    return kv_cache_bytes(1, layers, kv_heads, head_dim, bytes_per_number)


def kv_gib(layers, n, d_model, bytes_per_number):
    return kv_cache_bytes(n, layers, 1, d_model, bytes_per_number) / 2**30


STAND_INS = [
    ("ch03.attention_flops", costs.attention_layer_flops),
    ("ch03.rnn_flops", costs.rnn_flops),
    ("ch03.kv_cache_gib", kv_gib),
    ("ch04.patchify", vision.patchify),
    ("ch07.conv1d_flops", costs.conv1d_flops),
    ("ch09.kv_cache_bytes_per_token", kv_bytes_per_token),
    ("ch11.message_passing_flops", costs.message_passing_flops),
    ("ch29.attention_entropy", debug.attention_entropy),
    ("ch30.head_entropy", debug.attention_entropy),
]


@pytest.mark.parametrize("task_id, stand_in", STAND_INS, ids=[task for task, _ in STAND_INS])
def test_the_package_function_submitted_as_the_answer_is_a_forbidden_call(task_id, stand_in):
    task = get_task(task_id)
    with pytest.raises(CheckFailed, match="this task asks you to write it yourself") as failure:
        check_function(task, stand_in, task.visible_cases())
    assert "your code called selfattn_course." in str(failure.value)
