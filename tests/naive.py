"""Slow, obvious reference implementations of the published device formulas.

Written straight from the papers' equations, one scalar at a time with the math module,
independently of the card machinery, so that a transcription error in a card or a bug in
the law evaluator shows up as a mismatch. The sources, per section below:

- generic PCM: S. R. Nandakumar et al., "Phase-change memory models for deep learning
  training and inference", ICECS 2019; used in V. Joshi et al., Nat. Commun. 11, 2473
  (2020), doi:10.1038/s41467-020-16108-9 (programming σ, drift exponent, 1/f read noise);
- HERMES PCM: M. Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based on
  phase-change memory for deep neural network inference", Nat. Electron. 6, 680 (2023),
  doi:10.1038/s41928-023-01010-1 (the same model form fitted on the chip, one and two
  devices per polarity);
- CMO/HfOx RRAM: the IBM Zurich fits as published with IBM aihwkit's CMO-ReRAM inference
  noise model (programming σ, log-time relaxation, read noise).

The device cards (``devices/*.toml``) give the same coefficients, each with its source.
"""

from __future__ import annotations

import math


def clip(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


# -- generic PCM (Nandakumar 2019 / Joshi 2020) ------------------------------------------
PCM_GENERIC = {"g_max_uS": 25.0, "t0": 20.0, "t_read": 250e-9}


def pcm_generic_sigma_prog_uS(gh: float) -> float:
    return 0.26348 + 1.9650 * gh - 1.1731 * gh**2


def pcm_generic_nu_mean(gh: float) -> float:
    return clip(-0.0155 * math.log(gh) + 0.0244, 0.049, 0.1)


def pcm_generic_nu_std(gh: float) -> float:
    return clip(-0.0125 * math.log(gh) - 0.0059, 0.008, 0.045)


def pcm_generic_q_s(gh: float) -> float:
    return min(0.0088 / max(gh**0.65, 1e-3), 0.2)


# -- HERMES PCM (Le Gallo 2023) -------------------------------------------------------------
HERMES = {
    2: {"g_max_uS": 20.7, "t0": 300.0, "t_read": 512e-9,
        "c": (0.16603, 4.71806, -8.48101, 4.68961)},
    1: {"g_max_uS": 10.35, "t0": 200.0, "t_read": 512e-9,
        "c": (0.15782, 2.32444, -2.16311, 0.68842)},
}


def hermes_sigma_prog_uS(gh: float, ndev: int) -> float:
    c = HERMES[ndev]["c"]
    return c[0] + c[1] * gh + c[2] * gh**2 + c[3] * gh**3


def hermes_nu_mean(gh: float) -> float:
    if gh < 0.0945:
        return clip(-0.0387 * math.log(gh) - 0.0182, 0.072, 0.13)
    return -0.0436 * gh**2 - 0.0126 * gh + 0.0736


def hermes_nu_std(gh: float, ndev: int) -> float:
    if ndev == 2:
        if gh < 0.3055:
            return clip(-0.0117 * math.log(gh) - 0.0057, 0.0091, 0.04)
        return -0.0118 * gh**2 + 0.0093 * gh + 0.0073
    if gh < 0.3039:
        return clip(-0.0120 * math.log(gh) - 0.0023, 0.0124, 0.04)
    return -0.0165 * gh**2 + 0.0116 * gh + 0.0104


def hermes_q_s(gh: float, ndev: int) -> float:
    if ndev == 2:
        if gh < 0.16:
            return clip(-0.0117 * math.log(gh) - 0.0069, 0.015, 0.04)
        return 0.0069 * gh**3 - 0.0280 * gh**2 + 0.0211 * gh + 0.0123
    if gh < 0.1591:
        return clip(-0.0078 * math.log(gh) + 0.0038, 0.0179, 0.04)
    return 0.0664 * gh**3 - 0.1352 * gh**2 + 0.0768 * gh + 0.0088


# -- shared PCM time laws -----------------------------------------------------------------
def pcm_drift(g_prog: float, nu: float, t: float, t0: float) -> float:
    return g_prog * ((t + t0) / t0) ** (-nu)


def pcm_read_sigma_rel(q_s: float, t: float, t0: float, t_read: float) -> float:
    return q_s * math.sqrt(math.log((t + t0 + t_read) / (2 * t_read)))


# -- CMO/HfOx RRAM (IBM Zurich fits, as in aihwkit's CMO-ReRAM model) ---------------------------
def rram_cmo_sigma_prog_uS(g_uS: float) -> float:
    return 0.0112185 + 0.0112903 * g_uS


def rram_cmo_mean_shift_uS(t: float) -> float:
    return -0.089 * math.log(t) if t >= 1.0 else 0.0


def rram_cmo_spread_uS(t: float) -> float:
    return 0.042011 * math.log(max(t, 1.0)) + 0.41183


def rram_cmo_read_sigma_uS(g_uS: float, t: float) -> float:
    return 0.0277316 * math.log10(g_uS) * math.sqrt(math.log((t + 1e-6) / 2e-6))


def folded_normal_moments(mu: float, sd: float) -> tuple[float, float]:
    """Mean and standard deviation of |X|, X ~ N(mu, sd²)."""
    if sd == 0:
        return abs(mu), 0.0
    a = mu / sd
    big_phi = 0.5 * (1 + math.erf(-a / math.sqrt(2)))
    mean = sd * math.sqrt(2 / math.pi) * math.exp(-a * a / 2) + mu * (1 - 2 * big_phi)
    var = mu * mu + sd * sd - mean * mean
    return mean, math.sqrt(max(var, 0.0))


def rectified_normal_moments(mu: float, sd: float) -> tuple[float, float]:
    """Mean and standard deviation of max(0, X), X ~ N(mu, sd²)."""
    a = mu / sd
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(a / math.sqrt(2)))
    m1 = mu * big_phi + sd * phi
    m2 = (mu * mu + sd * sd) * big_phi + mu * sd * phi
    return m1, math.sqrt(m2 - m1 * m1)


# -- tile: a slow, obvious reference of the deterministic signal path ------------------------
def tile_matvec_reference(x_row, gp, gn, *, dac_bits, adc_bits, adc_mode, output_range,
                          gain, offset, four_phase, affine_a, affine_b, alpha,
                          weight_scale, fixed_range=None):
    """One input vector through DAC → array → ADC → digital unit, with Python loops.

    gp, gn: normalised conductance matrices (lists of lists); no noise.
    """
    rows, cols = len(gp), len(gp[0])
    s_x = fixed_range if fixed_range is not None else (max(abs(v) for v in x_row) or 1.0)
    xq = []
    for v in x_row:
        u = min(max(v / s_x, -1.0), 1.0)
        if dac_bits is not None:
            n = 2 ** (dac_bits - 1) - 1
            u = round(u * n) / n  # Python's round is half-to-even, like numpy.rint
        xq.append(u)

    def adc(y, j):
        y = y * (1 + gain[j]) + offset[j]
        if adc_bits is None:
            return y
        lsb = output_range / 2 ** (adc_bits - 1)
        code = math.floor(y / lsb) if adc_mode == "floor" else round(y / lsb)
        code = min(max(code, -(2 ** (adc_bits - 1))), 2 ** (adc_bits - 1) - 1)
        return code * lsb

    out = []
    for j in range(cols):
        if four_phase:
            total = 0.0
            for sx, g, sign in ((1, gp, 1), (1, gn, -1), (-1, gp, -1), (-1, gn, 1)):
                acc = 0.0
                for i in range(rows):
                    xi = max(sx * xq[i], 0.0)
                    acc += xi * g[i][j]
                total += sign * adc(acc, j)
            y = total
        else:
            acc = 0.0
            for i in range(rows):
                acc += xq[i] * (gp[i][j] - gn[i][j])
            y = adc(acc, j)
        a = alpha if not isinstance(alpha, list) else alpha[j]
        out.append((affine_a[j] * y + affine_b[j]) * a * weight_scale[j] * s_x)
    return out


# -- persistent relaxation path (Lévy construction), written out plainly ---------------------
def brownian_path_reference(normal, u: float, levels: int) -> float:
    """β(u) of a standard Brownian motion built node by node, as the docstring of
    memsim.devices._relaxation describes it; ``normal(k, level, n)`` gives the standard
    normal of a node (octave k; level 0 = the node 2^k, 1..levels = bisections of the octave,
    levels + 1 = the final bridge step; n = position at that level)."""
    if u <= 0:
        return 0.0
    k = math.floor(math.log2(u))
    while 2.0**k > u:  # guard against log2 rounding
        k -= 1
    while 2.0 ** (k + 1) <= u:
        k += 1
    node = {0: normal(0, 0, 0)}  # β(2^j) by octave exponent j
    for j in range(1, max(k + 1, 0) + 1):  # independent increments upwards
        node[j] = node[j - 1] + math.sqrt(2.0 ** (j - 1)) * normal(j, 0, 0)
    for j in range(-1, min(k, 0) - 1, -1):  # bridges from β(0) = 0 downwards
        node[j] = node[j + 1] / 2 + math.sqrt(2.0 ** (j - 1)) * normal(j, 0, 0)
    lo, hi = 2.0**k, 2.0 ** (k + 1)
    b_lo, b_hi = node[k], node[k + 1]
    n = 0
    for level in range(1, levels + 1):
        mid = (lo + hi) / 2
        b_mid = (b_lo + b_hi) / 2 + math.sqrt((hi - lo) / 4) * normal(k, level, n)
        if u < mid:
            hi, b_hi, n = mid, b_mid, 2 * n
        else:
            lo, b_lo, n = mid, b_mid, 2 * n + 1
    frac = (u - lo) / (hi - lo)  # first: (b_hi − b_lo)(u − lo) can underflow for tiny u
    mean = b_lo + (b_hi - b_lo) * frac
    return mean + math.sqrt((u - lo) / (hi - lo) * (hi - u)) * normal(k, levels + 1, n)
