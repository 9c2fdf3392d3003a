"""Returning freed memory to the operating system after large transient work.

glibc raises its mmap threshold as large blocks are freed, so the many megabyte-sized
temporaries of programming a large model stay in the heap after they are freed and keep the
process's resident size up (the measurement is in ``benchmarks/README.md``).
``malloc_trim(0)`` hands them back. Elsewhere (other C libraries, other systems) this does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory"]


@functools.lru_cache(maxsize=1)
def _trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give memory the heap holds but does not use back to the operating system."""
    trim = _trim()
    if trim is not None:
        trim(0)
