"""Helpers a task hands to the learner's function while it is checked (``FunctionTask.provided``).

A task that builds on an earlier one (chapter 2's ``attention`` calls ``attention_scores`` and
``masked_softmax``) binds these correct versions into the learner's namespace while their function
runs, so a mistake in the earlier task is not counted twice.

They live here, not in the chapters' task modules, because the graded kernel needs them: the
sandbox hides :mod:`selfattn_course.grading.tasks` (the references and expected answers stay in the
grader's process), while this module, like the rest of :mod:`~selfattn_course.grading.spec`, is
visible there. While a notebook is graded a helper that calls a function the chapter forbids works
only inside the hand-over of the task it is provided to
(:mod:`selfattn_course.grading.tripwires`).
"""

from __future__ import annotations

import math

import torch

from selfattn_course.attention import softmax
from selfattn_course.graphs import adjacency_mask as package_adjacency_mask

__all__ = ["attention_scores", "masked_softmax", "adjacency_mask"]


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``q kᵀ / √d``: ``(..., Lq, d), (..., Lk, d) -> (..., Lq, Lk)``."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last dim, only over the entries where ``mask`` is True (True = may
    attend); all-masked rows give 0."""
    return softmax(scores, dim=-1, mask=mask)


def adjacency_mask(
    edges: torch.Tensor, num_nodes: int, directed: bool = False, self_loops: bool = True
) -> torch.Tensor:
    """``(n, n)`` bool, ``mask[i, j]`` True iff edge ``j -> i`` (both ways if undirected), and
    on the diagonal if ``self_loops``."""
    return package_adjacency_mask(edges, num_nodes, directed=directed, self_loops=self_loops)
