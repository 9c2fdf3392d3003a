"""From a mapped network to a plan the scheduler runs: jobs on cores, digital work, messages.

The plan knows timing and counts, never conductances. It reads from the MappedNetwork only
layer names, block shapes, MVMs per inference, the dataflow of the graph and the activation
sizes.

Where digital work runs (a *site* per graph node):

- a weight layer W computes on the cores of its blocks; its outputs end on the *home* cores
  (row block 0 of each column block), which add the partial sums of the other row blocks;
- single-input digital nodes that follow a weight layer (activation, pooling, flatten, …) run
  on W's home cores, *producer side* (pooling before sending cuts traffic); an activation
  right after W is fused into the per-MVM post-processing of the local digital unit;
- multi-input nodes (residual add) and nodes that depend on them run on the cores of the one
  weight layer that consumes them (*consumer side*, before its MVMs), or on the global
  digital units when several layers or the network output need them;
- recurrent layers (LSTM/GRU) run their MVMs on cores and their gates on the global units,
  one time step after the other.

Data movement: every value a site needs travels as messages from the cores (or global
unit, or I/O port) where it lives to the cores that read it. A producer's home holds the
channel interval of its column block (and, when the layer is replicated, the spatial share
of its replica); a reader block needs the channel interval of its rows. A message carries
size · (channel overlap) · (spatial overlap) bytes.

Counts per MVM of a block of r used rows and c used columns, with P phases (bit cycles) and
S weight slices: r·P·S DAC line drives, r·c·P·S cell reads, c·P·S ADC conversions (lines and
converters of unused rows and columns are taken as gated off), c·(affine + fused activation +
P·S − 1) local digital ops, and r + c activations (partial sums) through the core's buffers.

Pipelining is per layer and inference: a job starts when all its inputs for that inference
have arrived (no line-buffer streaming inside an inference, so the latency is an upper
bound); successive inferences overlap on different layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memsim.chip.card import ChipConfig
from memsim.crossbar.config import TileConfig
from memsim.mapping.graph import WEIGHT_OPS, Graph, Node
from memsim.mapping.network import MappedNetwork

__all__ = ["Entity", "Message", "Plan", "build_plan", "count_cores", "peak_plan"]

ACTS = ("relu", "tanh", "sigmoid", "gelu", "identity")
RECURRENT = ("lstm", "gru")
# global-unit ops per hidden unit and time step (gate bias adds, sigmoid/tanh as 4-op
# piecewise approximations, state update): a memsim estimate
GATE_OPS = {"lstm": 28, "gru": 24}
FIT_MODES = ("error", "multi-chip", "reprogram")
PLACEMENTS = ("greedy", "snake", "row-major")


def node_ops(node: Node, shapes: dict[str, tuple[int, ...]]) -> float:
    """Digital operations of one non-weight node per inference (per-element counts)."""
    out = float(np.prod(shapes[node.name])) if node.name in shapes else 0.0
    op = node.op
    if op in ("relu",):
        return out
    if op in ("tanh", "sigmoid", "gelu", "softmax"):
        return 4.0 * out  # piecewise/LUT approximation: ~4 ops per element (estimate)
    if op == "batchnorm":
        return 2.0 * out
    if op in ("maxpool2d", "avgpool2d"):
        k = node.attrs["kernel"]
        kh, kw = (k, k) if np.isscalar(k) else k
        return out * (kh * kw - (1 if op == "maxpool2d" else 0))
    if op == "global_avgpool":
        return float(np.prod(shapes[node.inputs[0]])) + out
    if op == "add":
        return out
    if op == "external":
        return out  # unknown function: 1 op per output element (reported)
    return 0.0  # identity, flatten, last_step, input


@dataclass
class Message:
    """One transfer per inference: ``nbytes`` from ``src`` to entity ``dst``."""

    src: tuple[int, int, int]  # (chip, row, col)
    dst_pos: tuple[int, int, int]
    dst: int  # entity index that waits for it
    nbytes: float
    kind: str  # "act", "psum", "in", "out", "h"
    from_io: bool = False
    to_io: bool = False
    late: bool = False  # awaited by a running job (partial sums), not needed to start it
    links: tuple[int, ...] = ()
    time_s: float = 0.0
    mesh_hops: int = 0
    offchip: bool = False


@dataclass
class Entity:
    """A unit of per-inference work: kind "A" (a core: digital pre-work, MVMs with their
    post-processing, and at a home the partial sums of the other row blocks and the digital
    chain), "G" (global unit), "I" (inputs from I/O), "O" (outputs done)."""

    index: int
    kind: str
    label: str
    layer: str = ""
    core: int = -1  # physical core index (chip · cores + local)
    n_mvm: int = 0
    mvm_time_s: float = 0.0
    post_time_s: float = 0.0  # local digital unit time per MVM (pipelined behind the array)
    pre_time_s: float = 0.0
    chain_time_s: float = 0.0
    late_time_s: float = 0.0  # after the late messages (partial sums) have arrived
    gdu_time_s: float = 0.0
    chip: int = 0
    n_in: int = 0
    n_late: int = 0
    msgs: list[int] = field(default_factory=list)
    local: list[int] = field(default_factory=list)  # successors without a message
    counts: dict[str, float] = field(default_factory=dict)
    ops: float = 0.0  # arithmetic ops (2 per MAC) of its MVMs


def pipeline_time(n: int, a: float, d: float) -> float:
    """n MVMs through array (a each) then local digital unit (d each), pipelined."""
    if n <= 0:
        return 0.0
    return a + d + (n - 1) * max(a, d)


@dataclass
class Job:
    """One block of one weight layer (one replica, one matrix) on one core."""

    layer: str
    op: str
    replica: int
    matrix: str
    r0: int
    r1: int
    c0: int
    c1: int
    R: int
    C: int
    n_mvm: int
    in_ch: tuple[float, float]
    out_ch: tuple[float, float]
    sp: tuple[float, float]
    home_key: tuple
    core: int = -1


@dataclass
class Plan:
    """Everything the scheduler needs, plus what the report shows."""

    name: str
    entities: list[Entity]
    messages: list[Message]
    cores_used: list[int]
    chips: int
    placement: dict[str, list[int]]  # layer -> physical cores (jobs' order)
    replicas: dict[str, int]
    ops_per_inference: float
    n_links: int
    link_names: list[str]
    warnings: list[str]
    notes: list[str]
    first_entities: list[int]  # entities with no inputs (started at admission)
    sink: int  # the "O" entity
    layers: list[str] = field(default_factory=list)

    def cores_needed(self) -> int:
        return len(self.cores_used)


# -- graph analysis ---------------------------------------------------------------------------
@dataclass
class _Analysis:
    graph: Graph
    shapes: dict[str, tuple[int, ...]]
    site: dict[str, tuple]  # node -> ("io",) | ("out", W) | ("in", W) | ("gdu",)
    consumers: dict[str, list[str]]
    fused: dict[str, str]  # weight layer -> fused activation node
    notes: list[str]


def analyse(net: MappedNetwork) -> _Analysis:
    g = net.graph
    shapes = dict(net.shapes)
    shapes.setdefault("input", g.input_shape)
    consumers: dict[str, list[str]] = {n: [] for n in g.nodes}
    for n in g.nodes.values():
        for i in n.inputs:
            consumers[i].append(n.name)
    site: dict[str, Any] = {}
    for n in g.nodes.values():
        if n.op == "input":
            site[n.name] = ("io",)
        elif n.op in WEIGHT_OPS:
            site[n.name] = ("gdu",) if n.op in RECURRENT else ("out", n.name)
        elif len(n.inputs) == 1 and site[n.inputs[0]] is not None \
                and site[n.inputs[0]][0] in ("out", "gdu"):
            site[n.name] = site[n.inputs[0]]
        else:
            site[n.name] = None
    for name in reversed(list(g.nodes)):
        if site[name] is not None:
            continue
        targets = set()
        if name == g.output:
            targets.add(("gdu",))
        for c in consumers[name]:
            if g.nodes[c].op in WEIGHT_OPS:
                targets.add(("in", c))
            else:
                targets.add(site[c])
        site[name] = targets.pop() if len(targets) == 1 and None not in targets \
            else ("gdu",)
        if site[name][0] == "out":  # pragma: no cover - cannot happen by construction
            site[name] = ("gdu",)
    fused = {}
    for n in g.nodes.values():
        if n.op in WEIGHT_OPS and n.op not in RECURRENT and len(consumers[n.name]) == 1:
            c = g.nodes[consumers[n.name][0]]
            if c.op in ACTS and site[c.name] == ("out", n.name):
                fused[n.name] = c.name
    notes = []
    ext = [n.name for n in g.nodes.values() if n.op == "external"]
    if ext:
        notes.append(f"digital work of external nodes {ext} estimated as 1 op per output "
                     "element")
    return _Analysis(g, shapes, site, consumers, fused, notes)


def _size(a: _Analysis, node: str) -> float:
    return float(np.prod(a.shapes[node]))


def _overlap(x: tuple[float, float], y: tuple[float, float]) -> float:
    return max(0.0, min(x[1], y[1]) - max(x[0], y[0]))


# -- placement ---------------------------------------------------------------------------------
def _positions(cfg: ChipConfig, chips: int, order: str) -> list[tuple[int, int, int]]:
    out = []
    for ch in range(chips):
        for r in range(cfg.grid_rows):
            cols = range(cfg.grid_cols)
            if order == "snake" and r % 2:
                cols = reversed(cols)
            out.extend((ch, r, c) for c in cols)
    return out


def _distance(cfg: ChipConfig, pos: np.ndarray, a: tuple[int, int, int]) -> np.ndarray:
    """Hop distance from every position (n, 3) to ``a``, through the I/O ports across chips."""
    ir, ic = cfg.io_position
    same = np.abs(pos[:, 1] - a[1]) + np.abs(pos[:, 2] - a[2])
    cross = (np.abs(pos[:, 1] - ir) + np.abs(pos[:, 2] - ic) + abs(a[1] - ir) + abs(a[2] - ic)
             + 4 * (cfg.grid_rows + cfg.grid_cols) * np.abs(pos[:, 0] - a[0]))
    return np.where(pos[:, 0] == a[0], same, cross)


# -- the builder -------------------------------------------------------------------------------
def count_cores(net: MappedNetwork, layers: list[str] | None = None) -> int:
    """Cores (one array per core) the weight layers need without replication."""
    return sum(lm.tiles for lm in net.layers if layers is None or lm.name in layers)


def _replicas(net: MappedNetwork, cfg: ChipConfig, replicate: Any, capacity: int,
              layers: list[str], mvm_time: float) -> dict[str, int]:
    by_name = {lm.name: lm for lm in net.layers}
    reps = {name: 1 for name in layers}
    if replicate in (None, "none", False, 1):
        return reps
    if isinstance(replicate, dict):
        for name, k in replicate.items():
            if name not in reps:
                raise ValueError(f"replicate: {name!r} is not a weight layer of the network; "
                                 f"layers: {layers}")
            if not (isinstance(k, int) and k >= 1):
                raise ValueError(f"replicate[{name!r}] = {k!r} must be an integer >= 1")
            if by_name[name].op in RECURRENT and k > 1:
                raise ValueError(f"replicate: recurrent layer {name!r} cannot be replicated "
                                 "(its time steps are sequential)")
            reps[name] = min(k, by_name[name].mvms_per_inference)
        return reps
    if replicate != "auto":
        raise ValueError(f"replicate = {replicate!r}; allowed: None, 'auto' or a dict "
                         "{layer: copies}")
    spare = capacity - sum(by_name[n].tiles for n in layers)
    # the pipeline stage time of a layer is its MVMs per copy: copy the slowest layer while
    # its tiles fit in the spare cores and it is the bottleneck (not a recurrent layer)
    while True:
        cand = [n for n in layers if by_name[n].op not in RECURRENT
                and reps[n] < by_name[n].mvms_per_inference]
        if not cand:
            break
        worst = max(cand, key=lambda n: math.ceil(by_name[n].mvms_per_inference / reps[n]))
        slowest = max(math.ceil(by_name[n].mvms_per_inference / reps[n]) for n in layers)
        if math.ceil(by_name[worst].mvms_per_inference / reps[worst]) < slowest:
            break  # the bottleneck cannot be copied: more copies elsewhere gain nothing
        if by_name[worst].tiles > spare:
            break
        reps[worst] += 1
        spare -= by_name[worst].tiles
    return reps


def build_plan(net: MappedNetwork, cfg: ChipConfig, *, chips: int = 1,
               layers: list[str] | None = None, replicate: Any = None,
               placement: str = "greedy", tile: TileConfig | None = None) -> Plan:
    """Compile ``net`` (or the subset ``layers`` of its weight layers, the rest being read
    from and written to off-chip memory) into a :class:`Plan` on ``chips`` chips."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement = {placement!r}; allowed: {list(PLACEMENTS)}")
    tile = tile or net.tile_config
    a = analyse(net)
    g = a.graph
    by_name = {lm.name: lm for lm in net.layers}
    all_layers = [lm.name for lm in net.layers]
    layers = all_layers if layers is None else [n for n in all_layers if n in layers]
    inside_w = set(layers)
    capacity = chips * cfg.cores
    mvm_time = cfg.mvm_time_s(tile)
    phases = cfg.phases(tile)
    slices = cfg.weight_slices
    window = cfg.read_window_factor(tile)
    reps = _replicas(net, cfg, replicate, capacity, layers, mvm_time)
    need = sum(by_name[n].tiles * reps[n] for n in layers)
    if need > capacity:
        raise ValueError(f"network {g.name!r} needs {need} cores (one {tile.rows}x{tile.cols} "
                         f"array per core) but {chips} chip(s) of {cfg.name!r} have "
                         f"{capacity}")
    adc_key = f"adc_conversion_{tile.adc_bits}b" if tile.adc_bits else None
    if adc_key is None:
        raise ValueError(f"tile {tile.name!r} has an unquantized ADC (adc_bits = None): its "
                         "conversion energy and time are undefined on a chip")
    cfg.energy[adc_key]  # clear error if the table lacks this width

    first_segment = bool(layers) and layers[0] == all_layers[0]

    # which digital nodes belong to this plan (re-programming runs layer groups in turn)
    def inside(node: str) -> bool:
        s = a.site[node]
        if s[0] in ("out", "in"):
            return s[1] in inside_w
        if s[0] == "io":
            return False
        owner = _gdu_owner(node)  # a global-unit node runs with its latest producer
        return owner in inside_w if owner is not None else first_segment

    owner_cache: dict[str, str | None] = {}

    def _gdu_owner(node: str) -> str | None:
        """The weight layer after which a global-unit node can run (its latest producer)."""
        if node in owner_cache:
            return owner_cache[node]
        n = g.nodes[node]
        if n.op in WEIGHT_OPS:
            owner_cache[node] = node
            return node
        best = None
        for i in n.inputs:
            s = a.site[i]
            o = s[1] if s[0] in ("out", "in") else (_gdu_owner(i) if s[0] == "gdu" else None)
            if o is not None and (best is None or all_layers.index(o) > all_layers.index(best)):
                best = o
        owner_cache[node] = best
        return best

    # -- jobs ----------------------------------------------------------------------------------
    jobs: list[Job] = []
    for name in layers:
        lm = by_name[name]
        node = g.nodes[name]
        k = reps[name]
        m_total = lm.mvms_per_inference
        bounds = np.linspace(0.0, 1.0, k + 1)
        groups = len(lm.matrices)
        rec = node.op in RECURRENT
        for rep in range(k):
            n_mvm = m_total // k + (1 if rep < m_total % k else 0)
            sp = (float(bounds[rep]), float(bounds[rep + 1]))
            for gi, mm in enumerate(lm.matrices):
                R, C = mm.shape
                for b in mm.blocks:
                    if rec:
                        in_ch, out_ch = (0.0, 1.0), (0.0, 1.0)
                    else:
                        in_ch = ((gi + b.r0 / R) / groups, (gi + b.r1 / R) / groups)
                        out_ch = ((gi + b.c0 / C) / groups, (gi + b.c1 / C) / groups)
                    jobs.append(Job(name, node.op, rep, mm.key, b.r0, b.r1, b.c0, b.c1, R, C,
                                    n_mvm, in_ch, out_ch, sp, (name, rep, mm.key, b.c0)))
    # order within a layer: home (r0 = 0) first for each column block
    home_of: dict[tuple, int] = {}
    for j, job in enumerate(jobs):
        if job.r0 == 0:
            home_of[job.home_key] = j

    # -- placement -------------------------------------------------------------------------------
    pos_list = _positions(cfg, chips, "row-major" if placement == "row-major" else "snake")
    pos = np.array(pos_list)
    free = np.ones(len(pos), dtype=bool)
    core_of_pos = {p: p[0] * cfg.cores + p[1] * cfg.grid_cols + p[2] for p in pos_list}
    pos_of_core = {v: k for k, v in core_of_pos.items()}
    io_pos = (0, *cfg.io_position)
    layer_anchor: dict[str, list[tuple[int, int, int]]] = {}
    order_bias = np.arange(len(pos)) * 1e-6

    def anchors_for(name: str) -> list[tuple[int, int, int]]:
        out = []
        for v in _ext_inputs(name):
            s = a.site[v]
            if s[0] == "out" and s[1] in layer_anchor:
                out += layer_anchor[s[1]]
            elif s[0] == "gdu":
                out.append((0, *cfg.gdu_position))
            else:
                out.append(io_pos)
        return out or [io_pos]

    ext_cache: dict[str, list[str]] = {}

    def _ext_inputs(name: str) -> list[str]:
        """Values read from outside the consumer-side set of weight layer ``name``."""
        if name in ext_cache:
            return ext_cache[name]
        members = [n for n, s in a.site.items() if s == ("in", name)]
        mem = set(members)
        vals: list[str] = []
        for n in [*members, name]:
            for i in g.nodes[n].inputs:
                if i not in mem and i not in vals:
                    vals.append(i)
        ext_cache[name] = vals
        return vals

    by_layer: dict[str, list[int]] = {}
    for j, job in enumerate(jobs):
        by_layer.setdefault(job.layer, []).append(j)
    for name in layers:
        anchors = anchors_for(name)
        homes_placed: list[tuple[int, int, int]] = []
        for j in sorted(by_layer[name], key=lambda j: (jobs[j].replica, jobs[j].r0 != 0)):
            if placement == "greedy":
                cost = order_bias.copy()
                for an in anchors + homes_placed[:1]:
                    cost += _distance(cfg, pos, an)
                cost[~free] = np.inf
                p = int(np.argmin(cost))
            else:
                p = int(np.argmax(free))
            free[p] = False
            jobs[j].core = core_of_pos[pos_list[p]]
            if jobs[j].r0 == 0:
                homes_placed.append(pos_list[p])
        layer_anchor[name] = list(dict.fromkeys(
            pos_of_core[jobs[home_of[jobs[j].home_key]].core] for j in by_layer[name]))

    # -- entities ----------------------------------------------------------------------------
    ents: list[Entity] = []
    msgs: list[Message] = []

    def new(kind: str, label: str, **kw: Any) -> Entity:
        e = Entity(len(ents), kind, label, **kw)
        ents.append(e)
        return e

    src_ent = new("I", "inputs")
    sink = new("O", "outputs")
    ldpu_rate = cfg.ldpu_lanes * cfg.ldpu_clock_hz
    gdu_rate = cfg.gdu_lanes * cfg.gdu_clock_hz
    act_b = cfg.activation_bytes
    ps_b = cfg.partial_sum_bytes

    def add_msg(src_e: Entity, src: tuple[int, int, int], dst_e: Entity,
                dst: tuple[int, int, int], nbytes: float, kind: str, *,
                from_io: bool = False, to_io: bool = False, late: bool = False) -> None:
        if nbytes <= 0:
            return
        m = Message(src, dst, dst_e.index, nbytes, kind, from_io, to_io, late=late)
        msgs.append(m)
        src_e.msgs.append(len(msgs) - 1)
        if late:
            dst_e.n_late += 1
        else:
            dst_e.n_in += 1

    def link_local(e_from: Entity, e_to: Entity) -> None:
        e_from.local.append(e_to.index)
        e_to.n_in += 1

    # value producers: value node -> list of (entity, position, out_ch, sp) holding it
    holders: dict[str, list[tuple[Entity, tuple[int, int, int], tuple, tuple]]] = {}
    gdu_ent: dict[str, Entity] = {}
    ops_total = 0.0
    # per-core job entities for each weight layer
    layer_jobs_ents: dict[str, list[tuple[Job, Entity]]] = {}

    for name in layers:
        lm = by_name[name]
        node = g.nodes[name]
        rec = node.op in RECURRENT
        members = [n for n, s in a.site.items() if s == ("in", name)]
        pre_total = sum(node_ops(g.nodes[n], a.shapes) for n in members)
        chain = [n for n, s in a.site.items() if s == ("out", name)]
        fused = a.fused.get(name)
        chain_total = sum(node_ops(g.nodes[n], a.shapes) for n in chain if n != fused)
        fused_per_out = 1.0 if fused is None else node_ops(g.nodes[fused], a.shapes) / max(
            1.0, _size(a, fused))
        if fused is None:
            fused_per_out = 0.0
        steps = lm.mvms_per_inference if rec else 1
        jl = [jobs[j] for j in by_layer[name]]
        n_row_blocks: dict[tuple, int] = {}
        for job in jl:
            n_row_blocks[job.home_key] = n_row_blocks.get(job.home_key, 0) + 1
        per_step: list[list[tuple[Job, Entity]]] = []
        for t in range(steps):
            step_ents = []
            home_ent: dict[tuple, Entity] = {}
            for job in jl:
                rows, cols = job.r1 - job.r0, job.c1 - job.c0
                n_mvm = 1 if rec else job.n_mvm
                split = n_row_blocks[job.home_key] > 1
                post_ops_out = cfg.affine_ops_per_output + (phases * slices - 1) + (
                    0.0 if split or rec else fused_per_out)
                post = cols * post_ops_out
                share = (job.in_ch[1] - job.in_ch[0]) * (job.sp[1] - job.sp[0])
                pre = 0.0 if (rec and t) else pre_total * share
                is_home = job.r0 == 0
                out_share = (job.out_ch[1] - job.out_ch[0]) * (job.sp[1] - job.sp[0])
                chain_here = chain_total * out_share if (is_home and not split and not rec) \
                    else 0.0
                late = 0.0
                if is_home and split:  # reduce the partial sums, then activation and chain
                    late = (n_row_blocks[job.home_key] - 1) * cols * n_mvm
                    if not rec:
                        late += chain_total * out_share + fused_per_out * cols * n_mvm
                e = new("A", f"{name}" + (f" t{t}" if rec else ""), layer=name, core=job.core,
                        n_mvm=n_mvm, mvm_time_s=mvm_time, post_time_s=post / ldpu_rate,
                        pre_time_s=pre / ldpu_rate, chain_time_s=chain_here / ldpu_rate,
                        late_time_s=late / ldpu_rate, chip=job.core // cfg.cores)
                out_bytes = cols * (ps_b if split or rec else act_b)
                e.counts = {
                    "dac_conversion": n_mvm * phases * rows * slices,
                    "array_cell_read": n_mvm * phases * rows * cols * slices * window,
                    adc_key: n_mvm * phases * cols * slices,
                    "local_digital_op": n_mvm * post + pre + chain_here + late,
                    "buffer_byte": n_mvm * (rows * act_b + out_bytes),
                }
                e.ops = 2.0 * rows * cols * n_mvm
                ops_total += e.ops
                step_ents.append((job, e))
                if is_home:
                    home_ent[job.home_key] = e
            for job, e in step_ents:
                if job.r0 != 0:  # partial sums to the home, awaited after its own MVMs
                    h = home_ent[job.home_key]
                    add_msg(e, pos_of_core[job.core], h, pos_of_core[h.core],
                            (job.c1 - job.c0) * ps_b * e.n_mvm, "psum", late=True)
            if t:  # sequential time steps on the same core
                for (_, e_prev), (_, e) in zip(per_step[-1], step_ents, strict=True):
                    link_local(e_prev, e)
            per_step.append(step_ents)
        layer_jobs_ents[name] = per_step[0]
        if rec:
            hidden = g.nodes[name].params["weight_hh"].shape[1]
            in_feats = g.nodes[name].params["weight_ih"].shape[1]
            prev_gate = None
            for t in range(steps):
                gate = new("G", f"{name} gates t{t}", layer=name,
                           gdu_time_s=GATE_OPS[node.op] * hidden / gdu_rate, chip=0)
                gate.counts = {"global_digital_op": GATE_OPS[node.op] * hidden}
                for job, e in per_step[t]:
                    if job.r0 == 0:
                        add_msg(e, pos_of_core[job.core], gate, (0, *cfg.gdu_position),
                                (job.c1 - job.c0) * ps_b, "psum")
                if prev_gate is not None:
                    link_local(prev_gate, gate)
                    # h_{t-1} back to the blocks whose rows hold the recurrent part
                    for job, e in per_step[t]:
                        h_rows = _h_rows(node, job, in_feats)
                        add_msg(prev_gate, (0, *cfg.gdu_position), e, pos_of_core[job.core],
                                h_rows * act_b, "h")
                prev_gate = gate
            holders[name] = [(prev_gate, (0, *cfg.gdu_position), (0.0, 1.0), (0.0, 1.0))]
            gdu_ent[name] = prev_gate
            continue
        hl = []
        for job, e in per_step[0]:
            if job.r0 == 0:
                hl.append((e, pos_of_core[job.core], job.out_ch, job.sp))
        holders[name] = hl
        for n in chain:
            holders[n] = hl

    # global-unit digital nodes of this plan
    gnodes = [n for n, s in a.site.items() if s == ("gdu",) and g.nodes[n].op not in WEIGHT_OPS
              and inside(n)]
    for n in gnodes:
        ops = node_ops(g.nodes[n], a.shapes)
        e = new("G", n, layer=n, gdu_time_s=ops / gdu_rate, chip=0)
        e.counts = {"global_digital_op": ops}
        gdu_ent[n] = e
        holders[n] = [(e, (0, *cfg.gdu_position), (0.0, 1.0), (0.0, 1.0))]
        for i in g.nodes[n].inputs:
            if i in gdu_ent and a.site[i] == ("gdu",):
                link_local(gdu_ent[i], e)

    # -- messages between sites ----------------------------------------------------------------
    def sources(v: str) -> list[tuple[Entity, tuple[int, int, int], tuple, tuple, bool]]:
        if v in holders:
            return [(*h, False) for h in holders[v]]
        return [(src_ent, io_pos, (0.0, 1.0), (0.0, 1.0), True)]  # from off-chip memory

    sent_out: set[str] = set()
    for name in layers:
        rec = g.nodes[name].op in RECURRENT
        in_feats = g.nodes[name].params["weight_ih"].shape[1] if rec else 0
        for v in _ext_inputs(name):
            size = _size(a, v) * act_b
            for src_e, spos, och, ssp, from_io in sources(v):
                for job, e in layer_jobs_ents[name]:
                    if rec:
                        xr = _x_rows(g.nodes[name], job, in_feats)
                        nbytes = _size(a, v) * act_b * xr / max(1, in_feats)
                    else:
                        nbytes = size * _overlap(och, job.in_ch) * _overlap(ssp, job.sp)
                    add_msg(src_e, spos, e, pos_of_core[job.core], nbytes, "act",
                            from_io=from_io)
    for n in gnodes:
        for v in g.nodes[n].inputs:
            if v in gdu_ent and a.site[v] == ("gdu",):
                continue
            for src_e, spos, och, ssp, from_io in sources(v):
                add_msg(src_e, spos, gdu_ent[n], (0, *cfg.gdu_position),
                        _size(a, v) * act_b * (och[1] - och[0]) * (ssp[1] - ssp[0]), "act",
                        from_io=from_io)
    # values that leave the plan: the network output, and values read by later segments
    leaving = set()
    if g.output in holders:
        leaving.add(g.output)
    for n, node in g.nodes.items():
        if n in holders or n in gnodes or node.op == "input":
            continue
        for v in node.inputs:
            if v in holders and not _consumed_inside(n, a, layers, gnodes):
                leaving.add(v)
    for v in sorted(leaving):
        for src_e, spos, och, ssp, _ in sources(v):
            add_msg(src_e, spos, sink, (spos[0], *cfg.io_position),
                    _size(a, v) * act_b * (och[1] - och[0]) * (ssp[1] - ssp[0]), "out",
                    to_io=True)
            sent_out.add(v)
    if sink.n_in == 0:  # nothing leaves (cannot happen for a whole network)
        link_local(src_ent, sink)

    # -- routes --------------------------------------------------------------------------------
    link_ids: dict[tuple, int] = {}
    link_names: list[str] = []

    def lid(key: tuple, label: str) -> int:
        if key not in link_ids:
            link_ids[key] = len(link_names)
            link_names.append(label)
        return link_ids[key]

    def mesh(chip: int, r0: int, c0: int, r1: int, c1: int) -> list[int]:
        out = []
        r, c = r0, c0
        while c != c1:  # X first, then Y: deadlock-free dimension-ordered routing
            dc = 1 if c1 > c else -1
            out.append(lid(("m", chip, r, c, 0, dc), f"c{chip}:({r},{c})->({r},{c + dc})"))
            c += dc
        while r != r1:
            dr = 1 if r1 > r else -1
            out.append(lid(("m", chip, r, c, dr, 0), f"c{chip}:({r},{c})->({r + dr},{c})"))
            r += dr
        return out

    ir, ic = cfg.io_position
    for m in msgs:
        (sc, sr, scol), (dc_, dr, dcol) = m.src, m.dst_pos
        hops: list[int] = []
        ports: list[int] = []
        if m.from_io:
            ports.append(lid(("in", dc_), f"chip{dc_} I/O in"))
            hops += mesh(dc_, ir, ic, dr, dcol)
        elif m.to_io:
            hops += mesh(sc, sr, scol, ir, ic)
            ports.append(lid(("out", sc), f"chip{sc} I/O out"))
        elif sc != dc_:
            hops += mesh(sc, sr, scol, ir, ic)
            ports.append(lid(("out", sc), f"chip{sc} I/O out"))
            ports.append(lid(("in", dc_), f"chip{dc_} I/O in"))
            hops += mesh(dc_, ir, ic, dr, dcol)
        else:
            hops += mesh(sc, sr, scol, dr, dcol)
        m.links = tuple(sorted(hops + ports))  # one global order: no deadlock
        m.mesh_hops = len(hops)
        m.offchip = bool(ports)
        lat = len(hops) * cfg.hop_latency_s + (cfg.io_latency_s if ports else 0.0)
        bw = min(cfg.link_bandwidth_Bps, cfg.io_bandwidth_Bps) if ports \
            else cfg.link_bandwidth_Bps
        m.time_s = lat + m.nbytes / bw
    for e in ents:
        e.counts = {k: float(v) for k, v in e.counts.items() if v}
    # message counts are charged to the receiving entity's bookkeeping in the simulator

    placement_out: dict[str, list[int]] = {n: [] for n in layers}
    for job in jobs:
        placement_out[job.layer].append(job.core)
    warnings = _buffer_warnings(cfg, msgs, ents)
    first = [e.index for e in ents if e.n_in == 0]
    return Plan(g.name, ents, msgs, sorted({j.core for j in jobs}), chips, placement_out,
                reps, ops_total, len(link_names), link_names, warnings, list(a.notes), first,
                sink.index, layers)


def _x_rows(node: Node, job: Job, in_feats: int) -> int:
    """Rows of a recurrent block that take the input x (not the hidden state)."""
    if node.op == "lstm":
        return max(0, min(job.r1, in_feats) - job.r0)
    return job.r1 - job.r0 if job.matrix == "ih" else 0


def _h_rows(node: Node, job: Job, in_feats: int) -> int:
    if node.op == "lstm":
        return max(0, job.r1 - max(job.r0, in_feats))
    return job.r1 - job.r0 if job.matrix == "hh" else 0


def _consumed_inside(node: str, a: _Analysis, layers: list[str], gnodes: list[str]) -> bool:
    s = a.site[node]
    if node in gnodes:
        return True
    if s[0] in ("in", "out"):
        return s[1] in layers
    return False


def _buffer_warnings(cfg: ChipConfig, msgs: list[Message], ents: list[Entity]) -> list[str]:
    incoming: dict[int, float] = {}
    for m in msgs:
        core = ents[m.dst].core
        if core >= 0 and m.kind == "act":  # partial sums and recurrent state are streamed
            incoming[core] = incoming.get(core, 0.0) + m.nbytes
    out = []
    for core, nbytes in sorted(incoming.items()):
        if nbytes > cfg.input_buffer_bytes:
            out.append(f"core {core}: {nbytes:.0f} B of inputs per inference exceed its "
                       f"{cfg.input_buffer_bytes:.0f} B input buffer (assumed streamed)")
    return out


def peak_plan(cfg: ChipConfig, mvms_per_core: int, tile: TileConfig | None = None,
              cores: int | None = None) -> Plan:
    """Back-to-back full-array MVMs on every core, inputs already in the cores' buffers:
    the workload of the chip's peak-throughput measurement."""
    tile = tile or cfg.tile
    cores = cfg.cores if cores is None else cores
    if not 1 <= cores <= cfg.cores:
        raise ValueError(f"cores = {cores} must be in [1, {cfg.cores}]")
    if not (isinstance(mvms_per_core, int) and mvms_per_core >= 1):
        raise ValueError(f"mvms_per_core = {mvms_per_core!r} must be an integer >= 1")
    if tile.adc_bits is None:
        raise ValueError("the peak benchmark needs a quantized ADC (adc_bits)")
    adc_key = f"adc_conversion_{tile.adc_bits}b"
    cfg.energy[adc_key]
    phases = cfg.phases(tile)
    s = cfg.weight_slices
    rows, cols = tile.rows, tile.cols
    post = cols * (cfg.affine_ops_per_output + phases * s - 1)
    ents = [Entity(0, "I", "start"), Entity(1, "O", "done")]
    for c in range(cores):
        e = Entity(len(ents), "A", "mvm", layer="mvm", core=c, n_mvm=mvms_per_core,
                   mvm_time_s=cfg.mvm_time_s(tile),
                   post_time_s=post / (cfg.ldpu_lanes * cfg.ldpu_clock_hz))
        n = mvms_per_core
        e.counts = {"dac_conversion": n * phases * rows * s,
                    "array_cell_read": n * phases * rows * cols * s
                    * cfg.read_window_factor(tile),
                    adc_key: n * phases * cols * s, "local_digital_op": n * post,
                    "buffer_byte": n * (rows + cols) * cfg.activation_bytes}
        e.ops = 2.0 * rows * cols * n
        ents[0].local.append(e.index)
        e.n_in = 1
        e.local.append(1)
        ents[1].n_in += 1
        ents.append(e)
    ops = sum(e.ops for e in ents)
    return Plan("peak", ents, [], list(range(cores)), 1, {"mvm": list(range(cores))},
                {"mvm": 1}, ops, 0, [], [], [], [0], 1, ["mvm"])

