"""The discrete-event scheduler (SimPy): inferences as processes on cores, links and units.

The hardware is the small classes of :mod:`memsim.chip.hardware`: every core a
:class:`~memsim.chip.hardware.Core` (its array, converters and local digital unit work for
one job at a time, older inferences and earlier bands first), the global digital unit a
:class:`~memsim.chip.hardware.GlobalUnit`, every directed link and off-chip port a
:class:`~memsim.chip.hardware.Link`. A message holds all links of its route (taken in one
global order, so no deadlock) for bytes / bandwidth and arrives hops · hop latency later.
Admission: at most ``in_flight`` inferences are in the chip at once; successive inferences
pipeline through the layers, and within one inference the bands of a layer stream.

Granularity of the MVMs of one job (n MVMs, array time a, local digital time d per MVM):
``"mvm"`` makes every MVM its own timeout on the array and its post-processing a separate
process on the core's local unit (the exact pipeline); ``"burst"`` makes one timeout of
a + d + (n − 1)·max(a, d), the closed form of that pipeline. Both give the same timeline.

Partial sums stream: a core's outputs leave from its first value on; the next core of the
chain adds them value by value (:func:`~memsim.chip.hardware.transfer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import simpy

from memsim._progress import progress
from memsim.chip.card import ChipConfig
from memsim.chip.hardware import Core, GlobalUnit, Link, Signal, reserve
from memsim.chip.plan import Plan
from memsim.errors import ConfigError, StateError

__all__ = ["GRANULARITIES", "SimResult", "default_in_flight", "simulate_plan"]

GRANULARITIES = ("burst", "mvm")


class _Env(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.events_ = 0

    def step(self) -> None:
        self.events_ += 1
        super().step()


@dataclass
class SimResult:
    """Raw outcome of one simulated run."""

    inferences: int
    t_start: list[float]
    t_done: list[float]
    makespan_s: float
    counts: dict[str, float]
    counts_by_layer: dict[str, dict[str, float]]
    busy_s: dict[int, float]  # physical core -> busy seconds
    gdu_busy_s: float
    layer_spans: dict[str, tuple[float, float]]  # first inference: layer -> (start, end)
    timeline: list[tuple[str, float, float, str]] = field(default_factory=list)
    transfers: list[tuple[str, str, float, float, float, str]] = field(default_factory=list)
    events: int = 0
    wall_s: float = 0.0


def default_in_flight(weight_layers: int) -> int:
    """Inferences admitted at once unless the caller says: one per weight layer, and 2."""
    return max(2, weight_layers + 2)


def simulate_plan(plan: Plan, cfg: ChipConfig, inferences: int, *, granularity: str = "burst",
                  in_flight: int | None = None, record: bool = True) -> SimResult:
    """Run ``inferences`` inferences of ``plan``; returns times, counts and busy times."""
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity = {granularity!r}; allowed: {list(GRANULARITIES)}")
    if not (isinstance(inferences, int) and not isinstance(inferences, bool)
            and inferences >= 1):
        raise ConfigError(f"inferences = {inferences!r} must be an integer >= 1")
    if in_flight is None:
        in_flight = default_in_flight(len(plan.layers))
    if not (isinstance(in_flight, int) and in_flight >= 1):
        raise ConfigError(f"in_flight = {in_flight!r} must be an integer >= 1")
    wall0 = time.perf_counter()
    env = _Env()
    exact = granularity == "mvm"
    ents, msgs = plan.entities, plan.messages
    cores = {c: Core(env, c, exact=exact) for c in plan.cores_used}
    gdu = GlobalUnit(env)
    links = [Link(env, n, bw) for n, bw in zip(plan.link_names, plan.link_bandwidth,
                                               strict=True)]
    tokens = simpy.Resource(env, in_flight)
    n_in0 = [e.n_in for e in ents]
    need: dict[int, list[int]] = {}
    token_req: dict[int, Any] = {}
    t_start = [0.0] * inferences
    t_done = [0.0] * inferences
    counts: dict[str, float] = {}
    by_layer: dict[str, dict[str, float]] = {}
    spans: dict[str, tuple[float, float]] = {}
    timeline: list[tuple[str, float, float, str]] = []
    transfers: list[tuple[str, str, float, float, float, str]] = []
    done_left = [inferences]
    done_sig: dict[tuple[int, int], Signal] = {}
    s_first: dict[tuple[int, int], Signal] = {}
    s_last: dict[tuple[int, int], Signal] = {}
    msg_counts = []
    for m in msgs:
        c = {"noc_byte_hop": m.nbytes * m.hops,
             "buffer_byte": m.nbytes * (2 - int(m.from_io) - int(m.to_io))}
        if m.offchip:
            c["offchip_byte"] = m.nbytes
        msg_counts.append([(k, v) for k, v in c.items() if v])
    ent_counts = [list(e.counts.items()) for e in ents]

    def sig(store: dict, key: tuple[int, int]) -> Signal:
        s = store.get(key)
        if s is None:
            s = store[key] = Signal(env)
        return s

    def add(items: list[tuple[str, float]], layer: str) -> None:
        mine = by_layer.setdefault(layer, {})
        for k, v in items:
            counts[k] = counts.get(k, 0.0) + v
            mine[k] = mine.get(k, 0.0) + v

    def span(layer: str, t0: float, t1: float) -> None:
        old = spans.get(layer)
        spans[layer] = (t0, t1) if old is None else (min(old[0], t0), max(old[1], t1))

    def arrive(i: int, e: int) -> None:
        left = need[i]
        left[e] -= 1
        if left[e] == 0:
            start(i, e)

    def start(i: int, e: int) -> None:
        if ents[e].kind in ("A", "G"):
            env.process(run_entity(i, e))
        else:  # inputs ready, host work (no chip time), inference done: no process
            finish(i, e)

    def first_output(i: int, e: int, own_first: float) -> None:
        """Start the entity's streams when its first output exists: its own first output,
        or the first incoming partial sum plus one local-unit cycle if that is later."""
        ent = ents[e]

        def go(t: float) -> None:
            env.timeout(max(0.0, t - env.now)).callbacks.append(
                lambda _: [send(i, m) for m in ent.stream_msgs])

        if ent.stream_in < 0:
            go(own_first)
            return
        f = sig(s_first, (i, ent.stream_in))
        if f.fired:
            go(max(own_first, f.time + ent.item_time_s))
        else:
            f.event.callbacks.append(lambda _: go(max(own_first, f.time + ent.item_time_s)))

    def run_entity(i: int, e: int):
        ent = ents[e]
        kind = ent.kind
        if kind == "A":
            core = cores[ent.core]
            with core.unit.request(priority=(i, ent.band)) as req:
                yield req
                t0 = env.now
                if ent.pre_time_s:
                    yield env.timeout(ent.pre_time_s)
                if ent.stream_msgs:
                    first_output(i, e, env.now + ent.mvm_time_s + ent.item_time_s)
                yield from core.mvms(ent.n_mvm, ent.mvm_time_s, ent.ldpu_time_s)
                waited = 0.0
                if ent.stream_in >= 0:
                    last = sig(s_last, (i, ent.stream_in))
                    if not last.fired:
                        tw = env.now
                        yield last.event
                        waited = env.now - tw
                    extra = last.time + ent.item_time_s - env.now
                    if extra > 0:
                        yield env.timeout(extra)
                if ent.chain_time_s:
                    yield env.timeout(ent.chain_time_s)
                core.busy_s += env.now - t0 - waited
            if record and env.now > t0:
                timeline.append((core.name, t0, env.now, f"{ent.label} i{i}"))
            if i == 0:
                span(ent.layer, t0, env.now)
        elif kind == "G":
            with gdu.unit.request(priority=(i, ent.band)) as req:
                yield req
                t0 = env.now
                if ent.gdu_time_s:
                    yield env.timeout(ent.gdu_time_s)
                gdu.busy_s += env.now - t0
            if record and env.now > t0:
                timeline.append(("gdu", t0, env.now, f"{ent.label} i{i}"))
            if i == 0:
                span(ent.layer, t0, env.now)
        finish(i, e)

    def finish(i: int, e: int) -> None:
        ent = ents[e]
        if ent.kind == "O":
            t_done[i] = env.now
            tokens.release(token_req.pop(i))
            done_left[0] -= 1
            bar.update(1)
        add(ent_counts[e], ent.layer)
        sig(done_sig, (i, e)).fire()
        for m in ent.msgs:
            send(i, m)
        for s in ent.local:
            arrive(i, s)

    def send(i: int, mi: int) -> None:
        """Reserve the message's links now; it arrives by a timeout's callback (no process:
        one event per message)."""
        m = msgs[mi]
        t_wait = env.now
        t0, t_end, per = reserve([links[k] for k in m.links], m.nbytes, t_wait, m.elements)
        if m.stream_to >= 0:
            first = sig(s_first, (i, mi))
            ev = env.timeout(t0 + m.latency_s + per - env.now)
            ev.callbacks.append(lambda _: first.fire())
            src_last = sig(done_sig, (i, m.src))

            def after_source(_: Any) -> None:
                t = max(t_end, src_last.time + per) + m.latency_s
                env.timeout(max(0.0, t - env.now)).callbacks.append(
                    lambda _: arrived(i, mi, t_wait, t0))

            if src_last.fired:
                after_source(None)
            else:
                src_last.event.callbacks.append(after_source)
        else:
            env.timeout(t_end + m.latency_s - env.now).callbacks.append(
                lambda _: arrived(i, mi, t_wait, t0))

    def arrived(i: int, mi: int, t_wait: float, t0: float) -> None:
        m = msgs[mi]
        if record:
            transfers.append((_where(m.src_pos, m.from_io), _where(m.dst_pos, m.to_io),
                              t_wait, t0, env.now, f"{m.kind} {m.nbytes:.0f} B i{i}"))
        add(msg_counts[mi], m.layer)
        if m.stream_to >= 0:
            sig(s_last, (i, mi)).fire()
        for d in m.dsts:
            arrive(i, d)

    def admit():
        for i in range(inferences):
            req = tokens.request()
            yield req
            token_req[i] = req
            t_start[i] = env.now
            need[i] = list(n_in0)
            for e in plan.first_entities:
                start(i, e)

    env.process(admit())
    with progress(inferences, f"chip {cfg.name}", "inference") as bar:
        env.run()
    if done_left[0]:  # pragma: no cover - a plan bug, never silent
        raise StateError(f"chip simulation stalled: {done_left[0]} of {inferences} "
                         "inferences did not finish (a bug in memsim's plan; please report)")
    makespan = max(t_done)
    return SimResult(inferences, t_start, t_done, makespan, counts, by_layer,
                     {c: core.busy_s for c, core in cores.items()}, gdu.busy_s, spans,
                     sorted(timeline, key=lambda x: (x[1], x[0])), transfers, env.events_,
                     time.perf_counter() - wall0)


def _where(pos: tuple[int, int], io: bool) -> str:
    return f"io{pos[0]}" if io else f"c{pos[0]}:{pos[1]}"
