"""Fused element-wise kernels of the tile engine's hot path (numba, all CPU threads).

Private: arrays in, arrays out; :mod:`memsim.crossbar.engine` validates inputs and allocates
outputs. The engine's torch back-end (:func:`memsim.crossbar.engine.adc_stage_torch` and the
torch DAC, used on CUDA) computes the same formulas in torch ops, and the tests compare the
two on the same normals; the slow, obvious versions live in ``tests/naive.py``.

Randomness: every work item (sample b, block of positions, row tile k) draws its normals from
the SplitMix64 stream of a key that depends only on those indices
(:func:`memsim._random.row_state`), so the numbers are the same whatever the thread count or
the order in which threads take the items.

Layouts are given by strides, so that one kernel serves matrix products ((tile, sample,
column) from a batched GEMM) and convolutions (channels-last feature maps).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim._random import normals_f32, row_state

# Fused multiply-add allowed (one rounding instead of two), nothing else of fast-math.
_JIT = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")

#: Output elements per work item: large enough to amortise the set-up, small enough that a
#: batch of one image still spreads over the cores.
CHUNK = 4096

#: Below this many elements a kernel runs on the calling thread: waking the other threads
#: costs more than the work (measured: 0.13 M conversions took 0.6 ms on one thread and
#: 20 ms on two of a busy 2-vCPU machine).
PARALLEL_MIN = 1 << 17


def call(kernel, elements: int, *args):  # pragma: no cover - thin dispatch
    """Run ``kernel(*args)`` on all of numba's threads, or on one for small work."""
    if elements >= PARALLEL_MIN:
        return kernel(*args)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(old)


@numba.njit(parallel=True, **_JIT)
def adc_stage(y, var, has_var, base, sb, sp, su, sc, B, P, U, C, k, K, seed, noisy, z_given, z,
              gain1, gain1_sq, offset, mul, add, lsb, s2, bits, floor_mode, scale, sc_b,
              out, ob, op, ou, oc, raw, accumulate, final, sat, bad):  # pragma: no cover
    """Read noise + ADC + digital unit of row tile ``k`` for every output of a layer.

    The analog column output of (sample b, position p, group u, column c) is
    ``y[base + b·sb + p·sp + u·su + c·sc]`` (``var`` likewise when ``has_var``). Per column
    (index u·C + c): ``gain1`` = 1 + γ, ``gain1_sq`` = (1 + γ)², ``offset`` δ, and the digital
    unit's ``mul``/``add``; per group u: ``lsb``, ``s2`` (σ² of converter noise); per (b, u):
    the input scale ``scale[b·sc_b + u]``.

        v = y·(1 + γ) + δ + √(var·(1 + γ)² + s2)·ξ
        code = floor(v / lsb) or round(v / lsb), clipped to [−2^(bits−1), 2^(bits−1) − 1]
        q = code·lsb  (v itself when bits == 0: unquantized)

    The result goes to ``out[b·ob + p·op + u·ou + c·oc]``: q itself when ``raw`` (calibration
    reads), else (q·mul + add)·scale computed in float64, stored (``accumulate``: added) in
    out's precision. ``final``: count the outputs that are not finite in ``bad[b]``.
    ``sat[b]`` counts saturated conversions. ξ: standard normals from the stream of work
    item (b, block of positions, k), or from ``z`` (y's layout, offset 0) when ``z_given``.
    """
    UC = U * C
    per = max(1, CHUNK // UC)
    nblk = (P + per - 1) // per
    items = B * nblk
    quantize = bits > 0
    dt = y.dtype.type
    lo = dt(-(2.0 ** (bits - 1)) if quantize else 0.0)
    hi = dt(2.0 ** (bits - 1) - 1.0 if quantize else 0.0)
    sat_item = np.zeros(items, dtype=np.int64)
    bad_item = np.zeros(items, dtype=np.int64)
    for item in numba.prange(items):
        b = item // nblk
        blk = item - b * nblk
        p0 = blk * per
        p1 = min(P, p0 + per)
        n = (p1 - p0) * UC
        zz = np.zeros(n + (n & 1), dtype=np.float32)
        if noisy and not z_given:
            normals_f32(row_state(seed, (b * nblk + blk) * K + k), zz)
        count = 0
        nbad = 0
        for p in range(p0, p1):
            for u in range(U):
                lsb_u = dt(lsb[u])
                inv_lsb = dt(1.0 / lsb[u]) if quantize else dt(1.0)
                s2_u = dt(s2[u])
                sk = scale[b * sc_b + u]
                ybase = base + b * sb + p * sp + u * su
                obase = b * ob + p * op + u * ou
                zbase = ((p - p0) * U + u) * C
                for c in range(C):
                    col = u * C + c
                    v = y[ybase + c * sc] * dt(gain1[col]) + dt(offset[col])
                    if noisy:
                        vv = var[ybase + c * sc] * dt(gain1_sq[col]) if has_var else dt(0.0)
                        zv = z[ybase + c * sc] if z_given else zz[zbase + c]
                        v += math.sqrt(vv + s2_u) * zv
                    if quantize:
                        cq = np.floor(v * inv_lsb) if floor_mode else np.rint(v * inv_lsb)
                        count += (cq < lo) + (cq > hi)
                        q = min(max(cq, lo), hi) * lsb_u
                    else:
                        q = v
                    o = obase + c * oc
                    if raw:
                        out[o] = q
                    else:
                        val = (np.float64(q) * mul[col] + add[col]) * sk
                        if accumulate:
                            out[o] += val
                        else:
                            out[o] = val
                        if final:
                            nbad += not math.isfinite(out[o])
        sat_item[item] = count
        bad_item[item] = nbad
    for item in range(items):
        b = item // nblk
        sat[b] += sat_item[item]
        bad[b] += bad_item[item]


@numba.njit(parallel=True, **_JIT)
def dac_conv(x, sxb, sxc, sxh, sxw, B, Cin, H, W, s_ch, n_steps, ch_tile, ch_pos, ch_n, offs,
             xq, x2, want_sq, bad_ch, clip_ch):  # pragma: no cover - compiled
    """Input scaling, clipping and DAC of a feature map, written channels-last per row tile.

    x[b·sxb + c·sxc + h·sxh + w·sxw] (any memory format) is divided by the range of its
    channel ``s_ch[c]``, clipped to [−1, 1] and quantized to n = ``n_steps`` signed steps
    (n <= 0: unquantized); the result of channel c (row tile k = ch_tile[c], at position
    ch_pos[c] of the tile's ch_n[k] channels) goes to
    ``xq[offs[k] + ((b·H + h)·W + w)·ch_n[k] + ch_pos[c]]`` and its square to ``x2`` when
    ``want_sq``. ``bad_ch[c]``/``clip_ch[c]`` count entries that are
    not finite / beyond the range.
    """
    quantize = n_steps > 0
    dt = xq.dtype.type
    nn = dt(n_steps) if quantize else dt(1.0)
    inv_n = dt(1.0 / n_steps) if quantize else dt(1.0)
    one = dt(1.0)
    big = np.finfo(x.dtype).max
    rows = B * H
    bad_r = np.zeros((rows, Cin), dtype=np.int64)
    clip_r = np.zeros((rows, Cin), dtype=np.int64)
    for r in numba.prange(rows):
        b = r // H
        h = r - b * H
        for c in range(Cin):
            s = s_ch[c]
            inv = 1.0 / s if s > 0 else 0.0
            k = ch_tile[c]
            n_k = ch_n[k]
            obase = offs[k] + (b * H + h) * W * n_k + ch_pos[c]
            xbase = b * sxb + c * sxc + h * sxh
            nb = 0
            ncl = 0
            for w in range(W):
                v = x[xbase + w * sxw]
                av = abs(v)
                nb += not (av <= big)
                ncl += av > s
                u = min(max(dt(v * inv), -one), one)
                if quantize:
                    u = np.rint(u * nn) * inv_n
                xq[obase + w * n_k] = u
                if want_sq:
                    x2[obase + w * n_k] = u * u
            bad_r[r, c] = nb
            clip_r[r, c] = ncl
    for r in range(rows):
        for c in range(Cin):
            bad_ch[c] += bad_r[r, c]
            clip_ch[c] += clip_r[r, c]


@numba.njit(parallel=True, **_JIT)
def dac_linear(x, N, G, R, K, rpt, row_lo, row_hi, absmax, s_fixed, n_steps, xq, x2, want_sq,
               s_out, bad, clipped):  # pragma: no cover - compiled
    """Input scaling, clipping and DAC of vectors, written in the batched-GEMM layout.

    x is (N, G·R) C-contiguous; row tile k of group u holds rows [row_lo[k], row_hi[k]) of
    the group. The scale of (n, u, k) is the abs-max of those inputs when ``absmax`` (0 for an
    all-zero vector: no pulses), else ``s_fixed[u·K + k]``; it goes to s_out[(n·G + u)·K + k].
    The quantized inputs go to ``xq[((u·K + k)·N + n)·rpt + i]`` (rows beyond a shorter tile
    are 0) and their squares to ``x2`` when ``want_sq``. ``bad[n]``/``clipped[n]`` count
    entries that are not finite / beyond a fixed range.
    """
    quantize = n_steps > 0
    dt = xq.dtype.type
    nn = dt(n_steps) if quantize else dt(1.0)
    inv_n = dt(1.0 / n_steps) if quantize else dt(1.0)
    one = dt(1.0)
    big = np.finfo(x.dtype).max
    for n in numba.prange(N):
        nb = 0
        ncl = 0
        for u in range(G):
            for k in range(K):
                r0 = row_lo[k]
                r1 = row_hi[k]
                xb = n * G * R + u * R
                if absmax:
                    m = 0.0
                    for i in range(r0, r1):
                        av = abs(x[xb + i])
                        nb += not (av <= big)
                        m = av if av > m else m
                    s = m
                else:
                    s = s_fixed[u * K + k]
                    for i in range(r0, r1):
                        av = abs(x[xb + i])
                        nb += not (av <= big)
                        ncl += av > s
                s_out[(n * G + u) * K + k] = s
                inv = 1.0 / s if s > 0 else 0.0
                ob = ((u * K + k) * N + n) * rpt
                for i in range(r0, r1):
                    v = min(max(dt(x[xb + i] * inv), -one), one)
                    if quantize:
                        v = np.rint(v * nn) * inv_n
                    xq[ob + i - r0] = v
                    if want_sq:
                        x2[ob + i - r0] = v * v
                for i in range(r1 - r0, rpt):
                    xq[ob + i] = 0.0
                    if want_sq:
                        x2[ob + i] = 0.0
        bad[n] = nb
        clipped[n] = ncl
