"""The fast normal generator: exact N(0, 1), reproducible, independent of thread count."""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import stats

from memsim._random import _X, standard_normal

N_ROWS, N_COLS = 1000, 2000  # 2 million numbers


def test_ziggurat_table_closes_at_zero():
    # x_1 = r and the layers decrease to x_n = 0
    assert _X[1] == 3.6541528853610088
    assert np.all(np.diff(_X) < 0)
    assert _X[-1] == 0.0


def test_distribution_is_standard_normal():
    z = standard_normal(np.random.default_rng(0), (N_ROWS, N_COLS)).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # tails (the ziggurat's special case beyond r = 3.654): counts are binomial
    for a in (2.0, 3.0, 3.654, 4.0):
        p = 2 * stats.norm.sf(a)
        k = np.count_nonzero(np.abs(z) > a)
        assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1


def test_rows_and_neighbours_are_uncorrelated():
    z = standard_normal(np.random.default_rng(1), (N_ROWS, N_COLS))
    tol = 5 / math.sqrt(z.size)
    assert abs(np.mean(z[:, 1:] * z[:, :-1])) < tol
    assert abs(np.mean(z[1:, :] * z[:-1, :])) < tol


def test_reproducible_and_thread_count_independent():
    a = standard_normal(np.random.default_rng(2), (64, 300), np.float32)
    b = standard_normal(np.random.default_rng(2), (64, 300), np.float32)
    np.testing.assert_array_equal(a, b)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c = standard_normal(np.random.default_rng(2), (64, 300), np.float32)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, standard_normal(np.random.default_rng(3), (64, 300),
                                                 np.float32))
    assert standard_normal(np.random.default_rng(0), (3, 0)).shape == (3, 0)
    assert standard_normal(np.random.default_rng(0), 5).shape == (5,)


# -- the vectorised Box-Muller generator of the tile kernels ---------------------------------
def _box_muller_sample(n_rows: int, n_cols: int, seed: int = 5) -> np.ndarray:
    from memsim._random import normals_f32, row_state

    out = np.empty((n_rows, n_cols), dtype=np.float32)
    for b in range(n_rows):
        normals_f32(np.uint64(row_state(np.uint64(seed), b)), out[b])
    return out


def test_box_muller_is_standard_normal():
    z = _box_muller_sample(1000, 2000).astype(np.float64).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    for a in (1.0, 2.0, 3.0, 4.0, 4.5):  # tail counts are binomial
        p = 2 * stats.norm.sf(a)
        k = np.count_nonzero(np.abs(z) > a)
        assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1
    # the radius comes from a 40-bit uniform that is never 0: |z| <= sqrt(80 ln 2)
    assert np.abs(z).max() <= math.sqrt(80 * math.log(2)) + 1e-5


def test_box_muller_pairs_and_rows_are_independent():
    """The two numbers of a pair share a radius: uncorrelated, and so are their squares."""
    z = _box_muller_sample(2000, 1000).astype(np.float64)
    h = z.shape[1] // 2
    a, b = z[:, :h].ravel(), z[:, h:].ravel()  # pair k -> columns k and k + h
    tol = 5 / math.sqrt(a.size)
    assert abs(np.mean(a * b)) < tol
    # E[a² b²] = 1 for independent N(0, 1); the variance of a² b² is 9 - 1 = 8
    assert abs(np.mean(a * a * b * b) - 1) < 5 * math.sqrt(8 / a.size)
    assert abs(np.mean(z[1:] * z[:-1])) < 5 / math.sqrt(z[1:].size)
    assert abs(np.mean(z[:, 1:] * z[:, :-1])) < 5 / math.sqrt(z[:, 1:].size)


def test_box_muller_log_and_trig_match_libm():
    """The branch-free polynomials agree with libm to float32 accuracy over their ranges."""
    from memsim._random import _box_muller_parts

    @numba.njit
    def parts(bits):
        r2 = np.empty(bits.size)
        c = np.empty(bits.size)
        s = np.empty(bits.size)
        for i in range(bits.size):
            r2[i], c[i], s[i] = _box_muller_parts(bits[i])
        return r2, c, s

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, size=200_000, dtype=np.uint64)
    # the extremes: u1 = 2^-40 (largest radius) and u1 = 1 (radius 0), angles 0 and 2 pi
    bits[:4] = [0, 2**64 - 1, 0xFFFFFF, (2**40 - 1) << 24]
    r2, c, s = parts(bits)
    a = (bits >> np.uint64(24)).astype(np.float64) + 1.0
    theta = 2 * np.pi * (bits & np.uint64(0xFFFFFF)).astype(np.float64) / 2**24
    r2_exact = -2.0 * (np.log(a) - 40 * math.log(2))
    np.testing.assert_allclose(r2, r2_exact, rtol=3e-7, atol=2e-7)
    np.testing.assert_allclose(c, np.cos(theta), atol=2e-7)
    np.testing.assert_allclose(s, np.sin(theta), atol=2e-7)
