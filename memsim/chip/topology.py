"""The on-chip network as one object that placement and routing both use.

A :class:`Topology` knows its nodes (one per core, numbered 0 … n−1), the directed links
between neighbours, a route between any two nodes and the hop distance. Placement asks it
for distances (to put communicating layers close); routing asks it for the links a message
holds. A new topology is one subclass registered with ``@TOPOLOGIES.register`` (its
``kind``, the chip-card fields it is built from in ``uses`` and a :meth:`Topology.for_chip`
constructor), chosen in a chip card by ``[topology] kind = "..."``; every registered topology
passes the same contract test (``tests/test_plugins.py``).

- :class:`Mesh`: a rows × cols grid, links to the four neighbours, dimension-ordered (X then
  Y) routing, which is deadlock-free.
- :class:`Prism`: memsim's reading of the *5-parallel-prism* (5PP) network of the HERMES chip
  (Dazzi et al., arXiv 1906.03474, 2019; Le Gallo et al., Nat. Electron. 6, 680, 2023,
  Extended Data Table I: "each core reaching at most six neighbours"): the cores form rings
  of ``size`` (a prism's cross-section) stacked in a line; a core links to its two ring
  neighbours and to the cores at the same and the next ring position of the previous and
  the next ring (at most six neighbours). Routes are shortest paths (breadth first, ties to
  the lowest core index). The exact wiring of the silicon is not published in this form.
"""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

import numpy as np

from memsim.cards import Registry
from memsim.errors import ConfigError

__all__ = ["TOPOLOGIES", "Mesh", "Prism", "Topology", "make_topology"]


#: Network-on-chip topologies by the name a chip card gives in ``[topology] kind``.
TOPOLOGIES = Registry("topology", key="kind")


class Topology:
    """Nodes 0 … n−1 and directed links between neighbours (base class: shortest paths).

    A plug-in sets ``kind`` (the chip card's name for it) and ``uses`` (the ``[topology]``
    fields of the chip card it is built from: "rows", "cols", "prism_size") and implements
    :meth:`for_chip`, :meth:`neighbours` and :meth:`xy`.
    """

    kind: ClassVar[str] = "graph"
    uses: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def for_chip(cls, cores: int, *, rows: int = 0, cols: int = 0, prism_size: int = 5
                 ) -> Topology:
        """The topology of a chip of ``cores`` cores from its card's [topology] fields."""
        raise NotImplementedError

    def __init__(self, n: int) -> None:
        if not (isinstance(n, int) and n >= 1):
            raise ConfigError(f"{type(self).__name__}: n = {n!r} must be an integer >= 1")
        self.n = n
        self._paths: dict[int, np.ndarray] = {}  # source -> predecessor on a shortest path
        self._dist: dict[int, np.ndarray] = {}

    # -- to implement ------------------------------------------------------------------------
    def neighbours(self, a: int) -> tuple[int, ...]:
        """Nodes with a link from ``a`` (links are bidirectional pairs of directed links)."""
        raise NotImplementedError

    def xy(self, a: int) -> tuple[float, float]:
        """A drawing position of node ``a`` (figures)."""
        raise NotImplementedError

    # -- derived ----------------------------------------------------------------------------
    def _bfs(self, a: int) -> None:
        dist = np.full(self.n, -1, dtype=np.int64)
        pred = np.full(self.n, -1, dtype=np.int64)
        dist[a] = 0
        queue = deque([a])
        while queue:
            u = queue.popleft()
            for v in sorted(self.neighbours(u)):
                if dist[v] < 0:
                    dist[v] = dist[u] + 1
                    pred[v] = u
                    queue.append(v)
        if np.any(dist < 0):
            raise ConfigError(f"{self.describe()}: node {int(np.argmin(dist))} cannot be "
                              f"reached from node {a}")
        self._dist[a], self._paths[a] = dist, pred

    def distances(self, a: int) -> np.ndarray:
        """Hops from ``a`` to every node (int array of length n)."""
        self._check(a)
        if a not in self._dist:
            self._bfs(a)
        return self._dist[a]

    def distance(self, a: int, b: int) -> int:
        return int(self.distances(a)[b])

    def route(self, a: int, b: int) -> list[int]:
        """The nodes a message from ``a`` to ``b`` passes, ``a`` and ``b`` included."""
        self._check(a)
        self._check(b)
        if b not in self._paths:
            self._bfs(b)
        pred = self._paths[b]  # shortest-path tree rooted at b: walk from a towards b
        out = [a]
        while out[-1] != b:
            out.append(int(pred[out[-1]]))
        return out

    def links(self) -> list[tuple[int, int]]:
        """Every directed link (u, v)."""
        return [(u, v) for u in range(self.n) for v in sorted(self.neighbours(u))]

    def centre(self) -> int:
        """The node with the smallest largest distance to the others (ties: lowest index)."""
        best = min(range(self.n), key=lambda a: (int(self.distances(a).max()),
                                                  int(self.distances(a).sum()), a))
        return best

    def order(self, kind: str = "snake") -> list[int]:
        """Nodes in a placement order ("snake" keeps consecutive nodes adjacent)."""
        return list(range(self.n))

    def describe(self) -> str:
        return f"{self.kind} of {self.n} cores"

    def _check(self, a: int) -> None:
        if not 0 <= a < self.n:
            raise ConfigError(f"{self.describe()}: node {a} does not exist")


@TOPOLOGIES.register
class Mesh(Topology):
    """rows × cols grid; node = row · cols + col; X-then-Y routing."""

    kind: ClassVar[str] = "mesh"
    uses: ClassVar[tuple[str, ...]] = ("rows", "cols")

    @classmethod
    def for_chip(cls, cores: int, *, rows: int = 0, cols: int = 0, prism_size: int = 5
                 ) -> Mesh:
        if rows * cols != cores:
            raise ConfigError(f"mesh topology: rows x cols = {rows} x {cols} = {rows * cols} "
                              f"but the chip has {cores} cores")
        return cls(rows, cols)

    def __init__(self, rows: int, cols: int) -> None:
        super().__init__(rows * cols)
        self.rows, self.cols = rows, cols
        self._rc = np.array([(k // cols, k % cols) for k in range(self.n)], dtype=np.int64)

    def neighbours(self, a: int) -> tuple[int, ...]:
        r, c = divmod(a, self.cols)
        out = []
        for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            if 0 <= r + dr < self.rows and 0 <= c + dc < self.cols:
                out.append((r + dr) * self.cols + c + dc)
        return tuple(out)

    def xy(self, a: int) -> tuple[float, float]:
        r, c = divmod(a, self.cols)
        return float(c), float(r)

    def distances(self, a: int) -> np.ndarray:
        self._check(a)
        r, c = divmod(a, self.cols)
        return np.abs(self._rc[:, 0] - r) + np.abs(self._rc[:, 1] - c)

    def route(self, a: int, b: int) -> list[int]:
        self._check(a)
        self._check(b)
        r, c = divmod(a, self.cols)
        r1, c1 = divmod(b, self.cols)
        out = [a]
        while c != c1:
            c += 1 if c1 > c else -1
            out.append(r * self.cols + c)
        while r != r1:
            r += 1 if r1 > r else -1
            out.append(r * self.cols + c)
        return out

    def centre(self) -> int:
        return (self.rows // 2) * self.cols + self.cols // 2

    def order(self, kind: str = "snake") -> list[int]:
        out = []
        for r in range(self.rows):
            cols = range(self.cols)
            if kind == "snake" and r % 2:
                cols = reversed(cols)
            out.extend(r * self.cols + c for c in cols)
        return out

    def describe(self) -> str:
        return f"{self.rows}x{self.cols} mesh"


@TOPOLOGIES.register
class Prism(Topology):
    """Rings of ``size`` cores stacked in a line (see the module docstring)."""

    kind: ClassVar[str] = "prism"
    uses: ClassVar[tuple[str, ...]] = ("prism_size",)

    @classmethod
    def for_chip(cls, cores: int, *, rows: int = 0, cols: int = 0, prism_size: int = 5
                 ) -> Prism:
        return cls(cores, prism_size)

    def __init__(self, n: int, size: int = 5) -> None:
        super().__init__(n)
        if not (isinstance(size, int) and size >= 2):
            raise ConfigError(f"prism topology: size = {size!r} must be an integer >= 2")
        self.size = size
        self._nb = [self._neighbours(a) for a in range(n)]

    def _neighbours(self, a: int) -> tuple[int, ...]:
        s, n = self.size, self.n
        ring, i = divmod(a, s)
        out = set()
        ring_len = min(s, n - ring * s)
        for d in (-1, 1):  # ring neighbours (a path when the last ring is incomplete)
            j = i + d
            if ring_len == s:
                j %= s
            if 0 <= j < ring_len and j != i:
                out.add(ring * s + j)
        for other, shifts in ((ring + 1, (0, 1)), (ring - 1, (0, -1))):
            for sh in shifts:
                b = other * s + (i + sh) % s
                if other >= 0 and b < n:
                    out.add(b)
        out.discard(a)
        return tuple(sorted(out))

    def neighbours(self, a: int) -> tuple[int, ...]:
        self._check(a)
        return self._nb[a]

    def xy(self, a: int) -> tuple[float, float]:
        ring, i = divmod(a, self.size)
        angle = 2 * math.pi * i / self.size
        return ring * 2.5 + 0.6 * math.cos(angle), 1.0 + math.sin(angle)

    def describe(self) -> str:
        return f"{self.size}-parallel prism of {self.n} cores"


def make_topology(kind: str, cores: int, *, rows: int = 0, cols: int = 0,
                  prism_size: int = 5) -> Topology:
    """The topology named ``kind`` for ``cores`` cores (mesh: rows × cols = cores)."""
    cls = TOPOLOGIES.get(kind)
    if cls is None:
        raise ConfigError(f"topology kind = {kind!r} is unknown; known: {sorted(TOPOLOGIES)}")
    return cls.for_chip(cores, rows=rows, cols=cols, prism_size=prism_size)


def square_grid(cores: int) -> tuple[int, int]:
    """The most square rows × cols = cores (rows <= cols)."""
    rows = max(d for d in range(1, math.isqrt(cores) + 1) if cores % d == 0)
    return rows, cores // rows
