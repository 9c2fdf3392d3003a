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
import torch

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
    """Run ``kernel(*args)`` on as many threads as torch's intra-op pool has (so that
    ``torch.set_num_threads`` governs the whole forward pass), or on one for small work."""
    torch_threads = torch.get_num_threads()
    want = 1 if elements < PARALLEL_MIN else max(1, min(torch_threads,
                                                       numba.config.NUMBA_NUM_THREADS))
    old = numba.get_num_threads()
    try:
        if want == old:
            return kernel(*args)
        numba.set_num_threads(want)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(old)
    finally:
        # numba's OpenMP layer and torch share the runtime's thread-count setting of the
        # calling thread: a kernel launch must not change the user's torch.set_num_threads
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


@numba.njit(inline="always", cache=True)
def _bf16_bits(f):  # pragma: no cover - compiled
    """The bfloat16 bit pattern (round to nearest, ties to even) of the float32 bit pattern
    ``f`` (uint32) of a finite number, as torch's conversion rounds."""
    return np.uint16((f + np.uint32(0x7FFF) + ((f >> np.uint32(16)) & np.uint32(1)))
                     >> np.uint32(16))


@numba.njit(inline="always", **_JIT)
def _var_chunk(var, start, n, var_bits, dst):  # pragma: no cover - compiled
    """dst[:n] = var[start:start + n] in dst's precision; bfloat16 bit patterns (int16)
    widened exactly when ``var_bits``."""
    if var_bits:
        wide = np.empty(n, dtype=np.uint32)
        for e in range(n):
            wide[e] = (np.uint32(var[start + e]) & np.uint32(0xFFFF)) << np.uint32(16)
        f = wide.view(np.float32)
        for e in range(n):
            dst[e] = f[e]
    else:
        for e in range(n):
            dst[e] = var[start + e]


@numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")
def _nan_probe(a, n):  # pragma: no cover - compiled
    """Whether a[:n] holds a non-finite number: x·0 is NaN exactly for those, and a sum
    with a NaN term is NaN in any order (``reassoc``, so that the sum vectorises; no
    ``nnan``)."""
    s = a.dtype.type(0.0)
    for e in range(n):
        s += a[e] * a.dtype.type(0.0)
    return s != s


@numba.njit(parallel=True, **_JIT)
def adc_stage(y, var, has_var, var_bits, base, sb, sp, su, sc, B, P, U, C, k, K, seed, noisy,
              z_given, z, gain1, gain1_sq, offset, mul, add, lsb, s2, bits, floor_mode, scale,
              sc_b, out, ob, op, ou, oc, raw, accumulate, final, sat, bad):  # pragma: no cover
    """Read noise + ADC + digital unit of row tile ``k`` for every output of a layer.

    The analog column output of (sample b, position p, group u, column c) is
    ``y[base + b·sb + p·sp + u·su + c]`` (``var`` likewise when ``has_var``; columns are
    contiguous: ``sc`` must be 1; ``var_bits``: var holds bfloat16 bit patterns, int16).
    ``out`` may be ``y`` itself (same layout): each output is written after its input is
    read. Per column (index u·C + c): ``gain1`` = 1 + γ,
    ``gain1_sq`` = (1 + γ)², ``offset`` δ, and the digital unit's ``mul``/``add``; per group u:
    ``lsb``, ``s2`` (σ² of converter noise); per (b, u): the input scale
    ``scale[b·sc_b + u]``.

        v = y·(1 + γ) + δ + √(var·(1 + γ)² + s2)·ξ
        code = floor(v / lsb) or round(v / lsb), clipped to [−2^(bits−1), 2^(bits−1) − 1]
        q = code·lsb  (v itself when bits == 0: unquantized)

    The result goes to ``out[b·ob + p·op + u·ou + c]`` (``oc`` must be 1): q itself when
    ``raw`` (calibration reads), else (q·mul + add)·scale in out's precision, stored
    (``accumulate``: added). ``final``: count the outputs that are not finite in ``bad[b]``.
    ``sat[b]`` counts saturated conversions. ξ: standard normals from the stream of work
    item (b, block of positions, k), or from ``z`` (y's layout, offset 0) when ``z_given``.
    Every inner loop runs over contiguous columns without branches (vectorised).
    """
    UC = U * C
    per = max(1, CHUNK // UC)
    nblk = (P + per - 1) // per
    items = B * nblk
    quantize = bits > 0
    dt = y.dtype.type
    ot = out.dtype.type
    lo = dt(-(2.0 ** (bits - 1)) if quantize else 0.0)
    hi = dt(2.0 ** (bits - 1) - 1.0 if quantize else 0.0)
    g1 = gain1.astype(y.dtype)
    g1s = gain1_sq.astype(y.dtype)
    off = offset.astype(y.dtype)
    mo = mul.astype(out.dtype)
    ao = add.astype(out.dtype)
    sat_item = np.zeros(items, dtype=np.int64)
    bad_item = np.zeros(items, dtype=np.int64)
    # dense layout (positions, groups and columns contiguous, as channels-last maps and
    # matrix products are): one flat run per work item, parameters tiled to its length
    dense = (sp == UC or P == 1) and (su == C or U == 1) and (op == UC or P == 1) \
        and (ou == C or U == 1) and not z_given
    if dense:
        m = per * UC
        g1t = np.empty(m, dtype=y.dtype)
        g1st = np.empty(m, dtype=y.dtype)
        offt = np.empty(m, dtype=y.dtype)
        mot = np.empty(m, dtype=out.dtype)
        aot = np.empty(m, dtype=out.dtype)
        s2t = np.empty(m, dtype=y.dtype)
        lsbt = np.empty(m, dtype=y.dtype)
        invt = np.empty(m, dtype=y.dtype)
        for i in range(m):
            col = i % UC
            u = col // C
            g1t[i] = g1[col]
            g1st[i] = g1s[col]
            offt[i] = off[col]
            mot[i] = mo[col]
            aot[i] = ao[col]
            s2t[i] = dt(s2[u])
            lsbt[i] = dt(lsb[u])
            invt[i] = dt(1.0 / lsb[u]) if quantize else dt(1.0)
    for item in numba.prange(items):
        b = item // nblk
        blk = item - b * nblk
        p0 = blk * per
        p1 = min(P, p0 + per)
        n = (p1 - p0) * UC
        zz = np.empty(n + (n & 1), dtype=np.float32)  # every element written when noisy
        if noisy and not z_given:
            normals_f32(row_state(seed, (b * nblk + blk) * K + k), zz)
        if dense:
            yb = base + b * sb + p0 * UC
            o0 = b * ob + p0 * UC
            yr = y[yb:yb + n]
            vb = np.empty(n, dtype=y.dtype)
            if noisy:
                sd = np.empty(n, dtype=y.dtype)  # the noise's standard deviation
                if has_var:
                    _var_chunk(var, yb, n, var_bits, sd)
                    for e in range(n):
                        sd[e] = math.sqrt(sd[e] * g1st[e] + s2t[e])
                else:
                    for e in range(n):
                        sd[e] = math.sqrt(s2t[e])
                for e in range(n):
                    vb[e] = yr[e] * g1t[e] + offt[e] + sd[e] * dt(zz[e])
            else:
                for e in range(n):
                    vb[e] = yr[e] * g1t[e] + offt[e]
            count = 0
            if quantize:
                if floor_mode:
                    for e in range(n):
                        cq = np.floor(vb[e] * invt[e])
                        count += (cq < lo) + (cq > hi)
                        vb[e] = min(max(cq, lo), hi) * lsbt[e]
                else:
                    for e in range(n):
                        cq = np.rint(vb[e] * invt[e])
                        count += (cq < lo) + (cq > hi)
                        vb[e] = min(max(cq, lo), hi) * lsbt[e]
            orow = out[o0:o0 + n]
            nbad = 0
            if raw:
                for e in range(n):
                    orow[e] = vb[e]
            else:
                if U > 1:
                    skt = np.empty(n, dtype=out.dtype)  # the input scale of each element
                    for e in range(n):
                        skt[e] = ot(scale[b * sc_b + (e % UC) // C])
                    if accumulate:
                        for e in range(n):
                            orow[e] += (ot(vb[e]) * mot[e] + aot[e]) * skt[e]
                    else:
                        for e in range(n):
                            orow[e] = (ot(vb[e]) * mot[e] + aot[e]) * skt[e]
                else:
                    sk = ot(scale[b * sc_b])
                    if accumulate:
                        for e in range(n):
                            orow[e] += (ot(vb[e]) * mot[e] + aot[e]) * sk
                    else:
                        for e in range(n):
                            orow[e] = (ot(vb[e]) * mot[e] + aot[e]) * sk
                if final and _nan_probe(orow, n):
                    for e in range(n):
                        nbad += not math.isfinite(orow[e])
            sat_item[item] = count
            bad_item[item] = nbad
            continue
        v = np.empty(C, dtype=y.dtype)
        count = 0
        nbad = 0
        for p in range(p0, p1):
            for u in range(U):
                lsb_u = dt(lsb[u])
                inv_lsb = dt(1.0 / lsb[u]) if quantize else dt(1.0)
                s2_u = dt(s2[u])
                sk = ot(scale[b * sc_b + u])
                yb = base + b * sb + p * sp + u * su
                ob_ = b * ob + p * op + u * ou
                cb = u * C
                yr = y[yb:yb + C]
                gr = g1[cb:cb + C]
                fr = off[cb:cb + C]
                for c in range(C):
                    v[c] = yr[c] * gr[c] + fr[c]
                if noisy:
                    gs = g1s[cb:cb + C]
                    sd = np.empty(C, dtype=y.dtype)
                    if has_var:
                        _var_chunk(var, yb, C, var_bits, sd)
                        for c in range(C):
                            sd[c] = math.sqrt(sd[c] * gs[c] + s2_u)
                    else:
                        for c in range(C):
                            sd[c] = math.sqrt(s2_u)
                    if z_given:
                        zg = z[yb:yb + C]
                        for c in range(C):
                            v[c] += sd[c] * dt(zg[c])
                    else:
                        z0 = ((p - p0) * U + u) * C
                        zr = zz[z0:z0 + C]
                        for c in range(C):
                            v[c] += sd[c] * dt(zr[c])
                if quantize:
                    for c in range(C):
                        cq = np.floor(v[c] * inv_lsb) if floor_mode else np.rint(v[c] * inv_lsb)
                        count += (cq < lo) + (cq > hi)
                        v[c] = min(max(cq, lo), hi) * lsb_u
                orow = out[ob_:ob_ + C]
                if raw:
                    for c in range(C):
                        orow[c] = v[c]
                else:
                    mr = mo[cb:cb + C]
                    ar = ao[cb:cb + C]
                    if accumulate:
                        for c in range(C):
                            orow[c] += (ot(v[c]) * mr[c] + ar[c]) * sk
                    else:
                        for c in range(C):
                            orow[c] = (ot(v[c]) * mr[c] + ar[c]) * sk
                    if final:
                        for c in range(C):
                            nbad += not math.isfinite(orow[c])
        sat_item[item] = count
        bad_item[item] = nbad
    for item in range(items):
        b = item // nblk
        sat[b] += sat_item[item]
        bad[b] += bad_item[item]


@numba.njit(parallel=True, **_JIT)
def dac_conv(x, sxb, sxc, sxh, sxw, B, Cin, H, W, s_run, n_steps, run_c0, run_len, run_k,
             run_pos, ch_n, offs, xq, x2, want_sq, sq_bits, bad, clipped):  # pragma: no cover
    """Input scaling, clipping and DAC of a feature map, written channels-last per row tile.

    x[b·sxb + c·sxc + h·sxh + w·sxw] (any memory format). The input channels come in runs:
    run i is channels [run_c0[i], run_c0[i] + run_len[i]) of row tile run_k[i], at channel
    positions run_pos[i] … of that tile's ch_n[k] channels; their range is s_run[i]. Each
    value is divided by its range, clipped to [−1, 1] and quantized to n = ``n_steps`` signed
    steps (n <= 0: unquantized) and goes to ``xq[offs[k] + ((b·H + h)·W + w)·ch_n[k] + pos]``
    (its square to ``x2`` when ``want_sq``; as bfloat16 bit patterns when ``sq_bits``, x2
    then int16). ``bad[r]``/``clipped[r]`` count, per image row
    r = b·H + h, entries that are not finite / beyond their range.
    """
    quantize = n_steps > 0
    dt = xq.dtype.type
    nn = dt(n_steps) if quantize else dt(1.0)
    inv_n = dt(1.0 / n_steps) if quantize else dt(1.0)
    one = dt(1.0)
    big = np.finfo(x.dtype).max
    n_runs = run_c0.shape[0]
    inv_run = np.empty(n_runs)
    for i in range(n_runs):
        inv_run[i] = 1.0 / s_run[i] if s_run[i] > 0 else 0.0
    channels_last = sxc == 1
    m = W
    for i in range(n_runs):
        m = max(m, run_len[i])
    for r in numba.prange(B * H):
        b = r // H
        h = r - b * H
        nb = 0
        ncl = 0
        sqd = np.empty(m, dtype=xq.dtype)  # squares of one run, then their bfloat16 bits
        sq32 = np.empty(m, dtype=np.float32)
        sqb = sq32.view(np.uint32)
        for i in range(n_runs):
            k = run_k[i]
            n_k = ch_n[k]
            s = s_run[i]
            inv = inv_run[i]
            c0 = run_c0[i]
            length = run_len[i]
            if channels_last:  # channels contiguous in x and in xq
                for w in range(W):
                    xr = x[b * sxb + h * sxh + w * sxw + c0:
                           b * sxb + h * sxh + w * sxw + c0 + length]
                    o = offs[k] + ((b * H + h) * W + w) * n_k + run_pos[i]
                    qr = xq[o:o + length]
                    for c in range(length):
                        v = xr[c]
                        av = abs(v)
                        nb += not (av <= big)
                        ncl += av > s
                        u = min(max(dt(v * inv), -one), one)
                        if quantize:
                            u = np.rint(u * nn) * inv_n
                        qr[c] = u
                    if want_sq:
                        sq = x2[o:o + length]
                        if sq_bits:
                            for c in range(length):
                                sq32[c] = np.float32(qr[c] * qr[c])
                            for c in range(length):
                                sq[c] = _bf16_bits(sqb[c])
                        else:
                            for c in range(length):
                                sq[c] = qr[c] * qr[c]
            else:  # rows of one channel contiguous in x: run over them innermost
                for c in range(length):
                    xbase = b * sxb + (c0 + c) * sxc + h * sxh
                    obase = offs[k] + (b * H + h) * W * n_k + run_pos[i] + c
                    for w in range(W):
                        v = x[xbase + w * sxw]
                        av = abs(v)
                        nb += not (av <= big)
                        ncl += av > s
                        u = min(max(dt(v * inv), -one), one)
                        if quantize:
                            u = np.rint(u * nn) * inv_n
                        xq[obase + w * n_k] = u
                        sqd[w] = u * u
                    if want_sq:
                        if sq_bits:
                            for w in range(W):
                                sq32[w] = np.float32(sqd[w])
                            for w in range(W):
                                x2[obase + w * n_k] = _bf16_bits(sqb[w])
                        else:
                            for w in range(W):
                                x2[obase + w * n_k] = sqd[w]
        bad[r] = nb
        clipped[r] = ncl


@numba.njit(parallel=True, **_JIT)
def dac_linear(x, N, G, R, K, rpt, row_lo, row_hi, absmax, s_fixed, n_steps, xq, x2, want_sq,
               sq_bits, s_out, bad, clipped):  # pragma: no cover - compiled
    """Input scaling, clipping and DAC of vectors, written in the batched-GEMM layout.

    x is (N, G·R) C-contiguous; row tile k of group u holds rows [row_lo[k], row_hi[k]) of
    the group. The scale of (n, u, k) is the abs-max of those inputs when ``absmax`` (0 for an
    all-zero vector: no pulses), else ``s_fixed[u·K + k]``; it goes to s_out[(n·G + u)·K + k].
    The quantized inputs go to ``xq[((u·K + k)·N + n)·rpt + i]`` (rows beyond a shorter tile
    are 0) and their squares to ``x2`` when ``want_sq`` (as bfloat16 bit patterns when
    ``sq_bits``, x2 then int16). ``bad[n]``/``clipped[n]`` count entries that are not finite
    / beyond a fixed range.
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
        sq32 = np.empty(rpt, dtype=np.float32)
        sqb = sq32.view(np.uint32)
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
                for i in range(r1 - r0, rpt):
                    xq[ob + i] = 0.0
                if want_sq:
                    if sq_bits:
                        for i in range(rpt):
                            sq32[i] = np.float32(xq[ob + i] * xq[ob + i])
                        for i in range(rpt):
                            x2[ob + i] = _bf16_bits(sqb[i])
                    else:
                        for i in range(rpt):
                            x2[ob + i] = xq[ob + i] * xq[ob + i]
        bad[n] = nb
        clipped[n] = ncl
