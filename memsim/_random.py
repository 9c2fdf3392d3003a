"""Fast, reproducible standard normals for the hot paths (numba, SplitMix64 streams).

numpy's ``Generator.standard_normal`` costs several times more per number than these
generators (timings in ``benchmarks/README.md``), which matters when every MVM output needs
its own noise. Two generators,
both on SplitMix64 streams (Steele, Lea & Flood, OOPSLA 2014):

* ``_normal`` (scalar, float64): the ziggurat method of Marsaglia & Tsang (J. Stat. Softw.
  5(8), 2000; 256 layers), exact in double precision including the tail.
  Used by :func:`standard_normal` (device programming and device-level reads).
* ``normals_f32`` (vectorised, float32): the Box-Muller transform (Box & Muller, Ann. Math.
  Stat. 29, 1958) with branch-free polynomial log, sin and cos that the compiler turns into
  SIMD code; one 64-bit SplitMix64 output gives two normals (40 bits for the radius, 24 for
  the angle). Exact in distribution up to float32 rounding, except that |z| cannot exceed
  sqrt(80 ln 2) = 7.45 (the smallest 40-bit uniform), a tail of probability 1e-13.
  Used for the per-MVM noise of the tiles
  (and the slow per-device noise they draw per read time), where float32 is the working
  precision.

Randomness stays explicit: the caller's ``numpy.random.Generator`` supplies one 64-bit seed
per call, and the result depends only on that seed, never on the thread count. Row ``b`` of
an output uses the SplitMix64 sequence starting 2^32·b steps after the seed, so rows never
share numbers (a row uses far fewer than 2^32).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

__all__ = ["draw_seed", "standard_normal"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ROW_STRIDE = np.uint64((0x9E3779B97F4A7C15 << 32) & 0xFFFFFFFFFFFFFFFF)


def _tables(n: int = 256, r: float = 3.6541528853610088, v: float = 4.92867323399e-3):
    """Ziggurat layer edges x_0 > x_1 = r > ... > x_n = 0 and f(x_i) = exp(−x_i²/2)."""
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.zeros(n + 1)
    x[0] = v / f(r)
    x[1] = r
    for i in range(1, n - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(f(x[i]) + v / x[i]))
    x[n] = 0.0
    return x, np.exp(-0.5 * x * x)


_X, _F = _tables()
_R = float(_X[1])


@numba.njit(inline="always", cache=True)
def _next(state):  # pragma: no cover - compiled
    state = state + _GAMMA
    z = state
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return state, z ^ (z >> np.uint64(31))


@numba.njit(inline="always", cache=True)
def _uniform(state):  # pragma: no cover - compiled
    """(0, 1]: never 0, so that log() is finite."""
    state, bits = _next(state)
    return state, ((bits >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _normal(state):  # pragma: no cover - compiled
    """One N(0, 1) number (ziggurat); returns (new state, value)."""
    while True:
        state, bits = _next(state)
        i = np.int64(bits & np.uint64(0xFF))
        u = 2.0 * ((bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)) - 1.0
        z = u * _X[i]
        if abs(z) < _X[i + 1]:
            return state, z
        if i == 0:  # the tail beyond r
            while True:
                state, u1 = _uniform(state)
                state, u2 = _uniform(state)
                a = -math.log(u1) / _R
                b = -math.log(u2)
                if b + b > a * a:
                    return state, (_R + a) if u > 0 else -(_R + a)
        state, u3 = _uniform(state)
        if _F[i] + u3 * (_F[i + 1] - _F[i]) < math.exp(-0.5 * z * z):
            return state, z


# -- vectorised Box-Muller (float32) ----------------------------------------------------------
_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
# ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716 for m in [1/sqrt 2, sqrt 2): the odd
# series to s^7 leaves an absolute error below 3e-8 (float32 resolves 6e-8 near 1).
_LOG_C = tuple(2.0 / (2 * k + 1) for k in range(4))
# sin and cos on [-pi/4, pi/4]: Taylor series to x^9 / x^8 (errors below 2e-9 / 2.5e-8)
_SIN_C = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(5))
_COS_C = tuple((-1) ** k / math.factorial(2 * k) for k in range(5))
_MANT = 1.0 / 8388608.0  # 2^-23
_ANGLE = 2.0 * math.pi / 16777216.0  # 2 pi / 2^24


@numba.njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
def _mix(z):  # pragma: no cover - compiled
    """The SplitMix64 output function of a counter value."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
def _box_muller_parts(bits):  # pragma: no cover - compiled
    """(r², cos θ, sin θ) of the Box-Muller transform from 64 random bits, float32, without
    branches: z1 = r cos θ and z2 = r sin θ are independent N(0, 1).

    u1 = a 2^-40 with a = (bits >> 24) + 1 in [1, 2^40] (never 0), r² = -2 ln u1;
    θ = 2 pi b 2^-24 with b the low 24 bits.
    """
    f32 = np.float32
    a = (bits >> np.uint64(24)) + np.uint64(1)
    b = np.int64(bits & np.uint64(0xFFFFFF))
    # -ln u1 = (40 - e) ln 2 - ln m with a = m 2^e, m in [1, 2) from the top 24 bits of a
    e = np.int64(63) - np.int64(leading_zeros(a))
    m = f32(np.int64((a << np.uint64(63 - e)) >> np.uint64(40))) * f32(_MANT)
    big = m > f32(_SQRT2)
    m = m * f32(0.5) if big else m
    e = e + 1 if big else e
    s = (m - f32(1.0)) / (m + f32(1.0))
    s2 = s * s
    p = f32(_LOG_C[3])
    p = p * s2 + f32(_LOG_C[2])
    p = p * s2 + f32(_LOG_C[1])
    p = p * s2 + f32(_LOG_C[0])
    r2 = max(f32(2.0) * (f32(40 - e) * f32(_LN2) - s * p), f32(0.0))
    # angle: the nearest quarter turn k and a remainder in [-pi/4, pi/4]
    k = (b + np.int64(1 << 21)) >> np.int64(22)
    x = f32(b - (k << np.int64(22))) * f32(_ANGLE)
    x2 = x * x
    sn = f32(_SIN_C[4])
    sn = sn * x2 + f32(_SIN_C[3])
    sn = sn * x2 + f32(_SIN_C[2])
    sn = sn * x2 + f32(_SIN_C[1])
    sn = (sn * x2 + f32(_SIN_C[0])) * x
    cs = f32(_COS_C[4])
    cs = cs * x2 + f32(_COS_C[3])
    cs = cs * x2 + f32(_COS_C[2])
    cs = cs * x2 + f32(_COS_C[1])
    cs = cs * x2 + f32(_COS_C[0])
    # rotate (cos x, sin x) by k quarter turns
    swap = (k & 1) == 1
    c1 = sn if swap else cs
    s1 = cs if swap else sn
    c1 = -c1 if ((k + 1) & 2) == 2 else c1  # cos(x + k pi/2) < 0 for k = 1, 2
    s1 = -s1 if (k & 2) == 2 else s1  # sin(x + k pi/2) < 0 for k = 2, 3
    return r2, c1, s1


@numba.njit(inline="always", cache=True, error_model="numpy", fastmath={"contract"})
def _box_muller(bits):  # pragma: no cover - compiled
    """Two independent float32 N(0, 1) numbers from 64 random bits."""
    r2, c, s = _box_muller_parts(bits)
    r = np.float32(math.sqrt(r2))
    return r * c, r * s


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def normals_f32(state, out):  # pragma: no cover - compiled
    """Fill the 1-D float32 ``out`` (even length) with N(0, 1) numbers from the SplitMix64
    stream that starts at ``state``: pair k uses the stream's (k+1)-th output, its two
    numbers go to out[k] and out[k + n/2]."""
    h = out.shape[0] // 2
    for k in range(h):
        state += _GAMMA
        z1, z2 = _box_muller(_mix(state))
        out[k] = z1
        out[k + h] = z2


@numba.njit(inline="always", cache=True)
def row_state(seed, row):  # pragma: no cover - compiled
    return np.uint64(seed) + np.uint64(row) * _ROW_STRIDE


@numba.njit(cache=True)
def _fill(out, seed):  # pragma: no cover - compiled
    rows, cols = out.shape
    for b in range(rows):
        state = row_state(seed, b)
        for j in range(cols):
            state, z = _normal(state)
            out[b, j] = z


def draw_seed(rng: np.random.Generator) -> np.uint64:
    """One 64-bit seed from the caller's generator."""
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...] | int,
                    dtype: type = np.float64) -> np.ndarray:
    """N(0, 1) numbers of ``shape``, reproducible from ``rng``'s state."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = int(np.prod(shape))
    cols = shape[-1] if shape else 1
    out = np.empty((n // cols if cols else 0, cols), dtype=dtype)
    if out.size:
        _fill(out, draw_seed(rng))
    return out.reshape(shape)
