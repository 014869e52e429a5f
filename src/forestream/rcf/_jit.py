"""numba's ``njit`` and ``prange`` as the kernels use them, with types for mypy.

numba ships no type information, so to mypy ``njit`` is an untyped decorator that would
erase every kernel's signature. Type checkers see the declarations below instead: the
decorator returns the function it is given, unchanged in type, so each kernel's own
annotations describe its Python-callable wrapper. At run time this module only
re-exports numba's objects: the kernels compile exactly as with ``from numba import``.

For type checkers only, it also names the array types the kernels take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal, SupportsIndex, TypeAlias, TypeVar

    import numpy as np
    import numpy.typing as npt

    # the arrays the kernels take (see forestream.rcf._state.ForestState)
    Float64Array: TypeAlias = npt.NDArray[np.float64]
    Int32Array: TypeAlias = npt.NDArray[np.int32]
    Int64Array: TypeAlias = npt.NDArray[np.int64]
    UInt64Array: TypeAlias = npt.NDArray[np.uint64]
    BoolArray: TypeAlias = npt.NDArray[np.bool_]

    _F = TypeVar("_F", bound=Callable[..., Any])

    def njit(
        *,
        cache: bool = ...,
        parallel: bool = ...,
        nogil: bool = ...,
        inline: Literal["always", "never"] | Callable[..., bool] = ...,
    ) -> Callable[[_F], _F]:
        """``numba.njit(**options)``: compile the decorated function in nopython mode."""
        ...

    def prange(*args: SupportsIndex) -> range:
        """``numba.prange``: a ``range`` whose iterations may run in parallel."""
        ...

else:
    def _let_numba_find_print() -> None:
        """numba's import registers the builtin ``print`` by looking it up again in the
        module its ``__module__`` names. PyFlink's Python workers (where the RCF
        operators run on Flink) replace ``builtins.print`` with a method of a module that
        has no ``print``, and numba's import fails there: give that module the name."""
        import builtins
        import sys

        module = sys.modules.get(getattr(builtins.print, "__module__", None) or "")
        if module is not None and getattr(module, "print", None) is not builtins.print:
            module.print = builtins.print  # type: ignore[attr-defined]

    _let_numba_find_print()
    from numba import njit, prange

__all__ = ["njit", "prange"]
