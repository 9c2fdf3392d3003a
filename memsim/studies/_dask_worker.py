"""Preloaded by the workers of memsim's local Dask cluster: they ignore Ctrl-C.

Ctrl-C in a terminal reaches the whole process group. Only the main process of a study
run should react to it (stop submitting, cancel, close the cluster); a worker killed by it
would turn its point into a failure. Distributed imports this module in each worker
process as it starts (``LocalCluster(preload=[...])``).
"""

from __future__ import annotations

import signal
import threading

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker: object) -> None:
    """Nothing more to set up (the module import did it)."""
