"""The chip's hardware as small SimPy classes: cores, links, the global digital unit.

Each class owns its SimPy resources and offers generator methods that a process yields
from; the scheduler (:mod:`memsim.chip.sim`) composes them. Their timelines are tested on
hand-computed scenarios in ``tests/test_chip_units.py``, in the style of SimPy's own tests::

    env = simpy.Environment(); core = Core(env, 0)
    env.process(job(env, core, log)); env.run()
    assert log == [("core0", 0.0, 133e-9)]

Streams. Outputs of an MVM leave the local digital unit one value per LDPU cycle; a value
can cross a link, and be added to the next core's partial sums, before the last value of
the vector exists. A :class:`Signal` pair (first value, last value) describes such a stream;
a stage that handles a stream of n values at t per value, starting at t0, delivers its
first value at t0 + t and its last at max(t0 + n·t, last input + t) (exact for inputs that
arrive at a steady rate; the fluid limit otherwise).
"""

from __future__ import annotations

from typing import Any

import simpy

__all__ = ["Core", "GlobalUnit", "Link", "Signal", "fire_at", "pipeline_time", "reserve",
           "transfer"]


def pipeline_time(n: int, a: float, d: float) -> float:
    """n MVMs through the array (a each) and then the local digital unit (d each),
    pipelined: a + d + (n − 1)·max(a, d)."""
    if n <= 0:
        return 0.0
    return a + d + (n - 1) * max(a, d)


class Signal:
    """A one-shot event that remembers the simulated time it fired."""

    __slots__ = ("env", "event", "time")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.event = env.event()
        self.time: float | None = None

    def fire(self) -> None:
        self.time = self.env.now
        self.event.succeed()

    @property
    def fired(self) -> bool:
        return self.time is not None


def fire_at(env: simpy.Environment, signal: Signal, t: float):
    """Process: fire ``signal`` at time ``t`` (now, if ``t`` is past)."""
    if t > env.now:
        yield env.timeout(t - env.now)
    signal.fire()


class Core:
    """One core: its array with converters (``unit``, one job at a time, older inferences
    first) and its local digital unit (``ldpu``, used per MVM in the exact mode)."""

    def __init__(self, env: simpy.Environment, index: int, *, exact: bool = False) -> None:
        self.env = env
        self.index = index
        self.exact = exact
        self.unit = simpy.PriorityResource(env, 1)
        self.ldpu = simpy.Resource(env, 1)
        self.busy_s = 0.0

    @property
    def name(self) -> str:
        return f"core{self.index}"

    def _post(self, d: float):
        with self.ldpu.request() as req:
            yield req
            yield self.env.timeout(d)

    def mvms(self, n: int, a: float, d: float):
        """Process body: ``n`` MVMs of ``a`` seconds on the array, each post-processed for
        ``d`` seconds by the local unit. Exact mode: one event per MVM and per
        post-processing; burst mode: one timeout of :func:`pipeline_time`."""
        if n <= 0:
            return
        if not self.exact:
            yield self.env.timeout(pipeline_time(n, a, d))
            return
        last = None
        for _ in range(n):
            yield self.env.timeout(a)
            last = self.env.process(self._post(d))
        yield last


class GlobalUnit:
    """The global digital unit (all its slices work on one node at a time)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.unit = simpy.PriorityResource(env, 1)
        self.busy_s = 0.0


class Link:
    """One directed link (or an off-chip port): one message at a time, in the order they ask.

    A message reserves all links of its route at once, from the time the last of them is
    free, for bytes / bandwidth (first come, first served, no back-filling of idle gaps):
    the same timeline as holding each link as a SimPy resource, with one event per message
    instead of one per link.
    """

    def __init__(self, env: simpy.Environment, name: str, bandwidth_Bps: float) -> None:
        self.env = env
        self.name = name
        self.bandwidth_Bps = bandwidth_Bps
        self.free_at = 0.0
        self.bytes = 0.0


def _fire_later(env: simpy.Environment, signal: Signal, t: float) -> None:
    """Fire ``signal`` at time ``t`` (now, if past) with one timeout event, no process."""
    ev = env.timeout(max(0.0, t - env.now))
    ev.callbacks.append(lambda _: signal.fire())


def reserve(links: list[Link], nbytes: float, now: float,
            elements: int = 1) -> tuple[float, float, float]:
    """Reserve ``links`` for ``nbytes`` from ``now``: returns (start, end, time per value);
    the links carry the bytes at the slowest link's bandwidth from the time the last of them
    is free."""
    if not links:
        return now, now, 0.0
    bw = min(link.bandwidth_Bps for link in links)
    dur = nbytes / bw
    t0 = max(now, max(link.free_at for link in links))
    for link in links:
        link.free_at = t0 + dur
        link.bytes += nbytes
    return t0, t0 + dur, nbytes / max(1, elements) / bw


def transfer(env: simpy.Environment, links: list[Link], nbytes: float, latency_s: float,
             *, elements: int = 1, source_last: Signal | None = None,
             first: Signal | None = None, last: Signal | None = None,
             log: list | None = None, label: str = "") -> Any:
    """Process body: move ``nbytes`` over ``links`` (all of them reserved together).

    The links carry the bytes at the slowest link's bandwidth and are busy for
    nbytes / bandwidth from the time the last of them is free; the data arrives
    ``latency_s`` later (hops · hop latency, plus the off-chip latency). For a stream
    (``source_last`` given) the source is still producing its ``elements`` values: the
    last one arrives ``latency_s`` after max(links free, source's last value + one value's
    transfer time). ``first`` and ``last`` fire when the first and the last value arrive.
    """
    t_wait = env.now
    t0, t_end, per = reserve(links, nbytes, t_wait, elements)
    if first is not None:
        _fire_later(env, first, t0 + latency_s + per)
    if source_last is not None:
        if not source_last.fired:
            yield source_last.event
        t_end = max(t_end, source_last.time + per)
    t_arrive = t_end + latency_s
    if t_arrive > env.now:
        yield env.timeout(t_arrive - env.now)
    if log is not None:
        log.append((label, t_wait, t0, env.now))
    if last is not None:
        last.fire()
