"""Fused element-wise kernels of the tile's hot path (numba).

Private: arrays in, arrays out; the public :class:`memsim.crossbar.Tile` validates inputs
and allocates outputs. The slow, obvious versions these replace live in ``tests/naive.py``
and the tile tests compare the two. Compiler options live here, in one place.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim._random import _normal, row_state

# Sequential kernels. On this 2-vCPU machine parallel versions did not pay: numba's OpenMP
# pool spinning beside BLAS's made the path 2x slower, and two Python threads on row blocks
# were slower than one (measured with benchmarks/bench_tile.py).
_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

@numba.njit(**_JIT)
def dac_kernel(x, inv_scale, n_steps, out):  # pragma: no cover - compiled
    """out = round(clip(x · inv_scale, −1, 1) · n)/n per sample row (n <= 0: unquantized)."""
    b_count, r_count = x.shape
    for b in range(b_count):
        s = inv_scale[b]
        for i in range(r_count):
            v = x[b, i] * s
            if v > 1.0:
                v = 1.0
            elif v < -1.0:
                v = -1.0
            if n_steps > 0:
                v = np.rint(v * n_steps) / n_steps
            out[b, i] = v


@numba.njit(**_JIT)
def input_scan_kernel(x, fixed_range, sx):  # pragma: no cover - compiled
    """Per-row input scale and checks in one pass over x (any float dtype).

    sx[b] = fixed_range if fixed_range > 0, else max_i |x[b, i]| (1 for an all-zero row).
    Returns (non-finite entries, entries beyond the fixed range)."""
    b_count, r_count = x.shape
    bad = 0
    clipped = 0
    for b in range(b_count):
        m = 0.0
        for i in range(r_count):
            v = abs(x[b, i])
            if not math.isfinite(v):
                bad += 1
            elif v > m:
                m = v
        if fixed_range > 0:
            sx[b] = fixed_range
            for i in range(r_count):
                if abs(x[b, i]) > fixed_range:
                    clipped += 1
        else:
            sx[b] = m if m > 0 else 1.0
    return bad, clipped


@numba.njit(**_JIT)
def adc_kernel(y, var, noisy, seed, row0, gain, offset, lsb, sigma2, bits, floor_mode, out,
               sat_row):  # pragma: no cover - compiled
    """ADC of column outputs with read noise, mismatch and converter noise, fused.

    v = y (1 + γ_j) + δ_j + √(var (1 + γ_j)² + σ²) ξ; code = floor or round(v/LSB), clipped
    to the signed code range; out = code·LSB (or v when bits == 0: unquantized).
    sat_row[b] counts the saturated conversions of sample b. ``var`` may be empty (0, 0).
    ξ ~ N(0, 1) is drawn in place (memsim._random, stream of row row0 + b from ``seed``) when
    ``noisy``: read noise and converter noise are independent Gaussians, so one draw of
    their summed variance is exact in distribution.
    """
    b_count, c_count = y.shape
    has_var = var.shape[0] > 0
    lo = -(2.0 ** (bits - 1)) if bits > 0 else 0.0
    hi = 2.0 ** (bits - 1) - 1.0 if bits > 0 else 0.0
    inv_lsb = 1.0 / lsb
    z = np.zeros(c_count)
    for b in range(b_count):
        count = 0
        if noisy:  # the row's normals first: a tight loop, then a vectorisable one
            state = row_state(seed, row0 + b)
            for j in range(c_count):
                state, z[j] = _normal(state)
        for j in range(c_count):
            g1 = 1.0 + gain[j]
            v = y[b, j] * g1 + offset[j]
            if noisy:
                sd2 = sigma2
                if has_var:
                    sd2 += var[b, j] * g1 * g1
                v += math.sqrt(sd2) * z[j]
            if bits > 0:
                q = v * inv_lsb
                c = math.floor(q) if floor_mode else np.rint(q)
                if c < lo:
                    c = lo
                    count += 1
                elif c > hi:
                    c = hi
                    count += 1
                out[b, j] = c * lsb
            else:
                out[b, j] = v
        sat_row[b] = count


@numba.njit(**_JIT)
def digital_kernel(y, col_mul, col_add, row_scale, out):  # pragma: no cover - compiled
    """out[b, j] = (y[b, j] · col_mul[j] + col_add[j]) · row_scale[b]."""
    b_count, c_count = y.shape
    for b in range(b_count):
        s = row_scale[b]
        for j in range(c_count):
            out[b, j] = (y[b, j] * col_mul[j] + col_add[j]) * s


@numba.njit(**_JIT)
def slow_read_kernel(mean, slow, factors, inv_unit, seed, att, p0, p1,
                     out):  # pragma: no cover - compiled
    """out[p] = Σ_k f_k max(0, mean[k, p] + slow[k, p] ξ) · inv_unit (· att[p] if given).

    mean, slow: (instances, 2, rows, cols) in S; the per-device slow read noise is drawn
    here (one stream per device row), clipped at 0 per device as the device model does.
    Only polarities p0 <= p < p1 are filled (so that two threads can share the work).
    """
    n_inst, _, rows, cols = mean.shape
    has_att = att.shape[0] > 0
    z = np.zeros(cols)
    for p in range(p0, p1):
        for i in range(rows):
            for j in range(cols):
                out[p, i, j] = 0.0
            for k in range(n_inst):
                state = row_state(seed, (k * 2 + p) * rows + i)
                for j in range(cols):
                    state, z[j] = _normal(state)
                f = factors[k] * inv_unit
                for j in range(cols):
                    g = mean[k, p, i, j] + slow[k, p, i, j] * z[j]
                    if g > 0.0:
                        out[p, i, j] += f * g
            if has_att:
                for j in range(cols):
                    out[p, i, j] *= att[p, i, j]
