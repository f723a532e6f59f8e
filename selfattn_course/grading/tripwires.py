"""Tripwires: make the functions a "from scratch" task forbids unusable in the graded kernel.

:func:`install` runs in the graded kernel's startup code, before the learner's first cell. From
then on every name in ``forbidden`` raises :class:`Tripped` wherever it is called from (any
alias, any thread), except from inside a function provided to the task whose hand-over is running
(see :func:`begin`). Nothing it installs can be removed from Python:

* **One audit hook** (PEP 578, ``sys.addaudithook``) decides every call. Audit hooks cannot be
  removed, run for every thread, and CPython runs them with tracing and profiling off. The hook's
  state is a handful of immutable values (strings, ints, frozensets, code objects) in its closure;
  a learner who reaches its frame (``tb_frame`` of a :class:`Tripped` traceback) can read them
  but not change them, and the hook function itself (which holds the cells) is not reachable.
  Every builtin the hook needs is captured at install time. The only events raised while the hook
  runs (``sys._getframe``, ``object.__getattr__`` of ``f_code``) are not ones it handles, so it
  re-enters at most one level and returns at once; it keeps no re-entrancy flag (a flag would be
  state a learner could flip).
* **Python functions** (the package's, ``torch.nn.functional.multi_head_attention_forward``,
  ``torch.nn.MultiheadAttention.forward``, ``torch.nn.functional.unfold``, ...) are rewritten in
  place: ``fn.__code__`` becomes the function's own source compiled with one first statement,
  ``sys.audit("selfattn_course.tripwire", "<name>")``, where ``sys.audit`` is a constant of the
  code object (not a global a learner could rebind). The function object stays the same, so
  every alias, ``from x import f`` and bound method sees the wire; line numbers and file name are
  the original ones. No copy of the original code is kept. Assigning ``__code__`` of a wired
  function afterwards is refused, and so is executing again the module file of a wired function
  (``importlib.reload``, or deleting it from ``sys.modules`` and importing it again).
* **C builtins and aten operators** (``torch.nn.functional.scaled_dot_product_attention``,
  ``torch.conv1d``, ``torch.convolution``, ...) are reachable through too many aliases
  (``torch._C._nn``, ``torch.ops.aten``, ``nn.MultiheadAttention``'s fast path), so the
  *operators* are wired in torch's dispatcher: for every operator of the name's family (below)
  and every dispatch key where it has a computing kernel (CPU and other CPU backends, the
  Composite alias keys), a Python kernel replaces the original. The kernel raises the tripwire
  audit event; when the hook allows the call, ``scaled_dot_product_attention`` and its math and
  CPU-flash variants are computed in plain ops (:func:`_sdpa_plain`), every other wired operator
  trips even then (its original kernel is not kept anywhere: a learner could call it). The
  kernels' code holds only constants (``sys.audit``, the operator's name, the fallback). The
  library handle that owns the registrations is created with ``torch._C._dispatch_library``
  (not ``torch.library.Library``, whose ``weakref.finalize`` sits in a module-level registry
  from which anyone could destroy it) and is leaked with one extra reference count, so nothing
  in Python refers to it and it is never collected (collecting it would deregister the kernels).

Families (a dotted name of ``torch`` is mapped by its spelling):

* attention (a name containing ``attention``): every aten operator whose name contains
  ``attention`` or ``_transformer_encoder_layer`` (forward and backward: a backward kernel can
  compute attention too), plus ``torch.nn.functional.multi_head_attention_forward`` (with
  ``need_weights=True`` it computes attention with plain ops) and flex attention's dense
  implementation.
* conv (a name containing ``conv``): every operator of ``aten``, ``mkldnn``, ``onednn``,
  ``quantized``, ``_quantized``, ``mkldnn_prepacked`` whose name contains ``conv`` (not
  ``convert``), backward included (``convolution_backward`` computes a correlation).
* fold (``unfold``, ``fold``, ``im2col``, ``col2im``): the aten operators ``im2col``/``col2im``
  and their Python decompositions in ``torch._decomp``.
* softmax: ``torch.nn.functional.softmax`` (Python) is rewritten; ``torch.softmax`` and
  ``Tensor.softmax`` (builtins) are NOT wired: softmax is used everywhere (attention references,
  losses), wiring the operator would break the kernel. They stay with the weaker in-kernel
  watcher (:func:`selfattn_course.grading.verdicts.forbid.forbid_calls`).

Scopes: the grader's ``hand_over`` calls :func:`begin` when it starts handing a task over and
:func:`end` when done. Both raise the audit event ``selfattn_course.scope``; the hook accepts it
only when the caller is the real :func:`begin`/:func:`end` called directly from the body of the
``hand_over`` given to :func:`install` (code object and globals compared), only for the next task
of ``order`` not yet begun or a later one, and never while another scope is open. A call of a
wired function is allowed iff a scope is open and some frame of the current stack runs the code
of a function provided to that task (a provided builtin of a family allows that family during
the scope).

Policy after install (capabilities, not tricks): starting a fresh interpreter is refused
(``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``, ``os.spawn*``, ``os.system``, and
``_posixsubprocess.fork_exec``, which multiprocessing calls without an audit event, is replaced
by a stub that raises); ``os.fork`` is allowed, the child is a copy of this process with its hook
and dispatcher. ``gc.get_objects``/``get_referrers``/``get_referents`` are refused (they reach
the hook's cells and the library handle). ``sys.settrace`` is refused: a trace function can jump
over the tripwire line (``frame.f_lineno``) and rewrite frame locals. ``sys.setprofile`` stays
allowed (the in-kernel watcher uses it): profile functions cannot jump, and the frames they see
hold nothing that gates a wire.

Out of scope: native memory access (``ctypes``, ``/proc/self/mem``, loading an extension module
by hand) can do anything inside the process; the sandbox around the kernel is the boundary there.
Re-executing a copy of a wired function's source or code object is writing it by hand.
"""

from __future__ import annotations

import ast
import ctypes
import errno
import importlib
import inspect
import math
import re
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from selfattn_course.grading.names import python_function, resolve

#: Audit event raised by a wired function or operator; its argument is the wire's name.
TRIPWIRE_EVENT = "selfattn_course.tripwire"
#: Audit event raised by :func:`begin` / :func:`end`.
SCOPE_EVENT = "selfattn_course.scope"
_NO_FALLBACK_EVENT = "selfattn_course.tripwire.no_fallback"
_PLACEHOLDER = "__selfattn_course_tripwire_placeholder__"
_PLACEHOLDER_2 = "__selfattn_course_tripwire_placeholder_2__"

#: Dispatch keys whose kernels compute values (Meta and Autograd kernels only compute shapes or
#: redispatch to these).
_COMPUTE_KEYS = (
    "CompositeImplicitAutograd",
    "CompositeExplicitAutograd",
    "CompositeExplicitAutogradNonFunctional",
    "CPU",
    "QuantizedCPU",
    "SparseCPU",
    "SparseCsrCPU",
    "MkldnnCPU",
    "NestedTensorCPU",
    "CUDA",
    "QuantizedCUDA",
    "SparseCUDA",
    "NestedTensorCUDA",
    "MPS",
    "XPU",
)
_CONV_NAMESPACES = ("aten", "mkldnn", "onednn", "quantized", "_quantized", "mkldnn_prepacked")
_FAMILY_PYTHON: dict[str, tuple[tuple[str, str], ...]] = {
    "attention": (
        ("torch.nn.functional", "multi_head_attention_forward"),
        ("torch._higher_order_ops.flex_attention", "math_attention"),
        ("torch._higher_order_ops.flex_attention", "sdpa_dense_backward"),
    ),
    "conv": (),
    "fold": (
        ("torch._decomp.decompositions", "im2col"),
        ("torch._decomp.decompositions", "col2im"),
    ),
}
_PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile"}
)
_GC_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})


class Tripped(RuntimeError):
    """A wired function was called where it is unavailable; the message says which and why."""


class Refused(RuntimeError):
    """The tripwires refused an operation (a scope event, a capability that would undo them)."""


class NoNewProcess(PermissionError):
    """Starting a program was refused. An ``OSError`` (``EPERM``), as when the program cannot be
    run: libraries that try a helper program and carry on without it (matplotlib asks
    ``fc-list`` for fonts on its first import) keep working."""


def begin(task_id: str) -> None:
    """Open ``task_id``'s scope; only counts when called directly by the installed hand-over."""
    sys.audit(SCOPE_EVENT, "begin", task_id)


def end(task_id: str) -> None:
    """Close ``task_id``'s scope; only counts when called directly by the installed hand-over."""
    sys.audit(SCOPE_EVENT, "end", task_id)


def _family(name: str) -> str | None:
    """The dispatcher family a dotted ``torch`` name belongs to (None: not a torch family)."""
    if not name.startswith("torch."):
        return None
    lowered = name.lower()
    if "softmax" in lowered:
        return "softmax"
    if "attention" in lowered:
        return "attention"
    if "fold" in lowered or "im2col" in lowered or "col2im" in lowered:
        return "fold"
    if re.search(r"conv(?!ert)", lowered):
        return "conv"
    return None


def _family_ops(family: str) -> list[str]:
    """The operators (``ns::name.overload``) of a family registered in this torch."""
    ops = []
    for op in torch._C._dispatch_get_all_op_names():
        ns, _, name = op.partition("::")
        if family == "attention":
            hit = ns == "aten" and ("attention" in name or "_transformer_encoder_layer" in name)
        elif family == "conv":
            hit = ns in _CONV_NAMESPACES and re.search(r"conv(?!ert)", name) is not None
        elif family == "fold":
            hit = ns == "aten" and ("im2col" in name or "col2im" in name)
        else:
            hit = False
        if hit:
            ops.append(op)
    return sorted(ops)


def _replace_consts(code: types.CodeType, table: Mapping[str, Any]) -> types.CodeType:
    consts = tuple(
        table[c] if type(c) is str and c in table else c  # noqa: E721 - exact str only
        for c in code.co_consts
    )
    return code.replace(co_consts=consts)


def _wired_code(fn: types.FunctionType, name: str) -> types.CodeType:
    """``fn``'s source compiled with the tripwire statement first (see the module docstring)."""
    code = fn.__code__
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, (ast.FunctionDef, ast.AsyncFunctionDef)) or fdef.name != fn.__name__:
        raise ValueError(f"cannot wire {name}: its source is not a plain def")
    prefix = ast.parse(f"{_PLACEHOLDER!r}({TRIPWIRE_EVENT!r}, {name!r})").body[0]
    first = fdef.body[0]
    has_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    for node in ast.walk(prefix):
        if hasattr(node, "lineno"):
            node.lineno = node.end_lineno = fdef.lineno
            node.col_offset, node.end_col_offset = 0, 1
    fdef.body.insert(1 if has_doc else 0, prefix)
    # Enclose in a function that defines the original free variables, so that they stay free.
    cells = [
        ast.Assign(targets=[ast.Name(v, ast.Store())], value=ast.Constant(None), lineno=1)
        for v in code.co_freevars
    ]
    if fdef.name not in code.co_freevars:  # the def must not make its own name a closure
        cells.insert(0, ast.Global(names=[fdef.name], lineno=1))
    outer = ast.FunctionDef(
        name="__tripwire_outer__",
        args=ast.arguments([], [], None, [], [], None, []),
        body=[*cells, fdef],
        decorator_list=[],
        returns=None,
        lineno=1,
    )
    module = ast.Module(body=[outer], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, code.co_firstlineno - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        compiled = compile(module, code.co_filename, "exec", dont_inherit=True)
    outer_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    new = next(
        c
        for c in outer_code.co_consts
        if isinstance(c, types.CodeType) and c.co_name == code.co_name
    )
    same = ("co_freevars", "co_varnames", "co_names", "co_argcount", "co_kwonlyargcount")
    for attribute in (*same, "co_posonlyargcount", "co_firstlineno", "co_filename"):
        if getattr(new, attribute) != getattr(code, attribute):
            raise ValueError(
                f"cannot wire {name}: recompiled {attribute} differs from the original"
            )
    return _replace_consts(new, {_PLACEHOLDER: sys.audit}).replace(co_qualname=code.co_qualname)


def _scores(query, key, attn_mask, is_causal, scale):
    """``(..., Lq, Lk)`` scaled scores ``q kᵀ · scale`` (default ``1/sqrt(E)``); pairs a boolean
    mask forbids (True = may attend) or the top-left causal mask hides are ``-inf``, a float mask
    is added."""
    factor = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * factor
    if is_causal:
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores


def _attend(scores, value, dropout_p):
    """``softmax(scores) v`` and the weights; a row with no allowed key gives zeros (torch's math
    backend does the same)."""
    weights = torch.softmax(scores, dim=-1)
    nothing = torch.isneginf(scores).all(dim=-1, keepdim=True)
    weights = torch.where(nothing, torch.zeros((), dtype=weights.dtype), weights)
    if dropout_p > 0.0:
        weights = torch.dropout(weights, dropout_p, True)
    return torch.matmul(weights, value), weights


def _sdpa_plain(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None,
    enable_gqa=False,
):  # fmt: skip
    """``scaled_dot_product_attention`` in plain ops (torch's documented semantics).

    ``attn_mask``: boolean (True = may attend) or additive float; ``is_causal``: top-left
    aligned lower triangle; ``scale`` defaults to ``1/sqrt(E)``; ``enable_gqa`` repeats each key
    and value head for its group of query heads. Rows with no allowed key give zeros.
    """
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: attn_mask must be None when is_causal")
    if enable_gqa and key.dim() >= 3 and key.size(-3) != query.size(-3):
        key = key.repeat_interleave(query.size(-3) // key.size(-3), -3)
        value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
    return _attend(_scores(query, key, attn_mask, is_causal, scale), value, dropout_p)


def _sdpa_kernel(*args, **kwargs):
    return _sdpa_plain(*args, **kwargs)[0]


def _sdpa_math_kernel(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, dropout_mask=None, *,
    scale=None, enable_gqa=False,
):  # fmt: skip
    if dropout_mask is not None:
        raise RuntimeError("tripwire fallback: dropout_mask is not supported")
    return _sdpa_plain(
        query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa
    )


def _flash_cpu_kernel(
    query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None
):
    """The CPU flash operator's results: the output and each row's log-sum-exp (float32)."""
    scores = _scores(query, key, attn_mask, is_causal, scale)
    out, _ = _attend(scores, value, dropout_p)
    return out, torch.logsumexp(scores, dim=-1).float()


_FALLBACKS: dict[str, Callable[..., Any]] = {
    "aten::scaled_dot_product_attention": _sdpa_kernel,
    "aten::_scaled_dot_product_attention_math": _sdpa_math_kernel,
    "aten::_scaled_dot_product_flash_attention_for_cpu": _flash_cpu_kernel,
}

_KERNEL_SOURCE = f"""
def kernel(*args, **kwargs):
    {_PLACEHOLDER!r}({TRIPWIRE_EVENT!r}, {_PLACEHOLDER_2!r})
    return {_PLACEHOLDER_2 + "_fallback"!r}(*args, **kwargs)

def kernel_no_fallback(*args, **kwargs):
    {_PLACEHOLDER!r}({TRIPWIRE_EVENT!r}, {_PLACEHOLDER_2!r})
    {_PLACEHOLDER!r}({_NO_FALLBACK_EVENT!r}, {_PLACEHOLDER_2!r})
"""


def _make_kernel(op: str) -> Callable[..., Any]:
    """A dispatcher kernel for ``op`` whose code holds only constants."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        module = compile(_KERNEL_SOURCE, "<selfattn_course tripwire>", "exec")
    codes = {c.co_name: c for c in module.co_consts if isinstance(c, types.CodeType)}
    fallback = _FALLBACKS.get(op.split(".")[0])
    template = codes["kernel" if fallback is not None else "kernel_no_fallback"]
    table = {_PLACEHOLDER: sys.audit, _PLACEHOLDER_2: op, _PLACEHOLDER_2 + "_fallback": fallback}
    code = _replace_consts(template, table).replace(co_name=op.replace("::", "_").replace(".", "_"))
    return types.FunctionType(code, {"__builtins__": {}}, code.co_name)


def _stub_fork_exec(*args: Any, **kwargs: Any) -> Any:
    raise NoNewProcess(
        errno.EPERM, "starting a new process is unavailable while this notebook is graded"
    )


def _message(name: str, tasks: Sequence[str], via: str | None = None) -> str:
    listing = ", ".join(tasks)
    what = f"{name} (via {via})" if via else name
    return (
        f"{what} is unavailable while this notebook is graded: task(s) {listing} ask for it "
        "to be written from scratch"
    )


def install(
    *,
    forbidden: Mapping[str, Sequence[str]],
    order: Sequence[str],
    provided: Mapping[str, Sequence[str]],
    hand_over: Callable[..., Any],
) -> None:
    """Wire every name of ``forbidden`` for the rest of the process (see the module docstring).

    Args:
        forbidden: dotted name -> ids of the tasks that forbid it.
        order: the notebook's task ids in the order their hand-overs must happen.
        provided: task id -> dotted names of the functions provided to it, whose frames may call
            wired functions while that task's scope is open.
        hand_over: the grader's hand-over function; only its own body may call :func:`begin`
            and :func:`end`.

    Raises:
        ValueError: a name cannot be wired (a builtin outside the known families, a function
            whose source does not recompile to the same shape).
    """
    hand_over_fn = python_function(hand_over)
    if hand_over_fn is None:
        raise ValueError("hand_over must be a Python function")
    wired: list[Any] = [hand_over_fn, python_function(begin), python_function(end)]
    messages: dict[str, str] = {}
    families: dict[str, list[str]] = {}
    family_tasks: dict[str, list[str]] = {}
    python_names: dict[str, tuple[types.FunctionType, list[str]]] = {}

    for name, tasks in forbidden.items():
        tasks = [str(t) for t in tasks]
        family = _family(name)
        target = resolve(name)
        fn = python_function(target)
        if fn is None and family in (None, "softmax"):
            if family == "softmax":
                continue  # documented: torch.softmax / Tensor.softmax stay with the watcher
            raise ValueError(f"cannot wire builtin {name}: it belongs to no known family")
        if fn is not None:
            python_names[name] = (fn, tasks)
        if family not in (None, "softmax"):
            families.setdefault(family, []).append(name)
            for task in tasks:
                if task not in family_tasks.setdefault(family, []):
                    family_tasks[family].append(task)

    for family, names in families.items():
        for module_name, attribute in _FAMILY_PYTHON[family]:
            fn = python_function(getattr(importlib.import_module(module_name), attribute))
            dotted = f"{module_name}.{attribute}"
            if fn is not None and dotted not in python_names:
                python_names[dotted] = (fn, family_tasks[family])
                messages[dotted] = _message(names[0], family_tasks[family], dotted)

    seen_functions: set[int] = set()
    wired_files: set[str] = set()
    for name, (fn, tasks) in python_names.items():
        messages.setdefault(name, _message(name, tasks))
        if id(fn) in seen_functions:
            continue
        seen_functions.add(id(fn))
        wired_files.add(fn.__code__.co_filename)
        fn.__code__ = _wired_code(fn, name)
        wired.append(fn)

    ops: dict[str, str] = {}
    op_family: dict[str, str] = {}
    for family, names in families.items():
        for op in _family_ops(family):
            ops[op] = _message(names[0], family_tasks[family], op)
            op_family[op] = family
    if ops:
        library = torch._C._dispatch_library("IMPL", "aten", "", __file__, 0)
        libraries = {"aten": library}
        for op, message in ops.items():
            ns, _, rest = op.partition("::")
            if ns not in libraries:
                libraries[ns] = torch._C._dispatch_library("IMPL", ns, "", __file__, 0)
            keys = [
                k for k in _COMPUTE_KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(op, k)
            ]
            if not keys:
                continue
            kernel = _make_kernel(op)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "overriding a registered kernel"
                for key in keys:
                    libraries[ns].impl(rest, key, kernel, False)
            messages[op] = message
        for handle in libraries.values():  # leaked on purpose: see the module docstring
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(handle))
        del library, libraries, handle

    provided_codes: dict[str, frozenset[types.CodeType]] = {}
    provided_families: dict[str, frozenset[str]] = {}
    for task, names in provided.items():
        codes, fams = set(), set()
        for name in names:
            fn = python_function(resolve(name))
            if fn is not None:
                codes.add(fn.__code__)
            elif _family(name) in families:
                fams.add(_family(name))
        provided_codes[str(task)] = frozenset(codes)
        provided_families[str(task)] = frozenset(fams)

    _seal(
        messages=types.MappingProxyType(dict(messages)),
        op_family=types.MappingProxyType(op_family),
        order=tuple(str(t) for t in order),
        provided_codes=types.MappingProxyType(provided_codes),
        provided_families=types.MappingProxyType(provided_families),
        hand_over_code=hand_over_fn.__code__,
        hand_over_globals=hand_over_fn.__globals__,
        begin_code=begin.__code__,
        end_code=end.__code__,
        wired_ids=frozenset(id(f) for f in wired),
        wired_files=frozenset(wired_files),
    )


def _seal(
    *,
    messages,
    op_family,
    order,
    provided_codes,
    provided_families,
    hand_over_code,
    hand_over_globals,
    begin_code,
    end_code,
    wired_ids,
    wired_files,
) -> None:
    """Stub the process primitives and add the audit hook (the last step of :func:`install`)."""
    import _posixsubprocess
    import subprocess

    _posixsubprocess.fork_exec = _stub_fork_exec
    subprocess._fork_exec = _stub_fork_exec  # type: ignore[attr-defined]

    getframe = sys._getframe
    identity = id
    code_type = types.CodeType
    str_type = str
    tripped = Tripped
    refused = Refused
    no_new_process = NoNewProcess
    eperm = errno.EPERM
    position = {task: index for index, task in enumerate(order)}
    position = types.MappingProxyType(position)
    process_events = _PROCESS_EVENTS
    gc_events = _GC_EVENTS
    open_task: str | None = None
    next_index = 0
    empty = frozenset()

    def hook(event, args):
        nonlocal open_task, next_index
        if event == TRIPWIRE_EVENT:
            name = args[0]
            if open_task is not None:
                codes = provided_codes.get(open_task, empty)
                frame = getframe(1)
                while frame is not None:
                    if frame.f_code in codes:
                        return
                    frame = frame.f_back
                if op_family.get(name) in provided_families.get(open_task, empty):
                    return
            raise tripped(messages.get(name, name))
        if event == _NO_FALLBACK_EVENT:
            raise tripped(
                f"{args[0]} is wired and has no plain-ops fallback, so it cannot be called "
                "even by a provided function while this notebook is graded"
            )
        if event == SCOPE_EVENT:
            if len(args) != 2:
                raise refused("malformed scope event")
            action, task = args[0], args[1]
            caller = getframe(1)
            outer = caller.f_back
            expected = begin_code if action == "begin" else end_code
            if (
                type(task) is not str_type
                or caller.f_code is not expected
                or outer is None
                or outer.f_code is not hand_over_code
                or outer.f_globals is not hand_over_globals
            ):
                raise refused("task scopes are opened and closed only by the grader's hand-over")
            if action == "begin":
                if open_task is not None:
                    raise refused(f"cannot begin {task}: the scope of {open_task} is open")
                index = position.get(task)
                if index is None or index < next_index:
                    raise refused(f"cannot begin {task}: not a later task of this notebook")
                open_task, next_index = task, index + 1
            else:
                if open_task != task:
                    raise refused(f"cannot end {task}: it is not the open scope")
                open_task = None
            return
        if event == "object.__setattr__":
            if identity(args[0]) in wired_ids and type(args[1]) is str_type:
                raise refused(f"{args[1]} of a wired function cannot be changed")
            return
        if event == "exec":
            code = args[0]
            if type(code) is code_type and code.co_filename in wired_files:
                raise refused("a module of a wired function cannot be executed again")
            return
        if event == "import":
            if args[0] == "_posixsubprocess":
                raise refused("_posixsubprocess cannot be imported again")
            return
        if event in process_events:
            raise no_new_process(eperm, f"{event} is unavailable while this notebook is graded")
        if event in gc_events:
            raise refused(f"{event} is unavailable while this notebook is graded")
        if event == "sys.settrace":
            raise refused("sys.settrace is unavailable while this notebook is graded")

    sys.addaudithook(hook)
