"""IR drop: the resistance of the row and column wires of a resistive crossbar.

Circuit of one array (R rows × C columns). Cell (i, j) is a conductance G[i, j] (S) between
row-wire node (i, j) and column-wire node (i, j). Row i is driven at its left end by an ideal
source V[i] through one wire segment r_row (Ω) into node (i, 0); row nodes (i, j) and
(i, j+1) are joined by r_row. Column j is held at virtual ground (the ADC/integrator input,
0 V) at its bottom end: node (R−1, j) reaches ground through one segment r_col, and column
nodes (i, j) and (i+1, j) are joined by r_col. The output of column j is the current I[j]
into the virtual ground. With r_row = r_col = 0 every cell sees its full input and I = V @ G.

Differential cells: a weight is G+ − G−, and the two polarities can meet the ADC in two ways
(``TOPOLOGIES``):

- ``"separate"``: each polarity has its own column wire (bit line) from its cells to the
  ADC's regulated input node. The G+ cells see +V on their row wires, the G− cells −V on
  theirs (or +V, with the current subtracted: the same thing, the network is linear), and the
  wires of one polarity carry only that polarity's currents: two independent arrays,
  I = I(G+, V) − I(G−, V). **This is the HERMES core** (Khaddam-Aljameh et al., IEEE JSSC 57,
  1027, 2022, and Le Gallo et al., Nat. Electron. 6, 680, 2023, arXiv:2212.02872): its 8T4R
  unit cell has a *bit-line pair* BL+/BL− (the G+ devices g1+, g2+ on BL+, the G− devices on
  BL−) and a *source-line pair* SL+/SL− (unit-cell and array figure of the arXiv version;
  Ext. Data Fig. 4a: BL+ and BL− carry i_BL+ and i_BL− to one ADC whose read-voltage regulator
  holds them at V_CM; source lines are switched to V+ or V− by the input sign, Le Gallo et al.,
  npj Unconv. Comput. 1, 11, 2024, Fig. 1c). Two wires meeting only at a regulated node are
  electrically two arrays.
- ``"shared"``: both polarities of a cell connect to one column wire: cell (i, j) holds G+
  between node (i, j) of a positive row wire driven at +V[i] and the column node (i, j), and
  G− between node (i, j) of a negative row wire driven at −V[i] and the same column node;
  each row wire has its own r_row segments, the column one r_col chain. The currents of the
  two polarities partly cancel on the shared column wire, so its IR drop is set by the net
  current (the generic "opposite-polarity bias, currents summed on a common node" scheme,
  Aguirre et al., Nat. Commun. 15, 2024, Fig. 8b). It is not the same as "separate": measured
  against ngspice at 32 × 32, 1 Ω, HERMES g_max, the separate solve misses ~30 % of the
  shared cell's IR-drop effect (tests/test_irdrop_spice.py).

The network is linear, so Kirchhoff's current law at the wire nodes is one sparse, symmetric
positive-definite system K x = b (modified nodal analysis, as in badcrossbar: Joksas &
Mehonic, SoftwareX 12, 100617, 2020, doi:10.1016/j.softx.2020.100617). It is solved here for
the deviations of the node voltages from their ideal values (row nodes at ±V[i], column nodes
at 0): the right-hand side is then ∓G·V, well scaled however small the wire resistance, and
I = V @ (G+ − G−) + Σ_i Σ_± G±[i, j] (δu±[i, j] − δw[i, j]) adds a small correction to the
exact ideal product. The nodal solver agrees with ngspice netlists of both topologies to
~1e-13 relative (tests/test_irdrop_spice.py).

Public functions:

- :func:`solve_exact` — the full nodal solve of one array, one sparse LU for a batch of inputs.
- :func:`solve_differential` — the same for a differential array in either topology.
- :func:`attenuation` / :func:`attenuation_differential` — per-cell factors A computed once
  per conductance matrix, for the fast approximation I ≈ V @ (G · A), or for differential
  cells I ≈ V @ (G+ · A+) − V @ (G− · A−) (one GEMM per polarity, as for an ideal array).
- :func:`approx_error_table` / :func:`differential_error_table` — how good the approximation
  is, next to ignoring IR drop (and, for differential cells, next to the other topology).

Typical numbers. NeuroSim sizes a wire segment of one cell (length 2F, width F) as
ρ·2F / (F² · AR) with the resistivity ρ and aspect ratio AR of its technology table (Chen,
Peng & Yu, IEEE TCAD 37, 3067, 2018; MLP_NeuroSim V3.0, ``Array.h``): 1.06 Ω at F = 40 nm,
1.48 Ω at 32 nm, 2.46 Ω at 22 nm, 5.05 Ω at 14 nm. The dimensionless size of the effect
is ε = r · g · N² (N cells along a wire, g the typical cell conductance): the ideal-product
error grows roughly as ε/3 while ε ≪ 1; with r = 2.5 Ω and g_max = 25 µS, ε ≈ 1 already at
N = 128.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

try:  # optional, only a speed-up (see _single_thread_blas)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from memsim.errors import ConfigError, InputError, NumericalError

__all__ = [
    "TOPOLOGIES",
    "approx_error_table",
    "attenuation",
    "attenuation_differential",
    "differential_error_table",
    "format_differential_table",
    "format_error_table",
    "solve_differential",
    "solve_exact",
]

PATTERNS = ("uniform", "random", "checkerboard")
METHODS = ("exact", "first_order")
TOPOLOGIES = ("separate", "shared")
DIFF_PATTERNS = ("random", "dense")

# Right-hand sides solved per call of the sparse LU (bounds memory to ~2·R·C·8·512 bytes).
_BATCH_CHUNK = 512
# Schur-complement PCG: relative residual (preconditioner norm) and iteration cap.
_PCG_RTOL = 1e-12
_PCG_MAXITER = 1000


# -- validation ------------------------------------------------------------------------------
def _check_g(g: np.ndarray, name: str = "conductance matrix g") -> np.ndarray:
    try:
        g = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a real array: {exc}") from None
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise InputError(f"{name} must be 2-D (rows, cols) with rows, cols >= 1, "
                         f"got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise InputError(f"{name} contains NaN or inf")
    if np.any(g < 0):
        raise InputError(f"{name} has negative conductances (min {g.min():.3g} S); "
                         "a cell conductance must be >= 0")
    return g


def _check_pair(g_pos: Any, g_neg: Any) -> tuple[np.ndarray, np.ndarray]:
    g_pos = _check_g(g_pos, "positive conductance matrix g_pos")
    g_neg = _check_g(g_neg, "negative conductance matrix g_neg")
    if g_pos.shape != g_neg.shape:
        raise InputError(f"g_pos and g_neg must have the same shape (rows, cols), got "
                         f"{g_pos.shape} and {g_neg.shape}")
    return g_pos, g_neg


def _check_topology(topology: Any) -> str:
    if topology not in TOPOLOGIES:
        raise ConfigError(f"topology must be one of {list(TOPOLOGIES)} (separate: one bit line "
                          f"per polarity, e.g. HERMES; shared: both polarities on one column "
                          f"wire), got {topology!r}")
    return topology


def _check_r(name: str, r: Any) -> float:
    try:
        value = float(r)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number (ohm), got {r!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite wire resistance >= 0 ohm, got {r!r}")
    return value


def _check_v(v: Any, rows: int, name: str = "input voltages v") -> np.ndarray:
    try:
        v = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a real array: {exc}") from None
    if v.ndim not in (1, 2) or v.shape[-1] != rows:
        raise InputError(f"{name} must have shape (batch, {rows}) or ({rows},) to match "
                         f"g with {rows} rows, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InputError(f"{name} contain NaN or inf")
    return v


# -- exact nodal solve -----------------------------------------------------------------------
def _nodal_matrix(g: np.ndarray, r_row: float, r_col: float) -> sp.csc_matrix:
    """Conductance matrix K of the wire nodes of one array (SPD); see _nodal_matrix_layers."""
    return _nodal_matrix_layers([g], r_row, r_col)


def _nodal_matrix_layers(gs: Sequence[np.ndarray], r_row: float,
                         r_col: float) -> sp.csc_matrix:
    """Conductance matrix K (SPD) of L row-wire layers sharing one column-wire layer.

    Layer k is a set of R row wires whose cell (i, j) is the conductance gs[k][i, j] to the
    column node (i, j); one layer is a plain array, two layers the shared-bit-line
    differential cell. Unknowns: the row-node voltages of layer k at index k·R·C + i·C + j if
    r_row > 0, then the column-node voltages at offset + i·C + j if r_col > 0. A zero wire
    resistance removes that kind of wire: its nodes are then fixed (row nodes at their
    drive, column nodes at 0 V), and a cell becomes a conductance to a fixed node (a diagonal
    term only).
    """
    rows, cols = gs[0].shape
    n = rows * cols
    idx = np.arange(n).reshape(rows, cols)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    offset = 0
    if r_row > 0:
        gr = 1.0 / r_row
        for g in gs:
            ridx = offset + idx
            diag = np.full((rows, cols), 2.0 * gr)
            diag[:, -1] = gr  # the last node of a row has no segment to its right
            parts.append((ridx.ravel(), ridx.ravel(), (diag + g).ravel()))
            a, b = ridx[:, :-1].ravel(), ridx[:, 1:].ravel()
            off = np.full(a.size, -gr)
            parts += [(a, b, off), (b, a, off)]
            offset += n
    if r_col > 0:
        gc = 1.0 / r_col
        cidx = offset + idx
        diag = np.full((rows, cols), 2.0 * gc)
        diag[0, :] = gc  # the top node of a column has no segment above it
        parts.append((cidx.ravel(), cidx.ravel(), (diag + sum(gs)).ravel()))
        a, b = cidx[:-1, :].ravel(), cidx[1:, :].ravel()
        off = np.full(a.size, -gc)
        parts += [(a, b, off), (b, a, off)]
        if r_row > 0:  # the cells join each row layer to the column layer
            for k, g in enumerate(gs):
                ridx = k * n + idx
                cell = -g.ravel()
                parts += [(ridx.ravel(), cidx.ravel(), cell), (cidx.ravel(), ridx.ravel(), cell)]
    size = offset + (n if r_col > 0 else 0)
    i_all = np.concatenate([p[0] for p in parts])
    j_all = np.concatenate([p[1] for p in parts])
    k_all = np.concatenate([p[2] for p in parts])
    return sp.csc_matrix((k_all, (i_all, j_all)), shape=(size, size))


def _single_thread_blas() -> contextlib.AbstractContextManager[Any]:
    """SuperLU calls BLAS once per (small) supernode; OpenBLAS threading only adds overhead
    there (measured 2–3× slower solves with 2 threads), so run it single-threaded."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _factorize(k: sp.csc_matrix) -> spla.SuperLU:
    # K is symmetric positive definite: symmetric ordering, no pivoting needed (stable).
    return spla.splu(k, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                     options={"SymmetricMode": True})


def solve_exact(g: np.ndarray, v: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """Column currents of a crossbar with wire resistance, from the full nodal analysis.

    Kirchhoff's current law at the 2·R·C wire nodes (module docstring) gives a sparse SPD
    system K x = b whose matrix depends on G and the wires only; it is built and LU-factorised
    once (SuperLU) and solved for all inputs of the batch together (in chunks of 512
    right-hand sides to bound memory). A zero wire resistance removes that wire layer from
    the system; with r_row = r_col = 0 the result is ``v @ g`` exactly.

    Args:
        g: (R, C) cell conductances in S, finite and >= 0.
        v: (batch, R) or (R,) input voltages in V (any sign) at the row drivers.
        r_row: resistance of one row-wire segment in Ω (>= 0).
        r_col: resistance of one column-wire segment in Ω (>= 0).

    Returns:
        Column currents into the virtual ground in A: (batch, C), or (C,) for a 1-D ``v``
        (the shape of ``v @ g``).

    Raises:
        InputError: g not 2-D, NaN/inf or negative in g or v, or v's last axis not of
            length R. ConfigError: negative or non-finite resistance. (Both are ValueErrors.)
    """
    g = _check_g(g)
    v = _check_v(v, g.shape[0])
    r_row = _check_r("r_row", r_row)
    r_col = _check_r("r_col", r_col)
    ideal = v @ g
    if r_row == 0 and r_col == 0:
        return ideal
    v2 = v.reshape(-1, g.shape[0])
    batch = v2.shape[0]
    if batch == 0:
        return ideal
    with _single_thread_blas():
        correction = _solve_deviation(g, v2, r_row, r_col)
    return ideal + correction.reshape(ideal.shape)


def _solve_deviation(g: np.ndarray, v2: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """Σ_i G[i, j] (δu − δw)[i, j] for every input row of v2 (batch, R): I − v @ g."""
    return _solve_deviation_layers([g], (1.0,), v2, r_row, r_col)


def _solve_deviation_layers(gs: Sequence[np.ndarray], signs: Sequence[float], v2: np.ndarray,
                            r_row: float, r_col: float) -> np.ndarray:
    """Σ_k Σ_i gs[k][i, j] (δu_k − δw)[i, j] for every input row of v2 (batch, R), row layer k
    driven at signs[k]·v: the exact column currents minus v @ Σ_k signs[k]·gs[k]."""
    rows, cols = gs[0].shape
    n = rows * cols
    batch = v2.shape[0]
    lu = _factorize(_nodal_matrix_layers(gs, r_row, r_col))
    correction = np.empty((batch, cols))
    for start in range(0, batch, _BATCH_CHUNK):  # chunks of inputs, not single inputs
        vb = v2[start:start + _BATCH_CHUNK]
        gvs = [((s * vb)[:, :, None] * g[None, :, :]).reshape(len(vb), n)
               for g, s in zip(gs, signs, strict=True)]
        # Deviations from the ideal node voltages: K δ = b − K x_ideal = [−G_k·V_k ; Σ G_k·V_k].
        rhs = [-gv for gv in gvs] if r_row > 0 else []
        if r_col > 0:
            rhs.append(sum(gvs))
        delta = lu.solve(np.asfortranarray(np.concatenate(rhs, axis=1).T))  # (unknowns, batch)
        delta = delta.T.reshape(len(vb), -1, rows, cols)
        d_col = delta[:, -1] if r_col > 0 else 0.0  # δw
        total = 0.0
        for k, g in enumerate(gs):
            d_cell = delta[:, k] if r_row > 0 else 0.0  # δu_k
            d_cell = d_cell - d_col
            # KCL over a column: the current into the virtual ground is the sum of its cells'.
            total = total + np.einsum("ij,bij->bj", g, d_cell)
        correction[start:start + len(vb)] = total
    return correction


def solve_differential(g_pos: np.ndarray, g_neg: np.ndarray, v: np.ndarray, r_row: float,
                       r_col: float, topology: str) -> np.ndarray:
    """Column output currents of a differential crossbar (weight ∝ G+ − G−) with wire
    resistance, from the full nodal analysis of the chosen cell topology.

    ``"separate"``: two arrays, each with its own row and column wires (one bit line per
    polarity, as in the HERMES 8T4R cell): I = I(G+, V) − I(G−, V), each from
    :func:`solve_exact`. ``"shared"``: both polarities on one column wire, G+ driven at +V and
    G− at −V by their own row wires, the differential current flowing into one
    virtual-ground ADC input (module docstring). Both give V @ (G+ − G−) exactly when
    r_row = r_col = 0, and they differ when the wires matter.

    Args:
        g_pos, g_neg: (R, C) conductances of the positive and negative devices in S, finite
            and >= 0 (a polarity with several devices per cell: their sum).
        v: (batch, R) or (R,) input voltages in V, any sign, as applied to the G+ devices
            (the G− devices see −v).
        r_row, r_col: resistance of one row / column wire segment (one cell pitch) in Ω.
        topology: "separate" or "shared".

    Returns:
        Column currents in A, (batch, C), or (C,) for a 1-D ``v``: the current into the
        virtual ground, positive for a net positive weight and input.

    Raises:
        InputError: bad conductances (shape, NaN/inf, negative, g_pos and g_neg differ in
            shape) or voltages. ConfigError: bad resistance or topology.
    """
    g_pos, g_neg = _check_pair(g_pos, g_neg)
    topology = _check_topology(topology)
    v = _check_v(v, g_pos.shape[0])
    r_row = _check_r("r_row", r_row)
    r_col = _check_r("r_col", r_col)
    if topology == "separate":
        return solve_exact(g_pos, v, r_row, r_col) - solve_exact(g_neg, v, r_row, r_col)
    ideal = v @ g_pos - v @ g_neg
    v2 = v.reshape(-1, g_pos.shape[0])
    if (r_row == 0 and r_col == 0) or v2.shape[0] == 0:
        return ideal
    with _single_thread_blas():
        correction = _solve_deviation_layers([g_pos, g_neg], (1.0, -1.0), v2, r_row, r_col)
    return ideal + correction.reshape(ideal.shape)


# -- attenuation -----------------------------------------------------------------------------
def _row_chain_factor(g: np.ndarray, r_row: float) -> tuple[np.ndarray, np.ndarray]:
    """LDLᵀ factors of the R row chains (one tridiagonal of size R·C, row-major)."""
    rows, cols = g.shape
    gr = 1.0 / r_row
    d = np.full((rows, cols), 2.0 * gr)
    d[:, -1] = gr
    e = np.full((rows, cols), -gr)
    e[:, -1] = 0.0  # no coupling between the end of one row and the start of the next
    df, ef, info = _pttrf((d + g).ravel(), e.ravel()[:-1])
    if info != 0:  # cannot happen for r_row > 0 and g >= 0 (SPD)
        raise NumericalError(f"row-chain factorisation failed (LAPACK dpttrf info={info})")
    return df, ef


def _col_chain_factor(g: np.ndarray, r_col: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LDLᵀ factors of the C column chains (column-major (C, R) layout) and their diagonal."""
    rows, cols = g.shape
    gc = 1.0 / r_col
    d = np.full((cols, rows), 2.0 * gc)
    d[:, 0] = gc
    d += g.T
    e = np.full((cols, rows), -gc)
    e[:, -1] = 0.0
    df, ef, info = _pttrf(d.ravel(), e.ravel()[:-1])
    if info != 0:
        raise NumericalError(f"column-chain factorisation failed (LAPACK dpttrf info={info})")
    return df, ef, d


def _pttrf(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """LAPACK dpttrf (SPD tridiagonal LDLᵀ); its wrapper rejects size 1, done here."""
    if d.size == 1:
        return d.copy(), e, 0 if d[0] > 0 else 1
    return lapack.dpttrf(d, e)


def _tri_solve(factor: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    if factor[0].size == 1:
        return x / factor[0][0]
    y, info = lapack.dpttrs(factor[0], factor[1], x.ravel())
    if info != 0:
        raise NumericalError(f"tridiagonal solve failed (LAPACK dpttrs info={info})")
    return y.reshape(x.shape)


def _cell_voltage(g: np.ndarray, r_row: float, r_col: float, v_ref: np.ndarray) -> np.ndarray:
    """Voltage across every cell of one array for one input v_ref (see _cell_voltages)."""
    return _cell_voltages([g], (1.0,), r_row, r_col, v_ref)[0]


def _cell_voltages(gs: Sequence[np.ndarray], signs: Sequence[float], r_row: float,
                   r_col: float, v_ref: np.ndarray) -> list[np.ndarray]:
    """Voltage across every cell of each row layer (driven at signs[k]·v_ref) sharing one
    column layer, for one input, by an iterative exact solve.

    Block elimination of K = [[A_k, −D_k], [−D_k, B]] (A_k: row chains of layer k + D_k,
    B: column chains + Σ_k D_k, D_k = diag(G_k)): the column-node deviations δw solve the
    Schur complement system (B − Σ_k D_k A_k⁻¹ D_k) δw = Σ_k (G_k·V_k − D_k A_k⁻¹ (G_k·V_k)),
    by conjugate gradients preconditioned with B; then δu_k = A_k⁻¹ (D_k δw − G_k·V_k).
    A_k and B are tridiagonal (LAPACK pttrf/pttrs, O(R·C) per solve). The preconditioned
    spectrum lies in (1 − ρ², 1] with ρ² = ρ(B⁻¹ Σ_k D_k A_k⁻¹ D_k) < 1, so it converges in a
    few iterations (≈ 5–10 at 256 × 256 with ε = r g N² ≈ 4).
    """
    drives = [s * v_ref for s in signs]
    gvs = [g * d[:, None] for g, d in zip(gs, drives, strict=True)]
    if r_col == 0:  # columns at 0 V: independent row chains, A_k δu_k = −G_k·V_k
        return [d[:, None] + _tri_solve(_row_chain_factor(g, r_row), -gv)
                for g, d, gv in zip(gs, drives, gvs, strict=True)]
    col_f = _col_chain_factor(sum(gs), r_col)
    col_lu = col_f[:2]
    if r_row == 0:  # rows at their drives: independent column chains, B δw = Σ_k G_k·V_k
        dw = _tri_solve(col_lu, np.ascontiguousarray(sum(gvs).T)).T
        return [d[:, None] - dw for d in drives]
    row_lus = [_row_chain_factor(g, r_row) for g in gs]
    gts = [np.ascontiguousarray(g.T) for g in gs]
    b_diag, gc = col_f[2], 1.0 / r_col

    def b_mul(x: np.ndarray) -> np.ndarray:  # B x, x in (C, R) layout
        y = b_diag * x
        y[:, 1:] -= gc * x[:, :-1]
        y[:, :-1] -= gc * x[:, 1:]
        return y

    def schur_mul(x: np.ndarray) -> np.ndarray:
        y = b_mul(x)
        for gt, row_lu in zip(gts, row_lus, strict=True):
            y = y - gt * _tri_solve(row_lu, np.ascontiguousarray((gt * x).T)).T
        return y

    def precond(x: np.ndarray) -> np.ndarray:
        return _tri_solve(col_lu, x)

    rhs = sum(gt * d[None, :] - gt * _tri_solve(row_lu, gv).T
              for gt, d, gv, row_lu in zip(gts, drives, gvs, row_lus, strict=True))
    z = precond(rhs)
    norm_rhs = math.sqrt(max(float(np.vdot(rhs, z)), 0.0))
    w = z.copy()
    res = rhs - schur_mul(w) if norm_rhs > 0 else np.zeros_like(rhs)
    z = precond(res)
    p = z.copy()
    rz = float(np.vdot(res, z))
    for _ in range(_PCG_MAXITER):
        if math.sqrt(max(rz, 0.0)) <= _PCG_RTOL * norm_rhs:
            break
        sp_ = schur_mul(p)
        alpha = rz / float(np.vdot(p, sp_))
        w += alpha * p
        res -= alpha * sp_
        z = precond(res)
        rz_new = float(np.vdot(res, z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    else:
        raise NumericalError(f"IR-drop PCG did not converge in {_PCG_MAXITER} iterations "
                             f"(residual {math.sqrt(max(rz, 0.0)) / norm_rhs:.2e})")
    return [d[:, None] + _tri_solve(row_lu, g * w.T - gv) - w.T
            for g, d, gv, row_lu in zip(gs, drives, gvs, row_lus, strict=True)]


def _cum2_down(x: np.ndarray) -> np.ndarray:
    """CC(x)[i, j] = Σ_{k≥i} Σ_{m≤k} x[m, j]: r_col·CC(injected currents) is the column-node
    voltage (currents injected at nodes m flow down to the virtual ground below row R−1).
    Its kernel R − max(i, m) is symmetric, so Σ_i b_i CC(a)_i = Σ_m a_m CC(b)_m
    (reciprocity)."""
    return np.cumsum(np.cumsum(x, axis=0)[::-1], axis=0)[::-1]


def _cum2_right(x: np.ndarray) -> np.ndarray:
    """Σ_{k≤j} Σ_{m≥k} x[i, m]: r_row times it is the sag of row node (i, j) per volt."""
    return np.cumsum(np.cumsum(x[:, ::-1], axis=1)[:, ::-1], axis=1)


def _first_order_attenuation(g: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """A = 1 − r_row S_row − r_col S_col, the O(r) term of the exact transfer matrix.

    With ideal cell currents G·V, the current in row segment k (feeding node k) is
    Σ_{m≥k} G[i, m] V[i], so node (i, j) sags by r_row V[i] S_row[i, j] with
    S_row[i, j] = Σ_{k≤j} Σ_{m≥k} G[i, m]. Column segment k (below node k) carries
    Σ_{m≤k} G[m, j] V[m]; by reciprocity its effect on I[j] is −r_col Σ_m V[m] G[m, j] S_col[m, j]
    with S_col[m, j] = Σ_{k≥m} Σ_{i≤k} G[i, j]. Both are exactly of the form V @ (G·A), for
    every input, to first order in r.
    """
    return 1.0 - r_row * _cum2_right(g) - r_col * _cum2_down(g)


def attenuation(g: np.ndarray, r_row: float, r_col: float, v_ref: np.ndarray | None = None,
                *, method: str = "exact") -> np.ndarray:
    """Per-cell attenuation A for the fast IR-drop approximation I ≈ v @ (g · A).

    Computed once per conductance matrix; applying it costs one elementwise product, and
    every later MVM is a single GEMM whatever the batch.

    ``method="exact"`` (default): A[i, j] = (voltage across cell (i, j)) / v_ref[i] from the
    exact nodal solution for the reference input v_ref (default all rows at 1 V), computed by
    block elimination and preconditioned conjugate gradients on tridiagonal wire chains
    (O(R·C) per iteration, a few iterations; ~0.1 s for 256 × 256; see ``_cell_voltage``).
    Assumptions and accuracy:

    - It is exact for every input proportional to v_ref (the network is linear, so only the
      direction of v_ref matters: a scalar v_ref, e.g. the mean input magnitude, gives the
      same A as the default).
    - For a uniform v_ref it also equals the exact transfer matrix to first order in the wire
      resistance for *every* input (reciprocity, see ``_first_order_attenuation``), so the
      residual error for other inputs is second order: with inputs uniform in [0, 0.2] V it
      is ~10⁻³ of the error of ignoring IR drop up to ε = r g N² ≈ 1 (approx_error_table).
      For a uniform array (any r_row, r_col) it is exact for every input, to rounding
      (observed, and tested); so is a checkerboard, two interleaved uniform sub-arrays.
    - What it cannot represent: the input-pattern dependence of the wire currents at second
      order (e.g. a few strongly driven rows), and the small current that flows through wires
      into a column from rows whose cell in that column is 0 S (A multiplies g). Both matter
      most for signed, zero-mean inputs, far from the all-ones direction: measured ~1 % of
      the ideal error at ε ≈ 0.26 and ~3 % at ε ≈ 1 (``approx_error_table(v_min=-0.2)``).

    ``method="first_order"``: A = 1 − r_row S_row − r_col S_col from cumulative sums of g
    (O(R·C), microseconds, no solve), the first-order term of the exact transfer matrix for
    any input. Good while ε = r g N² ≪ 1; its error grows as ε² and it overestimates the drop
    (A can even turn negative) for large arrays. It does not depend on v_ref.

    Args:
        g: (R, C) cell conductances in S, finite and >= 0.
        r_row, r_col: resistance of one row / column wire segment in Ω (>= 0).
        v_ref: reference input, (R,) or a scalar in V, finite and nonzero (default 1 V on every
            row); only for ``method="exact"``.
        method: "exact" or "first_order".

    Returns:
        A, (R, C), dimensionless; all ones exactly when r_row = r_col = 0.

    Raises:
        InputError: bad g or v_ref. ConfigError: bad resistance or method (or v_ref with
            ``method="first_order"``). Both are ValueErrors.
    """
    g = _check_g(g)
    r_row = _check_r("r_row", r_row)
    r_col = _check_r("r_col", r_col)
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    rows = g.shape[0]
    if method == "first_order":
        if v_ref is not None:
            raise ConfigError("v_ref has no effect with method='first_order' (its attenuation is "
                             "the same for every input); leave it out")
        return _first_order_attenuation(g, r_row, r_col)
    ref = _check_v_ref(v_ref, rows)
    if r_row == 0 and r_col == 0:
        return np.ones_like(g)
    return _cell_voltage(g, r_row, r_col, ref) / ref[:, None]


def _check_v_ref(v_ref: Any, rows: int) -> np.ndarray:
    if v_ref is None:
        return np.ones(rows)
    ref = np.asarray(v_ref, dtype=np.float64)
    ref = _check_v(np.full(rows, float(ref)) if ref.ndim == 0 else ref, rows,
                   "reference input v_ref")
    if ref.ndim != 1:
        raise InputError(f"v_ref must be a scalar or have shape ({rows},), got {ref.shape}")
    if np.any(ref == 0):
        raise InputError("v_ref must be nonzero on every row (A divides by it)")
    return ref


def attenuation_differential(g_pos: np.ndarray, g_neg: np.ndarray, r_row: float, r_col: float,
                             topology: str, v_ref: np.ndarray | None = None, *,
                             method: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Per-cell attenuations (A+, A−) of a differential crossbar for the fast approximation ::

        I ≈ V @ (G+ · A+) − V @ (G− · A−)

    (the same form for both topologies: one GEMM per polarity, or one on G+·A+ − G−·A−),
    computed once per pair of conductance matrices.

    What A must be. The exact output is linear in the inputs, I = V @ M, and by reciprocity
    the sensitivity of the outputs to a cell is the voltage that cell sees in the *adjoint*
    problem: every output driven and every row source shorted. Shifting all potentials, that
    is every row wire driven at the same voltage with the outputs at 0 V — a **common-mode**
    drive, G+ and G− rows alike, not the ±V drive of a real input. So, for polarity ±::

        A± = (voltage across the ± cell when every row wire of row i is driven at +v_ref[i])
             / v_ref[i]  +  r_col · (CC(b·v_ref)/v_ref − CC(b)),

    b = the total conductance on that column wire (G± alone for "separate", G+ + G− for
    "shared"), CC(x)[i, j] = Σ_{k≥i} Σ_{m≤k} x[m, j] (r_col·CC(injected current) is the
    first-order column-node voltage). The cell voltages come from the exact nodal solution
    (iterative, O(R·C) per iteration, ~0.1 s at 256 × 256). The second term vanishes for a
    uniform v_ref (the default); for another v_ref it keeps the first-order term right. Then:

    - the approximation is exact to first order in the wire resistance for *every* input,
      and exact along v_ref for "separate" (there v_ref is a real input);
    - "shared" with r_row = 0 (column wires only) is exact for every input: the transfer is
      then (G+ − G−)·(1 − B⁻¹b), B the column chain with the cells, which is exactly this A;
    - for "separate" with a uniform v_ref, A± equal :func:`attenuation` of G± (the cell
      voltages of one array under an all-equal input are its adjoint sensitivities);
    - what is left is second order in ε = r g N² (:func:`differential_error_table`; e.g.
      HERMES g_max = 20.7 µS, 1 Ω, signed inputs: ~5 % of the IR-drop effect at 256 × 256).

    The *physical* cell voltages under the ±V drive of a reference input are not a good A for
    the shared cell (they are set by the net column current, the sensitivity by the total
    conductance on the wire): for signed inputs their error is first order, of the size of
    ignoring IR drop altogether (tests/test_irdrop.py measures it).

    ``method="first_order"``: A± = 1 − r_row·S_row(G±) − r_col·CC(b) (cumulative sums, no
    solve; S_row as in :func:`attenuation`), the first-order transfer for every input; good
    while ε ≪ 1.

    Args:
        g_pos, g_neg: (R, C) conductances in S, finite and >= 0, same shape.
        r_row, r_col: resistance of one row / column wire segment in Ω (>= 0).
        topology: "separate" (one bit line per polarity; HERMES) or "shared".
        v_ref: reference input, (R,) or scalar in V, nonzero on every row; default 1 V on
            every row. Only for ``method="exact"``.
        method: "exact" or "first_order".

    Returns:
        (A+, A−), each (R, C) and dimensionless; all ones when r_row = r_col = 0.

    Raises:
        InputError: bad conductances or v_ref. ConfigError: bad resistance, topology or
            method, or v_ref with ``method="first_order"``.
    """
    g_pos, g_neg = _check_pair(g_pos, g_neg)
    topology = _check_topology(topology)
    r_row = _check_r("r_row", r_row)
    r_col = _check_r("r_col", r_col)
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    rows = g_pos.shape[0]
    if method == "first_order" and v_ref is not None:
        raise ConfigError("v_ref has no effect with method='first_order' (its attenuation is "
                          "the same for every input); leave it out")
    ref = _check_v_ref(v_ref, rows) if method == "exact" else np.ones(rows)
    if r_row == 0 and r_col == 0:
        return np.ones_like(g_pos), np.ones_like(g_neg)
    # the row layers that share one column wire
    groups = [[g_pos], [g_neg]] if topology == "separate" else [[g_pos, g_neg]]
    out: list[np.ndarray] = []
    for gs in groups:
        total = sum(gs)
        cc_total = _cum2_down(total)
        if method == "first_order":
            out += [1.0 - r_row * _cum2_right(g) - r_col * cc_total for g in gs]
            continue
        common = (1.0,) * len(gs)  # the adjoint drive: every row wire at +v_ref
        cells = _cell_voltages(gs, common, r_row, r_col, ref)
        correction = r_col * (_cum2_down(total * ref[:, None]) / ref[:, None] - cc_total)
        out += [cell / ref[:, None] + correction for cell in cells]
    return out[0], out[1]


# -- accuracy of the approximation -----------------------------------------------------------
def _pattern(name: str, n: int, g_max: float, rng: np.random.Generator) -> np.ndarray:
    if name == "uniform":
        return np.full((n, n), 0.5 * g_max)
    if name == "random":
        return rng.uniform(0.0, g_max, (n, n))
    if name == "checkerboard":
        return g_max * ((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0)
    raise ConfigError(f"pattern must be one of {list(PATTERNS)}, got {name!r}")


def approx_error_table(sizes: Sequence[int] = (16, 32, 64, 128),
                       patterns: Sequence[str] = PATTERNS, *, r_wire: float = 2.5,
                       g_max: float = 25e-6, batch: int = 64, v_max: float = 0.2,
                       v_min: float = 0.0,
                       rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
    """Relative error of the IR-drop approximation, and of ignoring IR drop, versus exact.

    For each N × N array size and conductance pattern ("uniform": every cell g_max/2;
    "random": uniform in [0, g_max]; "checkerboard": g_max and 0 alternating), draws ``batch``
    inputs uniform in [v_min, v_max] V and compares with :func:`solve_exact` (r_row = r_col =
    r_wire) the approximation ``v @ (g * attenuation(g, r, r))``, its first-order variant,
    and the ideal ``v @ g``. Errors are ‖I − I_exact‖_F / ‖I_exact‖_F over the batch.

    Defaults: r_wire = 2.5 Ω per segment (NeuroSim's 22 nm wire, 2.46 Ω per 2F cell pitch;
    see the module docstring), g_max = 25 µS (generic PCM, Nandakumar et al. 2019), inputs up
    to 0.2 V (``v_min=-0.2`` shows signed, zero-mean inputs, for which the approximation's
    residual is larger). ``rng`` defaults to ``numpy.random.default_rng(0)`` (reproducible).

    Example:
        >>> rows = approx_error_table(sizes=(64,), patterns=("random",))
        >>> print(format_error_table(rows))  # doctest: +SKIP
            N  pattern           eps  err_ideal  err_approx  err_first_order  approx/ideal
           64  random          0.256   8.88e-02    8.21e-05         8.78e-03      9.24e-04

    Returns:
        One dict per (size, pattern): ``rows``, ``cols``, ``pattern``, ``r_wire_ohm``,
        ``g_max_S``, ``batch``, ``v_min_v``, ``v_max_v``, ``eps`` (= r_wire · g_max · N²),
        ``err_ideal``,
        ``err_approx``, ``err_first_order``.
    """
    r_wire = _check_r("r_wire", r_wire)
    if not (math.isfinite(g_max) and g_max > 0):
        raise ConfigError(f"g_max must be a finite conductance > 0 S, got {g_max!r}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ConfigError(f"batch must be an integer >= 1, got {batch!r}")
    if not (math.isfinite(v_max) and v_max > 0):
        raise ConfigError(f"v_max must be a finite voltage > 0 V, got {v_max!r}")
    if not (math.isfinite(v_min) and v_min < v_max):
        raise ConfigError(f"v_min must be a finite voltage below v_max = {v_max!r} V, "
                         f"got {v_min!r}")
    for name in patterns:
        if name not in PATTERNS:
            raise ConfigError(f"pattern must be one of {list(PATTERNS)}, got {name!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    table = []
    for n in sizes:
        if not (isinstance(n, int | np.integer) and n >= 1):
            raise ConfigError(f"sizes must be integers >= 1, got {n!r}")
        n = int(n)
        for name in patterns:
            g = _pattern(name, n, g_max, rng)
            v = rng.uniform(v_min, v_max, (batch, n))
            exact = solve_exact(g, v, r_wire, r_wire)
            norm = float(np.linalg.norm(exact))

            def rel(i_model: np.ndarray, exact=exact, norm=norm) -> float:
                return float(np.linalg.norm(i_model - exact)) / norm

            a = attenuation(g, r_wire, r_wire)
            a1 = attenuation(g, r_wire, r_wire, method="first_order")
            table.append({
                "rows": n, "cols": n, "pattern": name, "r_wire_ohm": r_wire, "g_max_S": g_max,
                "batch": batch, "v_min_v": v_min, "v_max_v": v_max,
                "eps": r_wire * g_max * n * n,
                "err_ideal": rel(v @ g), "err_approx": rel(v @ (g * a)),
                "err_first_order": rel(v @ (g * a1)),
            })
    return table


def format_error_table(table: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`approx_error_table` as a fixed-width text table."""
    lines = [f"{'N':>5}  {'pattern':<12}  {'eps':>7}  {'err_ideal':>9}  {'err_approx':>10}  "
             f"{'err_first_order':>15}  {'approx/ideal':>12}"]
    for row in table:
        ratio = row["err_approx"] / row["err_ideal"] if row["err_ideal"] > 0 else float("nan")
        lines.append(f"{row['rows']:>5}  {row['pattern']:<12}  {row['eps']:>7.3f}  "
                     f"{row['err_ideal']:>9.2e}  {row['err_approx']:>10.2e}  "
                     f"{row['err_first_order']:>15.2e}  {ratio:>12.2e}")
    return "\n".join(lines)


def _diff_pattern(name: str, n: int, g_max: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if name == "random":  # W uniform in [−1, 1], G± = g_max·max(±W, 0): one device at 0 S
        w = rng.uniform(-1.0, 1.0, (n, n))
        return g_max * np.maximum(w, 0.0), g_max * np.maximum(-w, 0.0)
    if name == "dense":  # both devices conduct (e.g. a card with a g_min offset)
        return rng.uniform(0.0, g_max, (n, n)), rng.uniform(0.0, g_max, (n, n))
    raise ConfigError(f"pattern must be one of {list(DIFF_PATTERNS)}, got {name!r}")


def differential_error_table(sizes: Sequence[int] = (16, 32, 64),
                             topologies: Sequence[str] = TOPOLOGIES,
                             patterns: Sequence[str] = DIFF_PATTERNS, *, r_wire: float = 1.0,
                             g_max: float = 20.7e-6, batch: int = 64, v_min: float = -0.2,
                             v_max: float = 0.2,
                             rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
    """Relative error of the differential IR-drop approximation, of ignoring IR drop and of
    solving the other cell topology, versus :func:`solve_differential`.

    For each N × N size, topology and pattern ("random": weights uniform in [−1, 1] mapped as
    G± = g_max·max(±W, 0), as HERMES maps G = W·G_max/W_max; "dense": G+ and G− independent
    and uniform in [0, g_max]), draws ``batch`` inputs uniform in [v_min, v_max] V (default
    signed, ±0.2 V) and compares with the exact solve of that topology (r_row = r_col =
    r_wire): ``v @ (G+·A+ − G−·A−)`` with :func:`attenuation_differential` (err_approx), its
    first-order variant (err_first_order), the ideal ``v @ (G+ − G−)`` (err_ideal) and the
    exact solve of the *other* topology (err_other_topology: what a model of the wrong cell
    gets wrong). Errors are ‖I − I_exact‖_F / ‖I_exact‖_F over the batch.

    Defaults: r_wire = 1 Ω (the hermes-core card's assumption), g_max = 20.7 µS (PCM
    fitted on HERMES, 2 devices per polarity; Le Gallo et al. 2023). ``rng`` defaults to
    ``numpy.random.default_rng(0)``.

    Returns:
        One dict per (size, topology, pattern): ``rows``, ``cols``, ``topology``,
        ``pattern``, ``r_wire_ohm``, ``g_max_S``, ``batch``, ``v_min_v``, ``v_max_v``,
        ``eps`` (= r_wire · g_max · N²), ``err_ideal``, ``err_approx``, ``err_first_order``,
        ``err_other_topology``.
    """
    r_wire = _check_r("r_wire", r_wire)
    if not (math.isfinite(g_max) and g_max > 0):
        raise ConfigError(f"g_max must be a finite conductance > 0 S, got {g_max!r}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ConfigError(f"batch must be an integer >= 1, got {batch!r}")
    if not (math.isfinite(v_max) and math.isfinite(v_min) and v_min < v_max):
        raise ConfigError(f"need finite voltages v_min < v_max, got {v_min!r}, {v_max!r} V")
    for topology in topologies:
        _check_topology(topology)
    for name in patterns:
        if name not in DIFF_PATTERNS:
            raise ConfigError(f"pattern must be one of {list(DIFF_PATTERNS)}, got {name!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    table = []
    for n in sizes:
        if not (isinstance(n, int | np.integer) and n >= 1):
            raise ConfigError(f"sizes must be integers >= 1, got {n!r}")
        n = int(n)
        for name in patterns:
            g_pos, g_neg = _diff_pattern(name, n, g_max, rng)
            v = rng.uniform(v_min, v_max, (batch, n))
            exact = {t: solve_differential(g_pos, g_neg, v, r_wire, r_wire, t)
                     for t in TOPOLOGIES}
            for topology in topologies:
                ref = exact[topology]
                norm = float(np.linalg.norm(ref))

                def rel(i_model: np.ndarray, ref=ref, norm=norm) -> float:
                    return float(np.linalg.norm(i_model - ref)) / norm

                a_pos, a_neg = attenuation_differential(g_pos, g_neg, r_wire, r_wire, topology)
                f_pos, f_neg = attenuation_differential(g_pos, g_neg, r_wire, r_wire, topology,
                                                        method="first_order")
                other = TOPOLOGIES[1 - TOPOLOGIES.index(topology)]
                table.append({
                    "rows": n, "cols": n, "topology": topology, "pattern": name,
                    "r_wire_ohm": r_wire, "g_max_S": g_max, "batch": batch,
                    "v_min_v": v_min, "v_max_v": v_max, "eps": r_wire * g_max * n * n,
                    "err_ideal": rel(v @ (g_pos - g_neg)),
                    "err_approx": rel(v @ (g_pos * a_pos - g_neg * a_neg)),
                    "err_first_order": rel(v @ (g_pos * f_pos - g_neg * f_neg)),
                    "err_other_topology": rel(exact[other]),
                })
    return table


def format_differential_table(table: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`differential_error_table` as a fixed-width text table."""
    lines = [f"{'N':>5}  {'topology':<9}  {'pattern':<7}  {'eps':>6}  {'err_ideal':>9}  "
             f"{'err_approx':>10}  {'err_first':>9}  {'err_other':>9}  {'approx/ideal':>12}"]
    for row in table:
        ratio = row["err_approx"] / row["err_ideal"] if row["err_ideal"] > 0 else float("nan")
        lines.append(f"{row['rows']:>5}  {row['topology']:<9}  {row['pattern']:<7}  "
                     f"{row['eps']:>6.3f}  {row['err_ideal']:>9.2e}  {row['err_approx']:>10.2e}  "
                     f"{row['err_first_order']:>9.2e}  {row['err_other_topology']:>9.2e}  "
                     f"{ratio:>12.2e}")
    return "\n".join(lines)
