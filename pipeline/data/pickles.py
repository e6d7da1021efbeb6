"""Reading pickles without running them: only numpy arrays, dtypes, scalars and builtin containers.

A pickle is a program: `pickle.load` calls whatever globals it names (`os.system` included). The
importers read the MMSA, MAG-BERT and MISA pickles with `load_pickle`, whose unpickler resolves only the
globals numpy data needs, under numpy 1.x (`numpy.core`) and 2.x (`numpy._core`) names, and refuses any
other before it is called.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import DataError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as protocol-2 pickles use it (bytes written as latin-1 text), and only that."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding '{encoding}' (only latin-1 is admitted)")
    return text.encode("latin-1")


# Globals a pickle of numpy arrays needs: array, dtype and scalar reconstruction under numpy 1.x
# (`numpy.core`) and 2.x (`numpy._core`) names, protocol 5's buffer reconstruction, the builtin containers
# that protocols 0-3 name as globals (lists, tuples and dicts have opcodes), and protocol 2's bytes.
_ALLOWED: dict[tuple[str, str], Any] = {
    **{
        (f"{package}.multiarray", "_reconstruct"): _multiarray._reconstruct
        for package in ("numpy.core", "numpy._core")
    },
    **{(f"{package}.multiarray", "scalar"): _multiarray.scalar for package in ("numpy.core", "numpy._core")},
    **{
        (f"{package}.numeric", "_frombuffer"): _numeric._frombuffer
        for package in ("numpy.core", "numpy._core")
    },
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{("builtins", kind.__name__): kind for kind in (set, frozenset, bytes, bytearray)},
    ("_codecs", "encode"): _latin1,
}


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a global outside `_ALLOWED`; the message is its dotted name."""


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in `_ALLOWED`: data, never code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_pickle(path: Path) -> Any:
    """Unpickle `path` admitting only numpy arrays, dtypes, scalars and builtin containers.

    Anything else (a class, a function such as `os.system`) is refused before it runs: `DataError`.
    """
    try:
        with open(path, "rb") as handle:
            # latin-1 reads Python 2 pickles of numpy arrays (their data are `str`) byte for byte.
            return _SafeUnpickler(handle, encoding="latin1").load()
    except _Refused as err:
        raise DataError(
            f"{path}: refused to unpickle: it asks for the global '{err}'; only numpy arrays, dtypes, "
            "scalars and builtin containers are admitted (pickles can run code)"
        ) from None
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: not a readable pickle ({err})") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as err:
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err
