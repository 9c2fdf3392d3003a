"""Persistent relaxation paths: counter-based Brownian motions evaluated at any time (numba).

A device's relaxation is one random path, fixed when it is programmed: its value at a read
time depends only on (the state's seed, the device's index, the time), never on which other
times were read before or in which order. That needs a Brownian motion that can be evaluated
at an arbitrary time without storing or replaying a path. The construction here is Lévy's
(the Brownian-bridge refinement; P. Lévy 1939, see Karatzas & Shreve, *Brownian Motion and
Stochastic Calculus*, §2.3) on a fixed, device-independent skeleton:

1. Octave nodes u = 2^k, k an integer: β(1) ~ N(0, 1); upwards β(2^k) = β(2^(k−1)) +
   √(2^(k−1)) ξ (independent increments); downwards β(2^k) | β(2^(k+1)) ~
   N(β(2^(k+1))/2, 2^(k−1)) (the bridge from β(0) = 0 at the midpoint).
2. Inside the octave [2^k, 2^(k+1)] that holds u: ``_LEVELS`` dyadic bisections; the value at
   the midpoint m of [lo, hi] given the ends is N((β(lo) + β(hi))/2, (hi − lo)/4).
3. In the final interval [lo, hi] (width 2^(k − _LEVELS)): β(u) = β(lo) + (β(hi) − β(lo))
   (u − lo)/(hi − lo) + √((u − lo)(hi − u)/(hi − lo)) ξ_final, the exact bridge law.

Every ξ is a standard normal keyed by (seed, device, stream, node): a SplitMix64 hash
(Steele, Lea & Flood, OOPSLA 2014) of that key fed to the float32 Box–Muller transform of
:mod:`memsim._random`. Each node is used by every query that passes through it, so the joint
law of any set of query times is that of one Brownian path — exactly, for times in distinct
final intervals. Two times in the same final interval (relative distance below
2^−_LEVELS = 1/4096 of the octave) share ξ_final, which makes their fine-scale parts fully
correlated instead of bridge-correlated: a covariance error below (hi − lo)/4, i.e. below
2^−(_LEVELS + 2) ≈ 6·10⁻⁵ of the variance at that time. The marginal at any single time is
exact (up to the float32 rounding of ξ; |ξ| ≤ 7.45, a tail of probability 1e-13).
The path is continuous in u (the final step is zero at both ends of its interval).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim._random import _GAMMA, _box_muller, _mix

__all__ = ["LEVELS", "brownian_at", "relaxation_walk"]

_LEVELS = 12
LEVELS = _LEVELS
_KMIN = -1100  # below the smallest positive double (2^-1074)
_LEVEL_SLOTS = _LEVELS + 2  # level 0: octave node, 1.._LEVELS: bisections, _LEVELS + 1: final


@numba.njit(inline="always", cache=True)
def _stream_key(seed, device, stream):  # pragma: no cover - compiled
    """64-bit key of one standard-normal stream: (state seed, device index, stream id)."""
    inner = _mix(np.uint64(device) * _GAMMA + np.uint64(stream + 1))
    return _mix(np.uint64(seed) ^ inner)


@numba.njit(inline="always", cache=True)
def _normal_at(key, code):  # pragma: no cover - compiled
    """The standard normal at node ``code`` of the stream ``key``."""
    z1, _ = _box_muller(_mix(key + (np.uint64(code) + np.uint64(1)) * _GAMMA))
    return np.float64(z1)


@numba.njit(inline="always", cache=True)
def _code(k, level, n):  # pragma: no cover - compiled
    return ((np.int64(k) - _KMIN) * _LEVEL_SLOTS + level) * (np.int64(1) << _LEVELS) + n


@numba.njit(cache=True)
def brownian_at(key, u):  # pragma: no cover - compiled
    """β(u) of the standard Brownian motion of stream ``key`` (β(0) = 0; u >= 0 finite)."""
    if not u > 0.0:
        return 0.0
    _, e = math.frexp(u)  # u = f 2^e with f in [0.5, 1): 2^(e-1) <= u < 2^e
    k = e - 1
    # octave nodes b_lo = β(2^k), b_hi = β(2^(k+1)), from the anchor β(1)
    b1 = _normal_at(key, _code(0, 0, 0))
    if k >= 0:
        b_lo = b1
        b_hi = b1
        for j in range(1, k + 2):
            b_lo = b_hi
            b_hi = b_lo + math.sqrt(math.ldexp(1.0, j - 1)) * _normal_at(key, _code(j, 0, 0))
    else:
        b_hi = b1
        b_lo = b1
        for j in range(-1, k - 1, -1):
            b_hi = b_lo
            b_lo = 0.5 * b_hi + math.sqrt(math.ldexp(1.0, j - 1)) * _normal_at(
                key, _code(j, 0, 0))
    lo = math.ldexp(1.0, k)
    hi = math.ldexp(1.0, k + 1)
    n = np.int64(0)
    for level in range(1, _LEVELS + 1):
        mid = 0.5 * (lo + hi)
        b_mid = 0.5 * (b_lo + b_hi) + 0.5 * math.sqrt(hi - lo) * _normal_at(
            key, _code(k, level, n))
        if u < mid:
            hi, b_hi, n = mid, b_mid, 2 * n
        else:
            lo, b_lo, n = mid, b_mid, 2 * n + 1
    width = hi - lo
    frac = (u - lo) / width
    spread = math.sqrt(max(frac * (hi - u), 0.0))  # √((u − lo)(hi − u)/width), no underflow
    return b_lo + (b_hi - b_lo) * frac + spread * _normal_at(key, _code(k, _LEVELS + 1, n))


@numba.njit(cache=True)
def relaxation_walk(seed, u, sig0, sig1, out):  # pragma: no cover - compiled
    """Z_i = σ0_i ξ_i + √(2 σ0_i σ1_i) β1_i(u) + σ1_i β2_i(u²) for every device i (flat arrays).

    ξ, β1, β2 are independent per device (streams 0, 1, 2 of the device's key), so Z is a
    Gaussian process in u with independent increments and Var Z(u) = (σ0 + σ1 u)².
    """
    for i in range(sig0.size):
        s0 = sig0[i]
        s1 = sig1[i]
        z = 0.0
        if s0 != 0.0:
            z += s0 * _normal_at(_stream_key(seed, i, 0), 0)
        if s1 != 0.0 and u > 0.0:
            if s0 != 0.0:
                z += math.sqrt(2.0 * s0 * s1) * brownian_at(_stream_key(seed, i, 1), u)
            z += s1 * brownian_at(_stream_key(seed, i, 2), u * u)
        out[i] = z
