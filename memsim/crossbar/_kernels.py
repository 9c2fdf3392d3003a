"""Fused element-wise kernels of the tile's hot path (numba).

Private: arrays in, arrays out; the public :class:`memsim.crossbar.Tile` validates inputs
and allocates outputs. Kernels draw their noise from counter-based streams indexed by the
global row (``row0`` + local row), so a block of rows gives the same numbers whether it is
converted alone or inside a larger batch. The slow, obvious versions these replace live in
``tests/naive.py`` and the tile tests compare the two. Compiler options live here.

The loops are written so that LLVM vectorises them (no data-dependent branches in the inner
loops, no integer ``math.floor``, no array arguments to inlined helpers, which would cost a
reference-count call per element); ``error_model="numpy"`` drops the division checks that
would stop it. They run on one thread: on the 2-vCPU development machine every threaded
variant tried (Python thread pools, numba OpenMP, a spinning numba worker) was slower next
to the multi-threaded BLAS that runs the GEMMs (see the benchmark notes).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from memsim._random import normals_f32, row_state

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
# Fused multiply-add allowed (one rounding instead of two), nothing else of fast-math.
_JIT_FMA = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")


def _as(like, value):  # pragma: no cover - replaced by the overload in compiled code
    """``value`` cast to the element type of the array ``like`` (float32 or float64)."""
    return like.dtype.type(value)


@overload(_as, jit_options=dict(inline="always"))
def _as_overload(like, value):  # pragma: no cover - compile time
    if like.dtype == types.float32:
        return lambda like, value: np.float32(value)
    return lambda like, value: np.float64(value)


_LANES = 16  # independent partial maxima: a max reduction LLVM can vectorise without fast-math


@numba.njit(**_JIT)
def scan_dac_kernel(x, fixed_range, n_steps, xq, x2, sx, counts):  # pragma: no cover
    """Input scaling, checks and DAC for the rows of ``x`` (any float dtype), in one pass.

    Per row b: s = fixed_range if > 0, sx[b] as given if < 0, else max_i |x[b, i]| (1 for an
    all-zero row); xq = round(clip(x / s, −1, 1) · n)/n (n <= 0: unquantized) in xq's
    precision; x2 = xq² (the input of the read-noise variance product) when x2 has rows.
    sx[b] = s. counts[0] += non-finite entries, counts[1] += entries beyond the fixed range.
    """
    b_count, r_count = x.shape
    want_sq = x2.shape[0] > 0
    quantize = n_steps > 0
    n = _as(xq, n_steps)
    inv_n = _as(xq, 1.0 / n_steps if quantize else 1.0)
    one = _as(xq, 1.0)
    big = np.finfo(x.dtype).max
    part = np.zeros(_LANES, dtype=x.dtype)
    full = r_count - r_count % _LANES
    bad = 0
    clipped = 0
    for b in range(b_count):
        part[:] = 0
        nb = 0
        for i0 in range(0, full, _LANES):
            for k in range(_LANES):
                v = abs(x[b, i0 + k])
                nb += not (v <= big)
                part[k] = v if v > part[k] else part[k]
        m = part.max()
        for i in range(full, r_count):
            v = abs(x[b, i])
            nb += not (v <= big)
            m = v if v > m else m
        bad += nb
        if fixed_range > 0:
            s = fixed_range
            for i in range(r_count):
                clipped += abs(x[b, i]) > fixed_range
        elif fixed_range < 0:
            s = sx[b]
        else:
            s = np.float64(m) if m > 0 else 1.0
        sx[b] = s
        inv = _as(xq, 1.0 / s)
        if quantize and want_sq:
            for i in range(r_count):
                v = np.rint(min(max(_as(xq, x[b, i]) * inv, -one), one) * n) * inv_n
                xq[b, i] = v
                x2[b, i] = v * v
        elif quantize:
            for i in range(r_count):
                xq[b, i] = np.rint(min(max(_as(xq, x[b, i]) * inv, -one), one) * n) * inv_n
        elif want_sq:
            for i in range(r_count):
                v = min(max(_as(xq, x[b, i]) * inv, -one), one)
                xq[b, i] = v
                x2[b, i] = v * v
        else:
            for i in range(r_count):
                xq[b, i] = min(max(_as(xq, x[b, i]) * inv, -one), one)
    counts[0] += bad
    counts[1] += clipped


@numba.njit(**_JIT)
def input_noise_kernel(xq, x2, sigma, seed, row0):  # pragma: no cover - compiled
    """DAC output noise: xq += σ ξ per entry (stream of global row row0 + b), x2 = xq²."""
    b_count, r_count = xq.shape
    z = np.empty(r_count + (r_count & 1), dtype=np.float32)
    want_sq = x2.shape[0] > 0
    for b in range(b_count):
        normals_f32(row_state(seed, row0 + b), z)
        for i in range(r_count):
            xq[b, i] += sigma * z[i]
            if want_sq:
                x2[b, i] = xq[b, i] * xq[b, i]


@numba.njit(inline="always", **_JIT_FMA)
def _convert_one(v, inv_lsb, lsb, lo, hi, quantize, floor_mode):  # pragma: no cover
    """(ADC output value, 1 if the conversion saturated else 0), branch-free."""
    q = v * inv_lsb
    c = np.floor(q) if floor_mode else np.rint(q)
    out = min(max(c, lo), hi) * lsb
    return (out if quantize else v), ((c < lo) + (c > hi) if quantize else 0)


@numba.njit(**_JIT_FMA)
def adc_kernel(y, var, noisy, seed, row0, gain1, gain1_sq, offset, lsb, sigma2, bits,
               floor_mode, sign, col_mul, col_add, row_scale, out, sat_row):  # pragma: no cover
    """Read noise + ADC (+ the digital unit), fused, for a block of column outputs.

    v = y (1 + γ_j) + δ_j + √(var (1 + γ_j)² + σ²) ξ; code = floor or round(v/LSB), clipped
    to the signed code range; q = code·LSB (or v when bits == 0: unquantized), in y's
    precision. ``gain1`` = 1 + γ and ``gain1_sq`` = (1 + γ)² per column; ``var`` may be
    empty (0, 0): no read noise. If ``col_mul`` has entries, the digital unit is applied:
    out[b, j] = (q · col_mul[j] + col_add[j]) · row_scale[b]; otherwise out[b, j] += sign · q
    (the 4-phase mode sums its four conversions, calibration reads raw ADC values).
    sat_row[b] += saturated conversions.

    Noise (when ``noisy``): read noise and converter noise are independent Gaussians, so one
    draw of their summed variance is exact in distribution. Row b draws its C numbers with
    :func:`memsim._random.normals_f32` from the stream of global row row0 + b of ``seed``
    (one vectorised pass into a row buffer, then one fused pass over the row; measured
    faster than drawing inside the fused loop). No data-dependent branches: LLVM vectorises
    the passes, and the output mode is chosen once per row, outside them.
    """
    b_count, c_count = y.shape
    z = np.zeros(c_count + (c_count & 1), dtype=np.float32)
    q = np.empty(c_count, dtype=y.dtype)
    vstep = 1 if var.shape[0] > 0 else 0  # no variance: one row of zeros, reused
    if vstep == 0:
        var = np.zeros((1, c_count), dtype=y.dtype)
    digital = col_mul.shape[0] > 0
    quantize = bits > 0
    lo = _as(y, -(2.0 ** (bits - 1)) if quantize else 0.0)
    hi = _as(y, 2.0 ** (bits - 1) - 1.0 if quantize else 0.0)
    lsb_ = _as(y, lsb)
    inv_lsb = _as(y, 1.0 / lsb)
    s2 = _as(y, sigma2)
    sign_ = _as(y, sign)
    for b in range(b_count):
        if noisy:  # otherwise z stays 0
            normals_f32(row_state(seed, row0 + b), z)
        vb = b * vstep
        count = 0
        for j in range(c_count):
            v = y[b, j] * gain1[j] + offset[j]
            v += math.sqrt(var[vb, j] * gain1_sq[j] + s2) * z[j]
            q[j], n = _convert_one(v, inv_lsb, lsb_, lo, hi, quantize, floor_mode)
            count += n
        if digital:
            rs = row_scale[b]
            for j in range(c_count):
                out[b, j] = (q[j] * col_mul[j] + col_add[j]) * rs
        else:
            for j in range(c_count):
                out[b, j] += sign_ * q[j]
        sat_row[b] += count


@numba.njit(**_JIT)
def digital_kernel(y, col_mul, col_add, row_scale, out):  # pragma: no cover - compiled
    """out[b, j] = (y[b, j] · col_mul[j] + col_add[j]) · row_scale[b]."""
    b_count, c_count = y.shape
    for b in range(b_count):
        s = row_scale[b]
        for j in range(c_count):
            out[b, j] = (y[b, j] * col_mul[j] + col_add[j]) * s


@numba.njit(**_JIT)
def slow_read_kernel(mean, slow, seed, gp, gn, w, colsum):  # pragma: no cover
    """Conductances of every device with its slow read noise (one draw).

    mean, slow: (instances, 2, rows, cols) per device, already multiplied by the device's
    share of the cell (significance factor), the normalisation 1/g_unit and the IR-drop
    attenuation (all positive, so the clipping at 0 commutes with them). Writes
    gp[i] = Σ_k max(0, mean[k, 0, i] + slow[k, 0, i] ξ) (gn likewise with polarity 1),
    w = gp − gn and adds the column sums of gp + gn to ``colsum`` (float64).
    ξ: one float32 stream per device row (instance k, polarity p, row i) of ``seed``.
    """
    n_inst, _, rows, cols = mean.shape
    z = np.empty(cols + (cols & 1), dtype=np.float32)
    for i in range(rows):
        for p in range(2):
            acc = gp if p == 0 else gn
            for j in range(cols):
                acc[i, j] = 0.0
            for k in range(n_inst):
                normals_f32(row_state(seed, (k * 2 + p) * rows + i), z)
                for j in range(cols):
                    acc[i, j] += max(mean[k, p, i, j] + slow[k, p, i, j] * z[j], 0.0)
        for j in range(cols):
            w[i, j] = gp[i, j] - gn[i, j]
            colsum[j] += np.float64(gp[i, j]) + np.float64(gn[i, j])
