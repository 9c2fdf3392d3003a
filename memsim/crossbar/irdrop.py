"""IR drop: the resistance of the row and column wires of a resistive crossbar.

Circuit (R rows × C columns). Cell (i, j) is a conductance G[i, j] (S) between row-wire node
(i, j) and column-wire node (i, j). Row i is driven at its left end by an ideal source V[i]
through one wire segment r_row (Ω) into node (i, 0); row nodes (i, j) and (i, j+1) are joined
by r_row. Column j is held at virtual ground (the ADC/integrator input, 0 V) at its bottom
end: node (R−1, j) reaches ground through one segment r_col, and column nodes (i, j) and
(i+1, j) are joined by r_col. The output of column j is the current I[j] into the virtual
ground. With r_row = r_col = 0 every cell sees its full input and I = V @ G.

The network is linear, so Kirchhoff's current law at the 2·R·C wire nodes is one sparse,
symmetric positive-definite system K x = b (modified nodal analysis, as in badcrossbar:
Joksas & Mehonic, SoftwareX 12, 100617, 2020, doi:10.1016/j.softx.2020.100617). It is
solved here for the deviations of the node voltages from their ideal values (row nodes at
V[i], column nodes at 0): the right-hand side is then ∓G·V, well scaled however small the
wire resistance, and I = V @ G + Σ_i G[i, j] (δu[i, j] − δw[i, j]) adds a small correction
to the exact ideal product.

Public functions:

- :func:`solve_exact` — the full nodal solve, one sparse LU for a whole batch of inputs.
- :func:`attenuation` — a per-cell factor A, computed once per conductance matrix, for the
  fast approximation I ≈ V @ (G · A) (one GEMM per batch, as for an ideal array).
- :func:`approx_error_table` — how good that approximation is, next to ignoring IR drop.

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

__all__ = ["approx_error_table", "attenuation", "format_error_table", "solve_exact"]

PATTERNS = ("uniform", "random", "checkerboard")
METHODS = ("exact", "first_order")

# Right-hand sides solved per call of the sparse LU (bounds memory to ~2·R·C·8·512 bytes).
_BATCH_CHUNK = 512
# Schur-complement PCG: relative residual (preconditioner norm) and iteration cap.
_PCG_RTOL = 1e-12
_PCG_MAXITER = 1000


# -- validation ------------------------------------------------------------------------------
def _check_g(g: np.ndarray) -> np.ndarray:
    try:
        g = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"conductance matrix g must be a real array: {exc}") from None
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"conductance matrix g must be 2-D (rows, cols) with rows, cols >= 1, "
                         f"got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("conductance matrix g contains NaN or inf")
    if np.any(g < 0):
        raise ValueError(f"conductance matrix g has negative conductances (min {g.min():.3g} S); "
                         "a cell conductance must be >= 0")
    return g


def _check_r(name: str, r: Any) -> float:
    try:
        value = float(r)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (ohm), got {r!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite wire resistance >= 0 ohm, got {r!r}")
    return value


def _check_v(v: Any, rows: int, name: str = "input voltages v") -> np.ndarray:
    try:
        v = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real array: {exc}") from None
    if v.ndim not in (1, 2) or v.shape[-1] != rows:
        raise ValueError(f"{name} must have shape (batch, {rows}) or ({rows},) to match "
                         f"g with {rows} rows, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contain NaN or inf")
    return v


# -- exact nodal solve -----------------------------------------------------------------------
def _nodal_matrix(g: np.ndarray, r_row: float, r_col: float) -> sp.csc_matrix:
    """Conductance matrix K of the wire nodes (SPD), for r_row and/or r_col > 0.

    Unknowns: the row-node voltages u[i, j] at index i·C + j if r_row > 0, then the
    column-node voltages w[i, j] at offset + i·C + j if r_col > 0. A zero wire resistance
    removes that layer: its nodes are then fixed (row nodes at V[i], column nodes at 0 V),
    and a cell becomes a conductance to a fixed node (a diagonal term only).
    """
    rows, cols = g.shape
    n = rows * cols
    idx = np.arange(n).reshape(rows, cols)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    offset = 0
    if r_row > 0:
        gr = 1.0 / r_row
        diag = np.full((rows, cols), 2.0 * gr)
        diag[:, -1] = gr  # the last node of a row has no segment to its right
        parts.append((idx.ravel(), idx.ravel(), (diag + g).ravel()))
        a, b = idx[:, :-1].ravel(), idx[:, 1:].ravel()
        off = np.full(a.size, -gr)
        parts += [(a, b, off), (b, a, off)]
        offset = n
    if r_col > 0:
        gc = 1.0 / r_col
        cidx = offset + idx
        diag = np.full((rows, cols), 2.0 * gc)
        diag[0, :] = gc  # the top node of a column has no segment above it
        parts.append((cidx.ravel(), cidx.ravel(), (diag + g).ravel()))
        a, b = cidx[:-1, :].ravel(), cidx[1:, :].ravel()
        off = np.full(a.size, -gc)
        parts += [(a, b, off), (b, a, off)]
        if r_row > 0:  # the cell joins the two layers
            cell = -g.ravel()
            parts += [(idx.ravel(), cidx.ravel(), cell), (cidx.ravel(), idx.ravel(), cell)]
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
        ValueError: g not 2-D, NaN/inf or negative in g or v, negative or non-finite
            resistance, or v's last axis not of length R.
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
    rows, cols = g.shape
    n = rows * cols
    batch = v2.shape[0]
    lu = _factorize(_nodal_matrix(g, r_row, r_col))
    correction = np.empty((batch, cols))
    for start in range(0, batch, _BATCH_CHUNK):  # chunks of inputs, not single inputs
        vb = v2[start:start + _BATCH_CHUNK]
        gv = (vb[:, :, None] * g[None, :, :]).reshape(len(vb), n)
        # Deviations from the ideal node voltages: K δ = b − K x_ideal = [−G·V ; +G·V].
        rhs = [-gv] if r_row > 0 else []
        if r_col > 0:
            rhs.append(gv)
        delta = lu.solve(np.asfortranarray(np.concatenate(rhs, axis=1).T))  # (unknowns, batch)
        delta = delta.T.reshape(len(vb), -1, rows, cols)
        d_cell = delta[:, 0] if r_row > 0 else 0.0  # δu
        if r_col > 0:
            d_cell = d_cell - delta[:, -1]  # − δw
        # KCL over a column: the current into the virtual ground is the sum of its cell currents.
        correction[start:start + len(vb)] = np.einsum("ij,bij->bj", g, d_cell)
    return correction


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
        raise RuntimeError(f"row-chain factorisation failed (LAPACK dpttrf info={info})")
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
        raise RuntimeError(f"column-chain factorisation failed (LAPACK dpttrf info={info})")
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
        raise RuntimeError(f"tridiagonal solve failed (LAPACK dpttrs info={info})")
    return y.reshape(x.shape)


def _cell_voltage(g: np.ndarray, r_row: float, r_col: float, v_ref: np.ndarray) -> np.ndarray:
    """Voltage across every cell for one input v_ref, by an iterative exact solve.

    Block elimination of K = [[A, −D], [−D, B]] (A: row chains + D, B: column chains + D,
    D = diag(G)): the column-node deviations δw solve the Schur complement system
    (B − D A⁻¹ D) δw = G·V − D A⁻¹ (G·V), by conjugate gradients preconditioned with B; then
    δu = A⁻¹ (D δw − G·V). A and B are tridiagonal (LAPACK pttrf/pttrs, O(R·C) per solve).
    The preconditioned spectrum lies in (1 − ρ², 1] with ρ² = ρ(A⁻¹D B⁻¹D) < 1, so it
    converges in a few iterations (≈ 5–10 at 256 × 256 with ε = r g N² ≈ 4).
    """
    gv = g * v_ref[:, None]
    if r_col == 0:  # columns at 0 V: independent row chains, A δu = −G·V
        return v_ref[:, None] + _tri_solve(_row_chain_factor(g, r_row), -gv)
    col_f = _col_chain_factor(g, r_col)
    col_lu = col_f[:2]
    gt = np.ascontiguousarray(g.T)
    if r_row == 0:  # rows at V: independent column chains, B δw = +G·V
        return v_ref[:, None] - _tri_solve(col_lu, np.ascontiguousarray(gv.T)).T
    row_lu = _row_chain_factor(g, r_row)
    b_diag, gc = col_f[2], 1.0 / r_col

    def b_mul(x: np.ndarray) -> np.ndarray:  # B x, x in (C, R) layout
        y = b_diag * x
        y[:, 1:] -= gc * x[:, :-1]
        y[:, :-1] -= gc * x[:, 1:]
        return y

    def schur_mul(x: np.ndarray) -> np.ndarray:
        return b_mul(x) - gt * _tri_solve(row_lu, np.ascontiguousarray((gt * x).T)).T

    def precond(x: np.ndarray) -> np.ndarray:
        return _tri_solve(col_lu, x)

    rhs = gt * v_ref[None, :] - gt * _tri_solve(row_lu, gv).T
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
        raise RuntimeError(f"IR-drop PCG did not converge in {_PCG_MAXITER} iterations "
                           f"(residual {math.sqrt(max(rz, 0.0)) / norm_rhs:.2e})")
    du = _tri_solve(row_lu, g * w.T - gv)
    return v_ref[:, None] + du - w.T


def _first_order_attenuation(g: np.ndarray, r_row: float, r_col: float) -> np.ndarray:
    """A = 1 − r_row S_row − r_col S_col, the O(r) term of the exact transfer matrix.

    With ideal cell currents G·V, the current in row segment k (feeding node k) is
    Σ_{m≥k} G[i, m] V[i], so node (i, j) sags by r_row V[i] S_row[i, j] with
    S_row[i, j] = Σ_{k≤j} Σ_{m≥k} G[i, m]. Column segment k (below node k) carries
    Σ_{m≤k} G[m, j] V[m]; by reciprocity its effect on I[j] is −r_col Σ_m V[m] G[m, j] S_col[m, j]
    with S_col[m, j] = Σ_{k≥m} Σ_{i≤k} G[i, j]. Both are exactly of the form V @ (G·A), for
    every input, to first order in r.
    """
    s_row = np.cumsum(np.cumsum(g[:, ::-1], axis=1)[:, ::-1], axis=1)
    s_col = np.cumsum(np.cumsum(g, axis=0)[::-1], axis=0)[::-1]
    return 1.0 - r_row * s_row - r_col * s_col


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
        ValueError: bad g, resistance, v_ref or method (v_ref with ``method="first_order"``).
    """
    g = _check_g(g)
    r_row = _check_r("r_row", r_row)
    r_col = _check_r("r_col", r_col)
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    rows = g.shape[0]
    if method == "first_order":
        if v_ref is not None:
            raise ValueError("v_ref has no effect with method='first_order' (its attenuation is "
                             "the same for every input); leave it out")
        return _first_order_attenuation(g, r_row, r_col)
    if v_ref is None:
        ref = np.ones(rows)
    else:
        ref = np.asarray(v_ref, dtype=np.float64)
        ref = _check_v(np.full(rows, float(ref)) if ref.ndim == 0 else ref, rows,
                      "reference input v_ref")
        if ref.ndim != 1:
            raise ValueError(f"v_ref must be a scalar or have shape ({rows},), got {ref.shape}")
        if np.any(ref == 0):
            raise ValueError("v_ref must be nonzero on every row (A divides by it)")
    if r_row == 0 and r_col == 0:
        return np.ones_like(g)
    return _cell_voltage(g, r_row, r_col, ref) / ref[:, None]


# -- accuracy of the approximation -----------------------------------------------------------
def _pattern(name: str, n: int, g_max: float, rng: np.random.Generator) -> np.ndarray:
    if name == "uniform":
        return np.full((n, n), 0.5 * g_max)
    if name == "random":
        return rng.uniform(0.0, g_max, (n, n))
    if name == "checkerboard":
        return g_max * ((np.add.outer(np.arange(n), np.arange(n)) % 2) == 0)
    raise ValueError(f"pattern must be one of {list(PATTERNS)}, got {name!r}")


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
        ``g_max_s``, ``batch``, ``v_min_v``, ``v_max_v``, ``eps`` (= r_wire · g_max · N²),
        ``err_ideal``,
        ``err_approx``, ``err_first_order``.
    """
    r_wire = _check_r("r_wire", r_wire)
    if not (math.isfinite(g_max) and g_max > 0):
        raise ValueError(f"g_max must be a finite conductance > 0 S, got {g_max!r}")
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    if not (math.isfinite(v_max) and v_max > 0):
        raise ValueError(f"v_max must be a finite voltage > 0 V, got {v_max!r}")
    if not (math.isfinite(v_min) and v_min < v_max):
        raise ValueError(f"v_min must be a finite voltage below v_max = {v_max!r} V, "
                         f"got {v_min!r}")
    for name in patterns:
        if name not in PATTERNS:
            raise ValueError(f"pattern must be one of {list(PATTERNS)}, got {name!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    table = []
    for n in sizes:
        if not (isinstance(n, int | np.integer) and n >= 1):
            raise ValueError(f"sizes must be integers >= 1, got {n!r}")
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
                "rows": n, "cols": n, "pattern": name, "r_wire_ohm": r_wire, "g_max_s": g_max,
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
