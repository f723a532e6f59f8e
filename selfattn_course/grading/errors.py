"""The one exception graders raise: :class:`CheckFailed`.

It subclasses ``AssertionError``, so a notebook's test cell fails on it exactly as on a plain
``assert``, and its message is the whole of the feedback: which task, which case, which inputs
(with shapes), what went wrong (largest error, broken property) and, when recognised, a hint.
"""


class CheckFailed(AssertionError):
    """A learner's function or answer did not pass a check; the message says why."""
