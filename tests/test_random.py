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
