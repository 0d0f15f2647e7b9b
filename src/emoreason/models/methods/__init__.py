"""Training recipes: the contract (:mod:`.base`) and one file per method family.

Each ``conf/method/<name>.yaml`` names one class of this folder as its ``_target_``; nothing else lists
them: :func:`method_targets` finds them from the folder, for the stored-config allow-list of checkpoints.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from emoreason.models.methods.base import Method


def method_targets() -> frozenset[str]:
    """``module.Class`` of every runnable method in this folder: a :class:`Method` subclass with a ``name``.

    Every module here is imported (they are this package's code). Bases such as ``GenerativeMethod``, which
    leave ``name`` unset, are not runnable and are left out.
    """
    found = set()
    for info in pkgutil.iter_modules(__path__, f"{__name__}."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Method) and hasattr(cls, "name"):
                found.add(f"{cls.__module__}.{cls.__qualname__}")
    return frozenset(found)
