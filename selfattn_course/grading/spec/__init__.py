"""How a task is declared: the task types, the cases it is tried on, answer types, runners.

A chapter's task module imports what it needs from here::

    from selfattn_course.grading.spec import Case, FunctionTask, Mistake, Property, over_devices
    from selfattn_course.grading.spec import cases as C

- :mod:`.task`      :class:`FunctionTask`, :class:`AnswerTask`, :class:`Property`,
                    :class:`Mistake`: one block per task
- :mod:`.cases`     :class:`Case`, the builders of inputs (``C.qkv``, ``C.random_mask``, ...),
                    :func:`over_devices` for the hidden cases of every dtype and device
- :mod:`.answers`   how conceptual answers are read and compared (``Number``, ``Matrix``, ...)
- :mod:`.calls`     how an answer that is not tensors-to-tensors is called (``returns_number``,
                    ``ModuleRunner``)
- :mod:`.registry`  the lookup: :func:`get_task`, :func:`chapter_tasks`,
                    :func:`registered_chapters`
"""

from selfattn_course.grading.spec import cases
from selfattn_course.grading.spec.cases import Case, joined, over_devices, over_devices_only
from selfattn_course.grading.spec.registry import chapter_tasks, get_task, registered_chapters
from selfattn_course.grading.spec.task import (
    AnswerTask,
    FunctionTask,
    Mistake,
    Property,
    Task,
)

__all__ = [
    "cases",
    "Case",
    "over_devices",
    "over_devices_only",
    "joined",
    "FunctionTask",
    "AnswerTask",
    "Mistake",
    "Property",
    "Task",
    "get_task",
    "chapter_tasks",
    "registered_chapters",
]
