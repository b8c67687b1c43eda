"""Lazy exports of a package (PEP 562): ``import shattering`` (or ``shattering.runs``, ``shattering.data`` ...)
imports none of the modules behind the names it exports until a name is first used, so that ``shatter --help``
and ``shatter runs`` start without torch and scikit-learn. ``from package import name``, ``package.name``,
``__all__`` and ``dir(package)`` work as the eager ``from .module import name`` did."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any


class LazyPackage(types.ModuleType):
    """A package whose exports (``_lazy_exports``: name -> the submodule that defines it) load on first use."""

    def __getattr__(self, name: str) -> Any:  # PEP 562: only for names the package does not hold yet
        where = vars(self).get("_lazy_exports", {}).get(name)
        if where is not None:
            value = getattr(importlib.import_module(where, self.__name__), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            value = importlib.import_module(f"{self.__name__}.{name}")  # a submodule, as the eager imports left it
        else:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        setattr(self, name, value)  # kept: later lookups find it without coming here
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule named as one of the package's exports (experiments/expressivity.py) sets the
        # package's attribute to the submodule; the export is kept, as `from .expressivity import expressivity` did.
        if (isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
                and vars(self).get("_lazy_exports", {}).get(name) == f".{name}"):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(vars(self).get("_lazy_exports", {})))


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]) -> list[str]:
    """Make ``package`` (its ``__name__``) import the names of ``exports`` (relative submodule, ``".config"`` ->
    its names) when first used; returns the names, for the package's ``__all__``."""
    module = sys.modules[package]
    names = {name: where for where, those in exports.items() for name in those}
    module.__class__ = LazyPackage
    module._lazy_exports = names
    return list(names)


class LazyModule(types.ModuleType):
    """A module imported when one of its attributes is first read (:func:`lazy_import`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__name__), name)


def lazy_import(name: str) -> types.ModuleType:
    """Module ``name`` (``"torch"``, ``"torch.nn.functional"``), imported when first used: ``torch =
    lazy_import("torch")`` at the top of a module whose functions alone use torch lets the module be imported
    without it (Python 3.15 spells it ``lazy import torch``, PEP 810). ``"torch" in sys.modules`` stays false until
    then, as :mod:`shattering._openmp` needs."""
    return LazyModule(name)
