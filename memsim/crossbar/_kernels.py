"""Fused element-wise kernels of the tile engine's hot path (numba, all CPU threads).

Private: arrays in, arrays out; :mod:`memsim.crossbar.engine` validates inputs and allocates
outputs. The slow, obvious versions live in ``tests/naive.py`` and the engine's torch
back-end (:func:`memsim.crossbar.engine.adc_stage_torch`, the same formula in torch ops, used
on CUDA) is compared with this one on the same normals.

Randomness: every work item (sample b, group u, row tile k, block of columns) draws its
normals from the SplitMix64 stream of a key that depends only on those indices
(:func:`memsim._random.row_state`), so the numbers are the same whatever the thread count
or the order in which threads take the items.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim._random import normals_f32, row_state

# Fused multiply-add allowed (one rounding instead of two), nothing else of fast-math.
_JIT = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")

#: Output elements per work item: large enough to amortise the loop set-up, small enough
#: that a batch of one image still spreads over the cores.
CHUNK = 4096


@numba.njit(parallel=True, **_JIT)
def adc_stage(y, var, has_var, ys_b, ys_u, B, U, K, C, P, seed, noisy, z_given, z,
              gain1, gain1_sq, offset, mul, add, lsb, s2, bits, floor_mode,
              scale, sc_b, out, raw, sat, bad):  # pragma: no cover - compiled
    """Read noise + ADC + digital unit for every output of a layer, summed over row tiles.

    Layout: the analog column output of (sample b, group u, row tile k, column c, position
    p) is ``y[b·ys_b + (u·K + k)·ys_u + c·P + p]`` (``var`` likewise when ``has_var``).
    Per column (index (u·K + k)·C + c): ``gain1`` = 1 + γ, ``gain1_sq`` = (1 + γ)²,
    ``offset`` δ, and the digital unit's ``mul``/``add``; per row tile (index u·K + k):
    ``lsb``, ``s2`` (σ² of converter noise); per (b, u, k): the input scale
    ``scale[b·sc_b + u·K + k]``.

        v = y·(1 + γ) + δ + √(var·(1 + γ)² + s2)·ξ
        code = floor(v / lsb) or round(v / lsb), clipped to [−2^(bits−1), 2^(bits−1) − 1]
        q = code·lsb  (v itself when bits == 0: unquantized)

    ``raw``: out[((b·U + u)·K + k)·C·P + c·P + p] = q (calibration reads);
    otherwise out[(b·U + u)·C·P + c·P + p] = Σ_k (q·mul + add)·scale, computed in float64
    and stored in out's precision (the caller's: a float64 input gets a float64 result).
    ``sat[b]`` counts saturated conversions, ``bad[b]`` outputs that are not finite.
    ξ: standard normals from the stream of work item (b, u, k, column block), or from
    ``z`` (same layout as y) when ``z_given`` (tests).
    """
    CP = C * P
    cols_per = max(1, CHUNK // P)
    nblk = (C + cols_per - 1) // cols_per
    items = B * U * nblk
    quantize = bits > 0
    lo = -(2.0 ** (bits - 1)) if quantize else 0.0
    hi = 2.0 ** (bits - 1) - 1.0 if quantize else 0.0
    one = y.dtype.type(1.0)
    sat_item = np.zeros(items, dtype=np.int64)
    bad_item = np.zeros(items, dtype=np.int64)
    for item in numba.prange(items):
        b = item // (U * nblk)
        rest = item - b * U * nblk
        u = rest // nblk
        blk = rest - u * nblk
        c0 = blk * cols_per
        c1 = min(C, c0 + cols_per)
        n = (c1 - c0) * P
        acc = np.zeros(n, dtype=np.float64)  # the digital unit works in double precision
        zz = np.zeros(n + (n & 1), dtype=np.float32)
        count = 0
        for k in range(K):
            uk = u * K + k
            if noisy and not z_given:
                normals_f32(row_state(seed, (b * U + u) * K * nblk + k * nblk + blk), zz)
            ybase = b * ys_b + uk * ys_u + c0 * P
            lsb_k = y.dtype.type(lsb[uk])
            inv_lsb = y.dtype.type(1.0 / lsb[uk]) if quantize else one
            lo_k = y.dtype.type(lo)
            hi_k = y.dtype.type(hi)
            s2_k = y.dtype.type(s2[uk])
            sk = scale[b * sc_b + uk]
            obase = ((b * U + u) * K + k) * CP + c0 * P
            for ci in range(c1 - c0):
                col = uk * C + c0 + ci
                g1 = y.dtype.type(gain1[col])
                g1s = y.dtype.type(gain1_sq[col])
                off = y.dtype.type(offset[col])
                m = mul[col]
                a = add[col]
                for p in range(P):
                    e = ci * P + p
                    v = y[ybase + e] * g1 + off
                    if noisy:
                        vv = var[ybase + e] * g1s if has_var else y.dtype.type(0.0)
                        zv = z[ybase + e] if z_given else zz[e]
                        v += math.sqrt(vv + s2_k) * zv
                    if quantize:
                        cq = np.floor(v * inv_lsb) if floor_mode else np.rint(v * inv_lsb)
                        count += (cq < lo_k) + (cq > hi_k)
                        q = min(max(cq, lo_k), hi_k) * lsb_k
                    else:
                        q = v
                    if raw:
                        out[obase + e] = q
                    else:
                        acc[e] += (q * m + a) * sk
        if not raw:
            obase = (b * U + u) * CP + c0 * P
            nb = 0
            for e in range(n):
                val = out.dtype.type(acc[e])  # the caller's precision; overflow is counted
                out[obase + e] = val
                nb += not math.isfinite(val)
            bad_item[item] = nb
        sat_item[item] = count
    for item in range(items):
        b = item // (U * nblk)
        sat[b] += sat_item[item]
        bad[b] += bad_item[item]
