"""The pack's errors as the ComfyUI front end shows them: short type name, then what to do.

ComfyUI reports a node's exception as ``exception_type`` + ``exception_message``; the type is the
class's module path plus its name, except for built-in classes, which are named alone
(execution.full_type_name, 0.3.64 and 0.28). A CheckpointError raised from this pack is therefore
named after the pack's install folder, e.g. ``custom_nodes.ComfyUI-HeartMuLa.heartmula_core.errors.
CheckpointError``: that fills the red toast, cut off, and the message that says which folder is
missing and which command fetches it is one click further. ComfyUI's own nodes raise built-in
types, whose toast reads ``ValueError: <message>``.

So every pack node re-raises a HeartMuLaError as an instance of a subclass of the same class that
claims the ``builtins`` module: ComfyUI names it ``CheckpointError`` and the toast reads
``CheckpointError: HeartMuLa checkpoint folder ... does not exist. Download it with: ...``.
It is still a CheckpointError (and a HeartMuLaError): callers and tests catch it as before.
"""

from __future__ import annotations

import functools
import inspect

from ..heartmula_core.errors import HeartMuLaError

WRAPPED_METHODS = ("execute", "fingerprint_inputs", "validate_inputs")
_host_classes: dict[type, type] = {}


def host_class(cls: type) -> type:
    """A subclass of ``cls`` that ComfyUI names by its class name alone (one per class)."""
    if cls.__module__ == "builtins":
        return cls
    made = _host_classes.get(cls)
    if made is None:
        made = type(cls.__name__, (cls,), {"__module__": "builtins", "__qualname__": cls.__name__,
                                           "__doc__": cls.__doc__})
        _host_classes[cls] = made
    return made


def for_host(exc: HeartMuLaError) -> HeartMuLaError:
    """The same error (same class family, same message) under a name ComfyUI prints in full."""
    if type(exc).__module__ == "builtins":
        return exc
    return host_class(type(exc))(*exc.args)


def _wrap(func):
    if getattr(func, "_heartmula_host_errors", False):
        return func
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def wrapper(cls, *args, **kwargs):
            try:
                return await func(cls, *args, **kwargs)
            except HeartMuLaError as exc:
                raise for_host(exc).with_traceback(exc.__traceback__) from None
    else:
        @functools.wraps(func)
        def wrapper(cls, *args, **kwargs):
            try:
                return func(cls, *args, **kwargs)
            except HeartMuLaError as exc:
                raise for_host(exc).with_traceback(exc.__traceback__) from None
    wrapper._heartmula_host_errors = True
    return wrapper


def readable_errors(node: type) -> type:
    """Class decorator (idempotent): the node's own execute / fingerprint_inputs / validate_inputs
    raise the pack's errors under host-readable names. Inherited placeholders are left alone, so
    ComfyUI still sees which hooks a node really defines."""
    for name in WRAPPED_METHODS:
        attr = node.__dict__.get(name)
        # already wrapped: a copy ComfyUI makes of a node class is locked against setattr
        if isinstance(attr, classmethod) and not getattr(attr.__func__, "_heartmula_host_errors", False):
            setattr(node, name, classmethod(_wrap(attr.__func__)))
    return node
