"""The chip's SimPy parts on their own (exact timelines, in the style of SimPy's tests) and
the topology contract every topology passes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import simpy

from memsim.chip.hardware import Core, GlobalUnit, Link, Signal, pipeline_time, transfer
from memsim.chip.topology import TOPOLOGIES, Mesh, Prism, make_topology, square_grid
from memsim.errors import ConfigError

NS = 1e-9


def _ns(x: float) -> float:
    return round(x / NS, 9)


# -- cores ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("a,d", [(133, 20), (133, 560)])
def test_core_runs_jobs_one_after_the_other_mvms_pipelined(exact, a, d):
    """Two jobs of 3 MVMs: array a, local unit d per MVM, pipelined within a job; the second
    job waits for the core. Closed form a + d + 2·max(a, d) per job."""
    env = simpy.Environment()
    core = Core(env, 0, exact=exact)
    log = []

    def job(name, priority):
        with core.unit.request(priority=priority) as req:
            yield req
            t0 = env.now
            yield from core.mvms(3, a * NS, d * NS)
            log.append((name, _ns(t0), _ns(env.now)))

    env.process(job("j1", 1))
    env.process(job("j0", 0))
    env.run()
    span = a + d + 2 * max(a, d)
    assert log == [("j1", 0, span), ("j0", span, 2 * span)]
    assert pipeline_time(3, a * NS, d * NS) == pytest.approx(span * NS)


def test_core_serves_older_inferences_first():
    env = simpy.Environment()
    core = Core(env, 0)
    log = []

    def job(name, priority, t_arrive):
        yield env.timeout(t_arrive * NS)
        with core.unit.request(priority=priority) as req:
            yield req
            t0 = env.now
            yield from core.mvms(1, 100 * NS, 0.0)
            log.append((name, _ns(t0)))

    env.process(job("i0", (0, 0), 0))
    env.process(job("i2", (2, 0), 10))
    env.process(job("i1", (1, 0), 20))
    env.run()
    assert log == [("i0", 0), ("i1", 100), ("i2", 200)]


def test_global_unit_is_one_resource():
    env = simpy.Environment()
    gdu = GlobalUnit(env)
    log = []

    def node(name, t):
        with gdu.unit.request(priority=0) as req:
            yield req
            t0 = env.now
            yield env.timeout(t * NS)
            log.append((name, _ns(t0), _ns(env.now)))

    env.process(node("a", 40))
    env.process(node("b", 10))
    env.run()
    assert log == [("a", 0, 40), ("b", 40, 50)]


# -- links --------------------------------------------------------------------------------------
def test_messages_share_a_link_one_after_the_other():
    """Two 100 B messages over the same 1 GB/s link (2 ns latency) and a third over another
    link: the second waits 100 ns for the first."""
    env = simpy.Environment()
    a, b = Link(env, "a", 1e9), Link(env, "b", 1e9)
    log = []
    env.process(transfer(env, [a], 100, 2 * NS, log=log, label="m0"))
    env.process(transfer(env, [a], 100, 2 * NS, log=log, label="m1"))
    env.process(transfer(env, [b], 100, 2 * NS, log=log, label="m2"))
    env.run()
    got = sorted((lab, _ns(tw), _ns(t0), _ns(t1)) for lab, tw, t0, t1 in log)
    assert got == [("m0", 0, 0, 102), ("m1", 0, 100, 202), ("m2", 0, 0, 102)]
    assert a.bytes == 200 and b.bytes == 100


def test_a_route_holds_all_its_links_at_the_slowest_bandwidth():
    env = simpy.Environment()
    fast, slow = Link(env, "fast", 4e9), Link(env, "slow", 1e9)
    log = []
    env.process(transfer(env, [fast, slow], 100, 5 * NS, log=log, label="m"))
    env.process(transfer(env, [fast], 100, 0.0, log=log, label="n"))
    env.run()
    got = sorted((lab, _ns(t0), _ns(t1)) for lab, _, t0, t1 in log)
    assert got == [("m", 0, 105), ("n", 100, 125)]


def test_stream_leaves_no_faster_than_its_source_makes_it():
    """A 10-value stream (10 B, 1 ns per value on the link, 3 ns latency) whose source makes
    its last value at 50 ns: first value arrives at 0 + 3 + 1, the last at 50 + 1 + 3."""
    env = simpy.Environment()
    link = Link(env, "l", 1e9)
    src_last, first, last = Signal(env), Signal(env), Signal(env)

    def source():
        yield env.timeout(50 * NS)
        src_last.fire()

    env.process(source())
    env.process(transfer(env, [link], 10, 3 * NS, elements=10, source_last=src_last,
                         first=first, last=last))
    env.run()
    assert (_ns(first.time), _ns(last.time)) == (4, 54)
    # a fast source: the link is the bottleneck, last value at 10 + 3
    env = simpy.Environment()
    link = Link(env, "l", 1e9)
    src_last, last = Signal(env), Signal(env)
    src_last.env = env
    env.process(transfer(env, [link], 10, 3 * NS, elements=10, source_last=src_last,
                         last=last))
    src_last.fire()
    env.run()
    assert _ns(last.time) == 13


# -- topologies ---------------------------------------------------------------------------------
TOPOS = [Mesh(8, 8), Mesh(3, 5), Prism(64, 5), Prism(13, 5), Prism(12, 4)]


@pytest.mark.parametrize("topo", TOPOS, ids=lambda t: t.describe())
def test_topology_contract(topo):
    """Every topology: symmetric links, routes that follow links from a to b, distance =
    hops of the route, the vectorised distances agree, a centre inside."""
    for a in range(topo.n):
        for b in topo.neighbours(a):
            assert a in topo.neighbours(b)
            assert a != b
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, topo.n, size=(40, 2)):
        a, b = int(a), int(b)
        path = topo.route(a, b)
        assert path[0] == a and path[-1] == b
        for u, v in itertools.pairwise(path):
            assert v in topo.neighbours(u)
        assert topo.distance(a, b) == len(path) - 1 == topo.distances(a)[b]
        assert topo.distance(a, b) == topo.distance(b, a)
    assert 0 <= topo.centre() < topo.n
    assert sorted(topo.order("snake")) == list(range(topo.n))
    assert len(topo.links()) == sum(len(topo.neighbours(a)) for a in range(topo.n))


def test_mesh_routes_x_then_y():
    m = Mesh(8, 8)
    assert m.route(0, 18) == [0, 1, 2, 10, 18]
    assert m.distance(0, 63) == 14
    assert m.order("snake")[:10] == [0, 1, 2, 3, 4, 5, 6, 7, 15, 14]


def test_prism_reaches_at_most_six_neighbours():
    """HERMES (Le Gallo 2023, Extended Data Table I): each core reaches at most six."""
    p = Prism(64, 5)
    degrees = [len(p.neighbours(a)) for a in range(64)]
    assert max(degrees) == 6 and min(degrees) >= 3
    assert p.neighbours(7) == (1, 2, 6, 8, 12, 13)  # ring 1, position 2
    assert p.distance(0, 63) < Mesh(8, 8).distance(0, 63)


def test_topology_registry_and_errors():
    assert set(TOPOLOGIES) == {"mesh", "prism"}
    assert make_topology("prism", 10).n == 10
    with pytest.raises(ConfigError, match="rows x cols = 4 x 4 = 16 but the chip has 20"):
        make_topology("mesh", 20, rows=4, cols=4)
    with pytest.raises(ConfigError, match="topology kind = 'torus' is unknown"):
        make_topology("torus", 16)
    assert square_grid(64) == (8, 8) and square_grid(2016) == (42, 48)
    with pytest.raises(ConfigError, match="node 9 does not exist"):
        Mesh(3, 3).route(0, 9)
