"""From a network description to a plan the scheduler runs: jobs on cores, digital work,
messages, routes. Built in small named steps (:func:`build_plan` calls them in order):

1. :func:`analyse` — where every digital node runs (its *site*);
2. :func:`make_bands` — the bands of output rows a layer's input vectors stream in;
3. :func:`choose_replicas` — copies of bottleneck layers in spare cores;
4. :func:`make_jobs` — one job per physical array (and copy), with its partial-sum chain;
5. :func:`place` — the jobs on cores, through the chip's :class:`~memsim.chip.topology.Topology`;
6. :func:`make_entities` — per band the work of each job, global unit and host;
7. :func:`make_messages` — the data every entity needs, from where it lives;
8. :func:`route` — the links of every message, through the same topology.

The plan reads only the :class:`~memsim.mapping.description.NetworkDescription`: names,
shapes, matrices, blocks on arrays, MVMs per inference and the digital nodes' attributes;
no weights.

Where work runs. A weight layer computes on the cores of its arrays. An array holding
several blocks of a grouped layer runs one MVM per input vector for all of them. The arrays
holding the row blocks of the same columns form a *partial-sum chain*: each core adds the
partial sums streamed from the previous one to its own outputs in its local digital unit and
streams the result on; the last core (the *home*) also applies the fused activation and
holds the layer's outputs. Single-input digital nodes after a layer (pooling, …) run on its
homes (producer side, before sending); multi-input nodes (residual add) run on the cores of
the one layer that reads them (consumer side), or on the global unit when several layers or
the output need them; recurrent layers run their gates on the global unit, one step after
the other. With ``activations="off-chip"`` every value between layers goes out to the host
and back, and the digital nodes other than the fused activations run on the host, as in the
HERMES paper's measurements.

Streaming. A convolution's output rows come in bands (one row each, at most
``MAX_BANDS``); a band of a layer starts as soon as the rows of its inputs it needs exist —
its receptive field through the consumer-side nodes, the producers' pooling and the
convolution's own stride, padding and kernel — so input vectors flow through the layer
pipeline within one image (as HERMES, ISAAC and PUMA schedule). ``streaming=False`` keeps
one band per layer: a layer starts when all its inputs for that image exist.

Counts per MVM of an array of R × C cells (its blocks use r rows and c columns), with P
phases (bit cycles) and S weight slices: with gated lines r·P·S DAC line drives, r·c·P·S cell
reads and c·P·S conversions; without (``gate_unused_lines = false``, HERMES) R·P·S, R·C·P·S
and C·P·S; S MVM overheads; c·(affine + fused + partial-sum add) local digital ops (plus
the P·S conversions per output when the local unit accumulates them); r + c values through
the core's buffers. A weight layer's own digital work (``digital_ops`` of its description:
the attention between a MultiheadAttention's projections) runs on its home cores' local
units, shared by output, one operation per local-unit item time (a memsim simplification).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memsim.chip.card import ChipConfig
from memsim.chip.ops import (
    FUSABLE,
    GATE_OPS,
    RECURRENT,
    is_view,
    ldpu_items,
    node_ops,
    rows_needed,
)
from memsim.errors import ConfigError
from memsim.mapping.description import LayerDesc, NetworkDescription

__all__ = ["ACTIVATION_MODES", "FIT_MODES", "PLACEMENTS", "Entity", "Message", "Plan",
           "build_plan", "count_cores", "peak_plan"]

FIT_MODES = ("error", "multi-chip", "reprogram")
PLACEMENTS = ("greedy", "snake", "row-major")
ACTIVATION_MODES = ("on-chip", "off-chip")
MAX_BANDS = 32

Pos = tuple[int, int]  # (chip, node)


@dataclass
class Message:
    """One transfer per inference from entity ``src`` to the entities ``dsts`` (which wait
    for it to start) or to ``stream_to`` (which adds it, value by value, to its outputs)."""

    index: int
    src: int
    src_pos: Pos
    dst_pos: Pos
    nbytes: float
    kind: str  # "in", "act", "psum", "h", "out", "host"
    dsts: list[int] = field(default_factory=list)
    stream_to: int = -1
    elements: int = 1
    from_io: bool = False
    to_io: bool = False
    layer: str = ""
    links: tuple[int, ...] = ()
    hops: int = 0
    offchip: bool = False
    latency_s: float = 0.0


@dataclass
class Entity:
    """A unit of per-inference work: kind "A" (a core: one band of one array's job), "G"
    (global unit), "H" (the host, off chip: no chip time), "I" (inputs ready), "O" (done)."""

    index: int
    kind: str
    label: str
    layer: str = ""
    core: int = -1  # physical core index (chip · cores + node)
    chip: int = 0
    band: int = 0
    n_mvm: int = 0
    mvm_time_s: float = 0.0
    ldpu_time_s: float = 0.0  # local digital unit time per MVM
    item_time_s: float = 0.0  # one LDPU output
    pre_time_s: float = 0.0
    chain_time_s: float = 0.0
    gdu_time_s: float = 0.0
    n_in: int = 0
    stream_in: int = -1  # message index of the partial sums it adds
    msgs: list[int] = field(default_factory=list)  # sent when done
    stream_msgs: list[int] = field(default_factory=list)  # sent from its first output on
    local: list[int] = field(default_factory=list)  # entities notified without a message
    counts: dict[str, float] = field(default_factory=dict)
    ops: float = 0.0  # useful arithmetic ops (2 per MAC) of its MVMs


@dataclass
class Plan:
    """Everything the scheduler needs, plus what the report shows."""

    name: str
    entities: list[Entity]
    messages: list[Message]
    cores_used: list[int]
    chips: int
    placement: dict[str, list[int]]  # layer -> physical cores
    replicas: dict[str, int]
    ops_per_inference: float
    link_names: list[str]
    link_bandwidth: list[float]
    warnings: list[str]
    notes: list[str]
    first_entities: list[int]
    sink: int
    layers: list[str] = field(default_factory=list)
    bands: dict[str, int] = field(default_factory=dict)
    utilization: dict[str, float] = field(default_factory=dict)  # layer -> used cells share

    @property
    def n_links(self) -> int:
        return len(self.link_names)

    def cores_needed(self) -> int:
        return len(self.cores_used)


# -- 1. sites ----------------------------------------------------------------------------------
@dataclass
class Analysis:
    desc: NetworkDescription
    shapes: dict[str, tuple[int, ...]]
    site: dict[str, tuple]  # node -> ("io",) | ("out", W) | ("in", W) | ("gdu",) | ("host",)
    consumers: dict[str, list[str]]
    fused: dict[str, list[str]]  # weight layer -> fused nodes (in order)
    chain: dict[str, list[str]]  # weight layer -> producer-side nodes (not fused)
    pre: dict[str, list[str]]  # weight layer -> consumer-side nodes
    notes: list[str]


def analyse(desc: NetworkDescription, activations: str = "on-chip") -> Analysis:
    """Step 1: the site of every node (see the module docstring)."""
    nodes = desc.nodes
    shapes = dict(desc.shapes)
    consumers: dict[str, list[str]] = {n: [] for n in nodes}
    for n in nodes.values():
        for i in n.inputs:
            if i not in consumers:
                raise ConfigError(f"{desc.name}: node {n.name!r} reads {i!r}, which is not a "
                                  "node before it")
            consumers[i].append(n.name)
    offchip = activations == "off-chip"
    fused: dict[str, list[str]] = {}
    fused_of: dict[str, str] = {}
    for layer in desc.layers:
        if layer.op in RECURRENT:
            continue
        chain, v = [], layer.name
        while len(consumers[v]) == 1:
            c = nodes[consumers[v][0]]
            if c.op not in FUSABLE or len(c.inputs) != 1:
                break
            chain.append(c.name)
            v = c.name
        fused[layer.name] = chain
        for n in chain:
            fused_of[n] = layer.name
    site: dict[str, Any] = {}
    for n in nodes.values():
        if n.op == "input":
            site[n.name] = ("io",)
        elif isinstance(n, LayerDesc):
            site[n.name] = ("gdu",) if n.op in RECURRENT else ("out", n.name)
        elif n.name in fused_of:
            site[n.name] = ("out", fused_of[n.name])
        elif offchip:
            site[n.name] = ("host",)
        elif len(n.inputs) == 1 and site[n.inputs[0]] is not None \
                and site[n.inputs[0]][0] in ("out", "gdu"):
            site[n.name] = site[n.inputs[0]]
        else:
            site[n.name] = None
    for name in reversed(list(nodes)):
        if site[name] is not None:
            continue
        targets = set()
        if name == desc.output:
            targets.add(("gdu",))
        for c in consumers[name]:
            targets.add(("in", c) if isinstance(nodes[c], LayerDesc) else site[c])
        site[name] = targets.pop() if len(targets) == 1 and None not in targets else ("gdu",)
    chain = {la.name: [n for n, s in site.items() if s == ("out", la.name)
                       and n not in fused_of and n != la.name] for la in desc.layers}
    pre = {la.name: [n for n, s in site.items() if s == ("in", la.name)] for la in desc.layers}
    notes = list(desc.notes)
    unknown = sorted({n.op for n in nodes.values() if not isinstance(n, LayerDesc)
                      and n.digital_ops is None
                      and n.op not in ("relu", "tanh", "sigmoid", "gelu", "softmax",
                                       "batchnorm", "add", "maxpool2d", "avgpool2d",
                                       "global_avgpool", "identity", "flatten", "last_step",
                                       "input")})
    if unknown:
        notes.append(f"digital work of ops {unknown} estimated as 1 op per output element")
    blind = [la.name for la in desc.layers if la.op in ("conv1d", "conv2d")
             and not {"stride", "padding"} <= set(la.attrs)]
    if blind:
        notes.append(f"layers {blind} have no stride/padding in their description: their "
                     "input vectors wait for whole inputs (no streaming into them)")
    if offchip:
        notes.append("activations='off-chip': every value between layers goes out to the host "
                     "and back; digital nodes other than the fused activations run on the "
                     "host (no chip time or energy counted for them)")
    return Analysis(desc, shapes, site, consumers, fused, chain, pre, notes)


# -- 2. bands ----------------------------------------------------------------------------------
@dataclass
class Bands:
    """Bands of one value: rows per band, and for every row the band that completes it."""

    count: int
    rows: int  # rows of the value (1 for values without rows)
    row_band: list[int]  # row -> band index that completes it
    mvms: list[int] = field(default_factory=list)  # weight layers: MVMs per band

    def rows_of(self, band: int) -> int:
        return sum(1 for b in self.row_band if b == band)


def _rows(shape: tuple[int, ...]) -> int:
    return int(shape[1]) if len(shape) >= 2 else 1


def make_bands(a: Analysis, streaming: bool) -> dict[str, Bands]:
    """Step 2: bands of every weight layer's output and of the values on its homes."""
    desc, shapes = a.desc, a.shapes
    out: dict[str, Bands] = {}
    for layer in desc.layers:
        h = _rows(layer.out_shape)
        spatial = layer.op in ("conv1d", "conv2d") and len(layer.out_shape) >= 2
        if not (streaming and spatial) or h <= 1:
            out[layer.name] = Bands(1, h, [0] * h, [layer.mvms_per_inference])
            continue
        per = math.ceil(h / MAX_BANDS)
        count = math.ceil(h / per)
        row_band = [r // per for r in range(h)]
        mvms = [layer.mvms_per_inference * sum(1 for b in row_band if b == k) // h
                for k in range(count)]
        mvms[-1] += layer.mvms_per_inference - sum(mvms)
        out[layer.name] = Bands(count, h, row_band, mvms)
    # producer-side nodes: a row is complete when the layer's band holding its last needed
    # row of the layer output is
    for layer in desc.layers:
        lb = out[layer.name]
        known = {layer.name: lb}
        for n in [*a.fused.get(layer.name, []), *a.chain.get(layer.name, [])]:
            node = desc.nodes[n]
            src = node.inputs[0]
            sb = known.get(src)
            h = _rows(node.out_shape)
            if sb is None or sb.count == 1:
                known[n] = Bands(1, h, [0] * h)
                continue
            last = sb.count - 1
            row_band = []
            for r in range(h):
                need = rows_needed(node, shapes, r, r + 1)
                if need is None or src not in need:
                    row_band = None
                    break
                lo, hi = need[src]
                row_band.append(max(sb.row_band[max(lo, hi - 1)], row_band[-1] if row_band
                                    else 0) if hi > lo else (row_band[-1] if row_band else 0))
            if row_band is None:  # needs the whole input: complete with the last band
                known[n] = Bands(sb.count, h, [last] * h)
            else:
                known[n] = Bands(sb.count, h, row_band)
        out.update({k: v for k, v in known.items() if k != layer.name})
    return out


def needed_bands(a: Analysis, bands: dict[str, Bands], layer: LayerDesc, band: int,
                 value: str) -> tuple[int, int] | None:
    """Bands [lo, hi] of ``value`` that band ``band`` of ``layer`` needs (None: all)."""
    vb = bands.get(value)
    lb = bands[layer.name]
    if vb is None or vb.count == 1 or lb.count == 1:
        return None
    rows = [r for r, b in enumerate(lb.row_band) if b == band]
    if not rows:
        return None
    need = {layer.name: (rows[0], rows[-1] + 1)}
    members = set(a.pre[layer.name])
    # walk back from the layer through its consumer-side nodes to the value
    frontier = [layer.name]
    while frontier:
        n = frontier.pop()
        node = a.desc.nodes[n]
        lo, hi = need[n]
        req = rows_needed(node, a.shapes, lo, hi)
        if req is None:
            return None
        for i, (ilo, ihi) in req.items():
            if i in need:
                need[i] = (min(need[i][0], ilo), max(need[i][1], ihi))
            else:
                need[i] = (ilo, ihi)
            if i in members:
                frontier.append(i)
    if value not in need:
        return None
    lo, hi = need[value]
    if hi <= lo:
        return (0, 0)
    return min(vb.row_band[lo:hi]), max(vb.row_band[lo:hi])


# -- 3. replicas -------------------------------------------------------------------------------
def count_cores(desc: NetworkDescription, layers: list[str] | None = None) -> int:
    """Cores (one array per core) the weight layers need without replication."""
    return sum(la.arrays for la in desc.layers if layers is None or la.name in layers)


def choose_replicas(desc: NetworkDescription, replicate: Any, capacity: int,
                    layers: list[str]) -> dict[str, int]:
    """Step 3: copies per layer (None, "auto" or {layer: copies})."""
    by_name = {la.name: la for la in desc.layers}
    reps = dict.fromkeys(layers, 1)
    if replicate in (None, "none", False, 1):
        return reps
    if isinstance(replicate, dict):
        for name, k in replicate.items():
            if name not in reps:
                raise ConfigError(f"replicate: {name!r} is not a weight layer of the network; "
                                  f"layers: {layers}")
            if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
                raise ConfigError(f"replicate[{name!r}] = {k!r} must be an integer >= 1")
            if by_name[name].op in RECURRENT and k > 1:
                raise ConfigError(f"replicate: recurrent layer {name!r} cannot be replicated "
                                  "(its time steps are sequential)")
            reps[name] = min(k, by_name[name].mvms_per_inference)
        return reps
    if replicate != "auto":
        raise ConfigError(f"replicate = {replicate!r}; allowed: None, 'auto' or a dict "
                          "{layer: copies}")
    spare = capacity - sum(by_name[n].arrays for n in layers)
    while True:
        cand = [n for n in layers if by_name[n].op not in RECURRENT
                and reps[n] < by_name[n].mvms_per_inference]
        if not cand:
            break

        def stage(n: str) -> int:
            return math.ceil(by_name[n].mvms_per_inference / reps[n])

        worst = max(cand, key=stage)
        if stage(worst) < max(stage(n) for n in layers):
            break  # the bottleneck cannot be copied: more copies elsewhere gain nothing
        if by_name[worst].arrays > spare:
            break
        reps[worst] += 1
        spare -= by_name[worst].arrays
    return reps


# -- 4. jobs -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One physical array of one copy of a weight layer, on one core."""

    layer: str
    replica: int
    array: int
    rows_used: int
    cols_used: int
    cells_used: int
    in_iv: tuple[float, float]  # share of the layer's input channels it reads
    out_iv: tuple[float, float]  # share of the layer's outputs it produces
    chain: tuple  # partial-sum chain key
    chain_pos: int = 0
    home: bool = True
    blocks: tuple = ()
    core: int = -1


def make_jobs(desc: NetworkDescription, reps: dict[str, int]) -> list[Job]:
    """Step 4: a job per array and copy; arrays of the same columns form a chain (by rows)."""
    jobs: list[Job] = []
    for layer in desc.layers:
        if layer.name not in reps:
            continue
        mats = dict(layer.matrices)
        keys = [k for k, _ in layer.matrices]
        groups = len(keys) if layer.op in ("conv1d", "conv2d") else 1
        arrays: dict[int, list] = {}
        for b in layer.blocks:
            arrays.setdefault(b.array, []).append(b)
        for rep in range(reps[layer.name]):
            chains: dict[tuple, list[Job]] = {}
            for arr, blocks in sorted(arrays.items()):
                ivs_in, ivs_out = [], []
                for b in blocks:
                    r_tot, c_tot = mats[b.key]
                    if layer.op in RECURRENT:
                        ivs_in.append((0.0, 1.0))
                        ivs_out.append((0.0, 1.0))
                        continue
                    g = keys.index(b.key) if groups > 1 else 0
                    ivs_in.append(((g + b.r0 / r_tot) / groups, (g + b.r1 / r_tot) / groups))
                    ivs_out.append(((g + b.c0 / c_tot) / groups, (g + b.c1 / c_tot) / groups))
                if len(blocks) == 1:
                    b = blocks[0]
                    chain = (layer.name, rep, b.key, b.c0, b.c1)
                else:  # a packed array: its own chain
                    chain = (layer.name, rep, "packed", arr)
                job = Job(layer.name, rep, arr,
                          rows_used=sum(b.shape[0] for b in blocks),
                          cols_used=sum(b.shape[1] for b in blocks),
                          cells_used=sum(b.cells for b in blocks),
                          in_iv=(min(x for x, _ in ivs_in), max(y for _, y in ivs_in)),
                          out_iv=(min(x for x, _ in ivs_out), max(y for _, y in ivs_out)),
                          chain=chain, blocks=tuple(blocks))
                chains.setdefault(chain, []).append(job)
            for members in chains.values():
                members.sort(key=lambda j: min(b.r0 for b in j.blocks))
                for k, j in enumerate(members):
                    j.chain_pos = k
                    j.home = k == len(members) - 1
                jobs.extend(members)
    return jobs


# -- 5. placement ------------------------------------------------------------------------------
class Floor:
    """The cores of ``chips`` chips through one topology: positions, distances, routes."""

    def __init__(self, cfg: ChipConfig, chips: int) -> None:
        self.cfg, self.topo, self.chips = cfg, cfg.topo, chips
        self.n = cfg.cores
        self.io = cfg.io_node
        self.gdu = cfg.gdu_node
        d_io = self.topo.distances(self.io)
        self._penalty = 4 * int(max(d_io.max(), 1))
        self._d_io = d_io

    def core(self, pos: Pos) -> int:
        return pos[0] * self.n + pos[1]

    def pos(self, core: int) -> Pos:
        return divmod(core, self.n)

    def distances(self, a: Pos) -> np.ndarray:
        """Hops from ``a`` to every core of every chip (cross-chip through the I/O ports)."""
        same = self.topo.distances(a[1])
        cross = self.topo.distances(self.io)[a[1]] + self._d_io + self._penalty
        out = np.empty(self.chips * self.n)
        for ch in range(self.chips):
            out[ch * self.n:(ch + 1) * self.n] = same if ch == a[0] else cross
        return out


def place(jobs: list[Job], a: Analysis, floor: Floor, placement: str,
          first_chip: int = 0) -> None:
    """Step 5: every job on a free core. "greedy": next to the cores holding its inputs and
    to the previous array of its chain; "snake"/"row-major": the next free core in order."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement = {placement!r}; allowed: {list(PLACEMENTS)}")
    total = floor.chips * floor.n
    free = np.ones(total, dtype=bool)
    order_kind = "row-major" if placement == "row-major" else "snake"
    order = [ch * floor.n + k for ch in range(floor.chips)
             for k in floor.topo.order(order_kind)]
    rank = np.empty(total)
    rank[order] = np.arange(total) * 1e-6
    homes: dict[str, list[Pos]] = {}
    by_chain: dict[tuple, Pos] = {}
    desc = a.desc
    io_pos = (first_chip, floor.io)
    for layer in desc.layers:
        lj = [j for j in jobs if j.layer == layer.name]
        if not lj:
            continue
        anchors: list[Pos] = []
        for v in external_inputs(a, layer.name):
            s = a.site[v]
            if s[0] == "out" and s[1] in homes:
                anchors += homes[s[1]]
            elif s[0] == "gdu":
                anchors.append((first_chip, floor.gdu))
            else:
                anchors.append(io_pos)
        anchors = list(dict.fromkeys(anchors)) or [io_pos]
        base = rank.copy()
        for an in anchors:
            base += floor.distances(an)
        for j in lj:
            if placement == "greedy":
                cost = base.copy()
                prev = by_chain.get(j.chain)
                if prev is not None:
                    cost += 2 * floor.distances(prev)
                cost[~free] = np.inf
                k = int(np.argmin(cost))
            else:
                k = next(c for c in order if free[c])
            if not free[k]:  # pragma: no cover - capacity is checked before placing
                raise ConfigError("no free core left")
            free[k] = False
            j.core = k
            by_chain[j.chain] = floor.pos(k)
        homes[layer.name] = list(dict.fromkeys(floor.pos(j.core) for j in lj if j.home))


def external_inputs(a: Analysis, layer: str) -> list[str]:
    """Values read from outside the consumer-side set of ``layer``."""
    members = set(a.pre[layer])
    vals: list[str] = []
    for n in [*a.pre[layer], layer]:
        for i in a.desc.nodes[n].inputs:
            if i not in members and i not in vals:
                vals.append(i)
    return vals


# -- 6 and 7. entities and messages ---------------------------------------------------------
@dataclass
class Holder:
    entity: int
    pos: Pos
    out_iv: tuple[float, float]
    band: int
    share: float  # fraction of the band it holds (copies that split a band)
    offchip: bool = False


def _overlap(x: tuple[float, float], y: tuple[float, float]) -> float:
    return max(0.0, min(x[1], y[1]) - max(x[0], y[0]))


def _size(shape: tuple[int, ...]) -> float:
    return float(math.prod(shape)) if shape else 1.0


class _Builder:
    """Steps 6 and 7 (entities and messages) with the state they share."""

    def __init__(self, a: Analysis, cfg: ChipConfig, tile: Any, floor: Floor,
                 bands: dict[str, Bands], jobs: list[Job], reps: dict[str, int],
                 layers: list[str], preloaded: bool, first_chip: int) -> None:
        self.a, self.cfg, self.tile, self.floor = a, cfg, tile, floor
        self.bands, self.jobs, self.reps, self.layers = bands, jobs, reps, layers
        self.preloaded = preloaded
        self.ents: list[Entity] = []
        self.msgs: list[Message] = []
        self.holders: dict[str, list[Holder]] = {}
        self.ops_total = 0.0
        self.io_pos = (first_chip, floor.io)
        self.gdu_pos = (first_chip, floor.gdu)
        self.src = self.new("I", "inputs", layer="input")
        self.sink = self.new("O", "outputs", layer="output")
        self.band_ents: dict[tuple[str, int], list[tuple[Job, Entity]]] = {}
        self.gdu_ents: dict[str, Entity] = {}
        self.host_ents: dict[str, Entity] = {}

    # -- helpers -----------------------------------------------------------------------------
    def new(self, kind: str, label: str, **kw: Any) -> Entity:
        e = Entity(len(self.ents), kind, label, **kw)
        self.ents.append(e)
        return e

    def message(self, src: Entity, src_pos: Pos, dst_pos: Pos, nbytes: float, kind: str, *,
                dsts: list[Entity] = (), stream_to: Entity | None = None, elements: int = 1,
                from_io: bool = False, to_io: bool = False, layer: str = "") -> None:
        if nbytes <= 0 and stream_to is None:
            for d in dsts:  # nothing to send: the order still holds
                self.local(src, d)
            return
        if self.preloaded and from_io and src.kind == "I":
            return  # inputs already in the cores' buffers
        m = Message(len(self.msgs), src.index, src_pos, dst_pos, nbytes, kind,
                    dsts=[d.index for d in dsts], elements=max(1, int(elements)),
                    from_io=from_io, to_io=to_io, layer=layer or src.layer)
        if stream_to is not None:
            m.stream_to = stream_to.index
            stream_to.stream_in = m.index
            src.stream_msgs.append(m.index)
        else:
            src.msgs.append(m.index)
            for d in dsts:
                d.n_in += 1
        self.msgs.append(m)

    def local(self, a: Entity, b: Entity) -> None:
        a.local.append(b.index)
        b.n_in += 1

    def pos_of(self, job: Job) -> Pos:
        return self.floor.pos(job.core)

    # -- step 6: entities --------------------------------------------------------------------
    def weight_layer(self, layer: LayerDesc) -> None:
        a, cfg, tile = self.a, self.cfg, self.tile
        name = layer.name
        rec = layer.op in RECURRENT
        lb = self.bands[name]
        k = self.reps[name]
        jl = [j for j in self.jobs if j.layer == name]
        phases = cfg.phases(tile)
        slices = cfg.weight_slices
        window = cfg.read_window_factor(tile)
        adc_key = f"adc_conversion_{tile.adc_bits}b"
        mvm_time = cfg.mvm_time_s(tile)
        item = cfg.ldpu_item_s
        act_b, ps_b = cfg.activation_bytes, cfg.partial_sum_bytes
        shapes = a.shapes
        fused = a.fused.get(name, [])
        fused_per_out = sum(node_ops(a.desc.nodes[n], shapes) / max(1.0, _size(shapes[n]))
                            for n in fused)
        pre_items = sum(ldpu_items(a.desc.nodes[n], shapes) for n in a.pre[name])
        pre_ops = sum(node_ops(a.desc.nodes[n], shapes) for n in a.pre[name])
        chain_nodes = a.chain[name]
        # the layer's own digital work (a MultiheadAttention's scores, softmax and weighted
        # sum between its projections): on its home cores' local units, one op per item time
        own_ops = 0.0 if rec else float(layer.digital_ops or 0.0)
        own_norm = sum(j.out_iv[1] - j.out_iv[0] for j in jl if j.home and j.replica == 0)
        steps = layer.mvms_per_inference if rec else lb.count
        for band in range(steps):
            ents: list[tuple[Job, Entity]] = []
            for job in jl:
                if rec:
                    n_mvm, share = 1, 1.0
                elif lb.count >= k:
                    if band % k != job.replica:
                        continue
                    n_mvm, share = lb.mvms[band], 1.0
                else:
                    n_mvm = lb.mvms[band] // k + (1 if job.replica < lb.mvms[band] % k else 0)
                    share = n_mvm / max(1, lb.mvms[band])
                if n_mvm <= 0:
                    continue
                frac = (1.0 if rec else lb.mvms[band] / max(1, layer.mvms_per_inference)) \
                    * share
                rows_c = job.rows_used if cfg.gate_unused_lines else tile.rows
                cols_c = job.cols_used if cfg.gate_unused_lines else tile.cols
                items_per_mvm = job.cols_used * (phases * slices if cfg.ldpu_accumulates else 1)
                chain_here = job.home and not rec
                in_share = job.in_iv[1] - job.in_iv[0]
                out_share = job.out_iv[1] - job.out_iv[0]
                pre_i = 0.0 if (rec and band) else pre_items * frac * in_share
                pre_o = 0.0 if (rec and band) else pre_ops * frac * in_share
                chain_i = chain_o = 0.0
                if chain_here and chain_nodes:
                    for n in chain_nodes:
                        nb = self.bands.get(n)
                        rfrac = (nb.rows_of(band) / max(1, nb.rows)) if nb and nb.count > 1 \
                            else frac
                        if nb is not None and nb.count > 1:
                            rfrac *= share
                        chain_i += ldpu_items(a.desc.nodes[n], shapes) * rfrac * out_share
                        chain_o += node_ops(a.desc.nodes[n], shapes) * rfrac * out_share
                if chain_here and own_ops and own_norm > 0:
                    own = own_ops * frac * out_share / own_norm
                    chain_i += own
                    chain_o += own
                has_stream = job.chain_pos > 0
                per_out = cfg.affine_ops_per_output + (fused_per_out if chain_here else 0.0) \
                    + (1.0 if has_stream else 0.0)
                local_ops = n_mvm * (job.cols_used * per_out
                                     + (items_per_mvm - job.cols_used)) + pre_o + chain_o
                out_b = act_b if (job.home and not rec) else ps_b
                label = f"{name}" + (f" t{band}" if rec else (f" b{band}" if lb.count > 1
                                                              else ""))
                e = self.new("A", label, layer=name, core=job.core, chip=job.core // cfg.cores,
                             band=band, n_mvm=n_mvm, mvm_time_s=mvm_time,
                             ldpu_time_s=items_per_mvm * item, item_time_s=item,
                             pre_time_s=pre_i * item, chain_time_s=chain_i * item)
                e.counts = {
                    "dac_conversion": n_mvm * phases * slices * rows_c,
                    "array_cell_read": n_mvm * phases * slices * rows_c * cols_c * window,
                    adc_key: n_mvm * phases * slices * cols_c,
                    "mvm_overhead": n_mvm * slices,
                    "local_digital_op": local_ops,
                    "buffer_byte": n_mvm * (job.rows_used * act_b + job.cols_used * out_b),
                }
                e.ops = 2.0 * job.cells_used * n_mvm
                self.ops_total += e.ops
                ents.append((job, e))
            # partial sums stream along each chain
            by_chain: dict[tuple, list[tuple[Job, Entity]]] = {}
            for job, e in ents:
                by_chain.setdefault(job.chain, []).append((job, e))
            for members in by_chain.values():
                members.sort(key=lambda je: je[0].chain_pos)
                for (j0, e0), (j1, e1) in itertools.pairwise(members):
                    self.message(e0, self.pos_of(j0), self.pos_of(j1),
                                 j0.cols_used * e0.n_mvm * ps_b, "psum", stream_to=e1,
                                 elements=j0.cols_used * e0.n_mvm)
            if rec and band:
                prev = {id(j): e for j, e in self.band_ents[(name, band - 1)]}
                for job, e in ents:
                    self.local(prev[id(job)], e)
            self.band_ents[(name, band)] = ents
        if rec:
            self.recurrent_gates(layer)
            return
        hl = []
        for band in range(lb.count):
            for job, e in self.band_ents.get((name, band), []):
                if job.home:
                    share = e.n_mvm / max(1, lb.mvms[band]) if lb.count < k else 1.0
                    hl.append(Holder(e.index, self.pos_of(job), job.out_iv, band, share))
        self.holders[name] = hl
        for n in [*a.fused.get(name, []), *chain_nodes]:
            self.holders[n] = hl

    def recurrent_gates(self, layer: LayerDesc) -> None:
        cfg, name = self.cfg, layer.name
        hidden = int(layer.attrs.get("hidden_size", 0))
        in_feats = int(layer.attrs.get("input_size", 0))
        if hidden <= 0 or in_feats <= 0:
            raise ConfigError(f"recurrent layer {name!r}: attrs needs hidden_size and "
                              f"input_size (got {dict(layer.attrs)})")
        ps_b, act_b = cfg.partial_sum_bytes, cfg.activation_bytes
        prev_gate = None
        for t in range(layer.mvms_per_inference):
            gate = self.new("G", f"{name} gates t{t}", layer=name, band=t,
                            gdu_time_s=cfg.gdu_time_s(hidden))
            gate.counts = {"global_digital_op": GATE_OPS[layer.op] * hidden}
            for job, e in self.band_ents[(name, t)]:
                if job.home:
                    self.message(e, self.pos_of(job), self.gdu_pos,
                                 job.cols_used * ps_b, "psum", dsts=[gate])
            if prev_gate is not None:
                self.local(prev_gate, gate)
                for job, e in self.band_ents[(name, t)]:
                    h_rows = _h_rows(layer, job, in_feats)
                    self.message(prev_gate, self.gdu_pos, self.pos_of(job), h_rows * act_b,
                                 "h", dsts=[e])
            prev_gate = gate
        self.holders[name] = [Holder(prev_gate.index, self.gdu_pos, (0.0, 1.0), 0, 1.0)]
        self.gdu_ents[name] = prev_gate

    def digital_node(self, n: str, kind: str) -> None:
        """A node on the global unit ("G") or the host ("H")."""
        a, cfg = self.a, self.cfg
        node = a.desc.nodes[n]
        if kind == "G":
            outputs = 0.0 if is_view(node) else _size(a.shapes[n])
            e = self.new("G", n, layer=n, gdu_time_s=cfg.gdu_time_s(outputs))
            e.counts = {"global_digital_op": node_ops(node, a.shapes)}
            pos = self.gdu_pos
        else:
            e = self.new("H", n, layer=n)
            pos = self.io_pos
        self.gdu_ents[n] = e
        self.holders[n] = [Holder(e.index, pos, (0.0, 1.0), 0, 1.0, offchip=kind == "H")]

    def relay(self, v: str) -> None:
        """Off-chip activations: the host collects value ``v`` from its holders."""
        h = self.new("H", f"host {v}", layer=v)
        for src in self.holders[v]:
            nbytes = self.value_bytes(v, src) * (src.out_iv[1] - src.out_iv[0])
            self.message(self.ents[src.entity], src.pos, (src.pos[0], self.floor.io), nbytes,
                         "host", dsts=[h], to_io=True)
        self.holders[v] = [Holder(h.index, self.io_pos, (0.0, 1.0), 0, 1.0, offchip=True)]

    # -- step 7: messages --------------------------------------------------------------------
    def value_bytes(self, v: str, h: Holder) -> float:
        """Bytes of value ``v`` that holder ``h`` holds for its band (all channels)."""
        size = _size(self.a.shapes[v]) * self.cfg.activation_bytes
        vb = self.bands.get(v)
        if vb is not None and vb.count > 1:
            size *= vb.rows_of(h.band) / max(1, vb.rows)
        return size * h.share

    def sources(self, v: str) -> list[Holder]:
        if v in self.holders:
            return self.holders[v]
        return [Holder(self.src.index, self.io_pos, (0.0, 1.0), 0, 1.0, offchip=True)]

    def reads_of_layer(self, layer: LayerDesc) -> None:
        name = layer.name
        rec = layer.op in RECURRENT
        a = self.a
        lb = self.bands[name]
        in_feats = int(layer.attrs.get("input_size", 0)) if rec else 0
        for v in external_inputs(a, name):
            for h in self.sources(v):
                for job in [j for j in self.jobs if j.layer == name]:
                    waiting: list[Entity] = []
                    bands_of_job = sorted({e.band for j2, e in self._job_entities(job)})
                    for band in bands_of_job:
                        if rec and band:
                            continue
                        rng = None if rec else needed_bands(a, self.bands, layer, band, v)
                        if rng is None or rng[0] <= h.band <= rng[1]:
                            waiting += [e for j2, e in self.band_ents[(name, band)]
                                        if j2 is job]
                    if not waiting:
                        continue
                    if rec:
                        xr = _x_rows(layer, job, in_feats)
                        nbytes = self.value_bytes(v, h) * xr / max(1, in_feats)
                    else:
                        nbytes = self.value_bytes(v, h) * _overlap(h.out_iv, job.in_iv)
                        if lb.count < self.reps[name]:  # copies split each band's vectors
                            w = waiting[0]
                            nbytes *= w.n_mvm / max(1, lb.mvms[w.band])
                    self.message(self.ents[h.entity], h.pos, self.pos_of(job), nbytes, "act",
                                 dsts=waiting, from_io=h.offchip, layer=name)

    def _job_entities(self, job: Job) -> list[tuple[Job, Entity]]:
        out = []
        for (layer, _band), ents in self.band_ents.items():
            if layer == job.layer:
                out += [(j, e) for j, e in ents if j is job]
        return out

    def reads_of_node(self, n: str) -> None:
        e = self.gdu_ents[n]
        pos = self.gdu_pos if e.kind == "G" else self.io_pos
        for v in self.a.desc.nodes[n].inputs:
            if v in self.gdu_ents and self.holders[v][0].entity == self.gdu_ents[v].index \
                    and self.ents[self.gdu_ents[v].index].kind == e.kind:
                self.local(self.gdu_ents[v], e)
                continue
            for h in self.sources(v):
                nbytes = self.value_bytes(v, h) * (h.out_iv[1] - h.out_iv[0])
                if e.kind == "H":
                    if h.offchip:
                        self.local(self.ents[h.entity], e)
                    else:
                        self.message(self.ents[h.entity], h.pos, (h.pos[0], self.floor.io),
                                     nbytes, "host", dsts=[e], to_io=True)
                else:
                    self.message(self.ents[h.entity], h.pos, pos, nbytes, "act", dsts=[e],
                                 from_io=h.offchip)

    def outputs(self, values: list[str]) -> None:
        for v in values:
            for h in self.sources(v):
                src = self.ents[h.entity]
                if self.preloaded or h.offchip:
                    self.local(src, self.sink)
                    continue
                nbytes = self.value_bytes(v, h) * (h.out_iv[1] - h.out_iv[0])
                self.message(src, h.pos, (h.pos[0], self.floor.io), nbytes, "out",
                             dsts=[self.sink], to_io=True)
        if self.sink.n_in == 0:
            self.local(self.src, self.sink)


def _x_rows(layer: LayerDesc, job: Job, in_feats: int) -> int:
    """Rows of a recurrent array that take the input x (not the hidden state)."""
    rows = 0
    for b in job.blocks:
        if layer.op == "lstm":
            rows += max(0, min(b.r1, in_feats) - b.r0)
        elif b.key == "ih":
            rows += b.r1 - b.r0
    return rows


def _h_rows(layer: LayerDesc, job: Job, in_feats: int) -> int:
    rows = 0
    for b in job.blocks:
        if layer.op == "lstm":
            rows += max(0, b.r1 - max(b.r0, in_feats))
        elif b.key == "hh":
            rows += b.r1 - b.r0
    return rows


# -- 8. routes ---------------------------------------------------------------------------------
def route(msgs: list[Message], cfg: ChipConfig) -> tuple[list[str], list[float]]:
    """Step 8: the links every message holds (topology routes, off-chip ports between
    chips), its hops, latency and whether it leaves the chip. Links are taken in one global
    order, so no two messages wait for each other."""
    topo = cfg.topo
    io = cfg.io_node
    ids: dict[tuple, int] = {}
    names: list[str] = []
    bws: list[float] = []

    def lid(key: tuple, label: str, bw: float) -> int:
        if key not in ids:
            ids[key] = len(names)
            names.append(label)
            bws.append(bw)
        return ids[key]

    def path(chip: int, a: int, b: int) -> list[int]:
        nodes = topo.route(a, b)
        return [lid(("l", chip, u, v), f"c{chip}:{u}->{v}", cfg.link_bandwidth_Bps)
                for u, v in itertools.pairwise(nodes)]

    for m in msgs:
        (sc, sn), (dc, dn) = m.src_pos, m.dst_pos
        hops: list[int] = []
        ports: list[int] = []
        if m.from_io and m.to_io:
            pass
        elif m.from_io:
            ports.append(lid(("in", dc), f"chip{dc} I/O in", cfg.io_bandwidth_Bps))
            hops += path(dc, io, dn)
        elif m.to_io:
            hops += path(sc, sn, io)
            ports.append(lid(("out", sc), f"chip{sc} I/O out", cfg.io_bandwidth_Bps))
        elif sc != dc:
            hops += path(sc, sn, io)
            ports.append(lid(("out", sc), f"chip{sc} I/O out", cfg.io_bandwidth_Bps))
            ports.append(lid(("in", dc), f"chip{dc} I/O in", cfg.io_bandwidth_Bps))
            hops += path(dc, io, dn)
        else:
            hops += path(sc, sn, dn)
        m.links = tuple(sorted(hops + ports))
        m.hops = len(hops)
        m.offchip = bool(ports)
        m.latency_s = len(hops) * cfg.hop_latency_s + (cfg.io_latency_s if ports else 0.0)
    return names, bws


# -- the builder -------------------------------------------------------------------------------
def build_plan(desc: NetworkDescription, cfg: ChipConfig, *, tile: Any = None, chips: int = 1,
               layers: list[str] | None = None, replicate: Any = None,
               placement: str = "greedy", streaming: bool = True,
               activations: str = "on-chip", preloaded: bool = False) -> Plan:
    """Compile ``desc`` (or the subset ``layers`` of its weight layers, the rest being read
    from and written to off-chip memory) into a :class:`Plan` on ``chips`` chips."""
    if placement not in PLACEMENTS:
        raise ConfigError(f"placement = {placement!r}; allowed: {list(PLACEMENTS)}")
    if activations not in ACTIVATION_MODES:
        raise ConfigError(f"activations = {activations!r}; allowed: {list(ACTIVATION_MODES)}")
    tile = tile or desc.tile
    if tile.adc_bits is None:
        raise ConfigError(f"tile {tile.name!r} has an unquantized ADC (adc_bits = None): its "
                          "conversion energy and time are undefined on a chip")
    cfg.energy[f"adc_conversion_{tile.adc_bits}b"]  # a clear error if the table lacks it
    offchip = activations == "off-chip"
    a = analyse(desc, activations)                                   # 1
    bands = make_bands(a, streaming and not offchip)                 # 2
    all_layers = [la.name for la in desc.layers]
    layers = all_layers if layers is None else [n for n in all_layers if n in layers]
    capacity = chips * cfg.cores
    reps = choose_replicas(desc, replicate, capacity, layers)        # 3
    need = sum(desc.nodes[n].arrays * reps[n] for n in layers)
    if need > capacity:
        raise ConfigError(f"network {desc.name!r} needs {need} cores (one {tile.rows}x"
                          f"{tile.cols} array per core) but {chips} chip(s) of {cfg.name!r} "
                          f"have {capacity}")
    jobs = make_jobs(desc, reps)                                     # 4
    floor = Floor(cfg, chips)
    place(jobs, a, floor, placement)                                 # 5
    b = _Builder(a, cfg, tile, floor, bands, jobs, reps, layers, preloaded, 0)
    inside = set(layers)
    first_segment = bool(layers) and layers[0] == all_layers[0]
    for name in layers:                                              # 6
        b.weight_layer(desc.nodes[name])
    owner = _owners(a, all_layers)
    offsite = [n for n, s in a.site.items() if s is not None and s[0] in ("gdu", "host")
               and not isinstance(desc.nodes[n], LayerDesc)
               and (owner.get(n) in inside if owner.get(n) else first_segment)]
    for n in offsite:
        b.digital_node(n, "H" if a.site[n] == ("host",) else "G")
    if offchip:
        for v in list(b.holders):
            s = a.site[v]
            if s[0] == "out" and any(a.site.get(c) != s for c in a.consumers[v]):
                b.relay(v)
    for name in layers:                                              # 7
        b.reads_of_layer(desc.nodes[name])
    for n in offsite:
        b.reads_of_node(n)
    leaving = set()
    if desc.output in b.holders:
        leaving.add(desc.output)
    for n, node in desc.nodes.items():
        if n in b.holders or n in offsite or node.op == "input":
            continue
        s = a.site[n]
        consumed_inside = s is not None and s[0] in ("in", "out") and s[1] in inside
        for v in node.inputs:
            if v in b.holders and not consumed_inside:
                leaving.add(v)
    b.outputs(sorted(leaving))
    names, bws = route(b.msgs, cfg)                                  # 8
    for e in b.ents:
        e.counts = {k: float(v) for k, v in e.counts.items() if v}
    placement_out: dict[str, list[int]] = {n: [] for n in layers}
    for j in jobs:
        placement_out[j.layer].append(j.core)
    util = {n: desc.nodes[n].utilization for n in layers}
    warnings = _buffer_warnings(cfg, b.msgs, b.ents)
    first = [e.index for e in b.ents if e.n_in == 0]
    return Plan(desc.name, b.ents, b.msgs, sorted({j.core for j in jobs}), chips,
                placement_out, reps, b.ops_total, names, bws, warnings, list(a.notes), first,
                b.sink.index, layers, {n: bands[n].count for n in layers}, util)


def _owners(a: Analysis, all_layers: list[str]) -> dict[str, str | None]:
    """The weight layer after which a global-unit or host node can run (its latest
    producer), so that re-programming segments run it with the right group."""
    out: dict[str, str | None] = {}
    for n, node in a.desc.nodes.items():
        if isinstance(node, LayerDesc):
            out[n] = n
            continue
        best = None
        for i in node.inputs:
            s = a.site[i]
            o = s[1] if s[0] in ("out", "in") else out.get(i)
            if o is not None and (best is None or all_layers.index(o) > all_layers.index(best)):
                best = o
        out[n] = best
    return out


def _buffer_warnings(cfg: ChipConfig, msgs: list[Message], ents: list[Entity]) -> list[str]:
    incoming: dict[int, float] = {}
    for m in msgs:
        for d in m.dsts:
            core = ents[d].core
            if core >= 0 and m.kind == "act":
                incoming[core] = incoming.get(core, 0.0) + m.nbytes / max(1, len(m.dsts))
    out = []
    for core, nbytes in sorted(incoming.items()):
        if nbytes > cfg.input_buffer_bytes:
            out.append(f"core {core}: {nbytes:.0f} B of inputs per inference exceed its "
                       f"{cfg.input_buffer_bytes:.0f} B input buffer (assumed streamed)")
    return out


def peak_plan(cfg: ChipConfig, mvms_per_core: int, tile: Any = None, cores: int | None = None,
              *, post_process: bool = True) -> Plan:
    """Back-to-back full-array MVMs on every core, inputs already in the cores' buffers:
    the workload of a chip's peak-throughput measurement. ``post_process=False``: the
    outputs stay as ADC values (HERMES' Table I MVM row measures array, ADCs and PWM only)."""
    tile = tile or cfg.tile
    cores = cfg.cores if cores is None else cores
    if not (isinstance(cores, int) and 1 <= cores <= cfg.cores):
        raise ConfigError(f"cores = {cores!r} must be an integer in [1, {cfg.cores}]")
    if not (isinstance(mvms_per_core, int) and mvms_per_core >= 1):
        raise ConfigError(f"mvms_per_core = {mvms_per_core!r} must be an integer >= 1")
    if tile.adc_bits is None:
        raise ConfigError("the peak benchmark needs a quantized ADC (adc_bits)")
    adc_key = f"adc_conversion_{tile.adc_bits}b"
    cfg.energy[adc_key]
    phases = cfg.phases(tile)
    s = cfg.weight_slices
    rows, cols = tile.rows, tile.cols
    items = cols * (phases * s if cfg.ldpu_accumulates else 1) if post_process else 0
    ops_out = (cfg.affine_ops_per_output * cols + items - cols) if post_process else 0
    ents = [Entity(0, "I", "start"), Entity(1, "O", "done")]
    n = mvms_per_core
    for c in range(cores):
        e = Entity(len(ents), "A", "mvm", layer="mvm", core=c, n_mvm=n,
                   mvm_time_s=cfg.mvm_time_s(tile), ldpu_time_s=items * cfg.ldpu_item_s,
                   item_time_s=cfg.ldpu_item_s)
        e.counts = {"dac_conversion": n * phases * rows * s,
                    "array_cell_read": n * phases * rows * cols * s
                    * cfg.read_window_factor(tile),
                    adc_key: n * phases * cols * s, "mvm_overhead": n * s,
                    "local_digital_op": n * ops_out,
                    "buffer_byte": n * (rows + cols) * cfg.activation_bytes}
        e.counts = {k: float(v) for k, v in e.counts.items() if v}
        e.ops = 2.0 * rows * cols * n
        ents[0].local.append(e.index)
        e.n_in = 1
        e.local.append(1)
        ents[1].n_in += 1
        ents.append(e)
    ops = sum(e.ops for e in ents)
    return Plan("peak", ents, [], list(range(cores)), 1, {"mvm": list(range(cores))},
                {"mvm": 1}, ops, [], [], [], [], [0], 1, ["mvm"], {"mvm": 1}, {"mvm": 1.0})
