"""IR drop in a resistive crossbar: exact nodal solve, attenuation approximation, accuracy.

The slow, obvious reference below builds the nodal equations branch by branch with Python
loops and solves them densely with numpy.linalg.solve; memsim's sparse solver (deviation
form, one LU per batch) and its iterative attenuation kernel are checked against it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memsim.crossbar import irdrop
from memsim.errors import ConfigError, InputError

G_MAX = 25e-6  # generic PCM g_max (S)


# -- slow reference --------------------------------------------------------------------------
def dense_reference(g: np.ndarray, v: np.ndarray, r_row: float,
                    r_col: float) -> tuple[np.ndarray, np.ndarray]:
    """(column currents (C,), cell voltages (R, C)) for one input vector v (R,).

    Every wire segment and cell is a branch between two labelled nodes. A zero wire
    resistance merges that wire into its terminal: row nodes become the source node of the
    row, column nodes become ground.
    """
    rows, cols = g.shape

    def row_node(i, j):
        return ("u", i, j) if r_row > 0 else ("src", i)

    def col_node(i, j):
        return ("w", i, j) if r_col > 0 else ("gnd",)

    branches = []
    for i in range(rows):
        if r_row > 0:
            branches.append((("src", i), row_node(i, 0), 1.0 / r_row))
            for j in range(cols - 1):
                branches.append((row_node(i, j), row_node(i, j + 1), 1.0 / r_row))
    for j in range(cols):
        if r_col > 0:
            branches.append((col_node(rows - 1, j), ("gnd",), 1.0 / r_col))
            for i in range(rows - 1):
                branches.append((col_node(i, j), col_node(i + 1, j), 1.0 / r_col))
    for i in range(rows):
        for j in range(cols):
            branches.append((row_node(i, j), col_node(i, j), g[i, j]))
    fixed = {("src", i): float(v[i]) for i in range(rows)}
    fixed[("gnd",)] = 0.0
    free = sorted({n for a, b, _ in branches for n in (a, b) if n not in fixed})
    index = {n: k for k, n in enumerate(free)}
    k_mat = np.zeros((len(free), len(free)))
    rhs = np.zeros(len(free))
    for a, b, y in branches:
        for p, q in ((a, b), (b, a)):
            if p in fixed:
                continue
            k_mat[index[p], index[p]] += y
            if q in fixed:
                rhs[index[p]] += y * fixed[q]
            else:
                k_mat[index[p], index[q]] -= y
    x = np.linalg.solve(k_mat, rhs) if free else np.zeros(0)

    def volt(n):
        return fixed[n] if n in fixed else x[index[n]]

    cell = np.array([[volt(row_node(i, j)) - volt(col_node(i, j)) for j in range(cols)]
                     for i in range(rows)])
    if r_col > 0:
        current = np.array([volt(col_node(rows - 1, j)) / r_col for j in range(cols)])
    else:
        current = np.array([sum(g[i, j] * cell[i, j] for i in range(rows)) for j in range(cols)])
    return current, cell


def transfer_matrix(g: np.ndarray, r: float) -> np.ndarray:
    """Exact M with I = v @ M for every v (the network is linear)."""
    return irdrop.solve_exact(g, np.eye(g.shape[0]), r, r)


def rel_dev(model: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(model - exact) / np.linalg.norm(exact))


# -- (a) no wire resistance: exact arithmetic --------------------------------------------------
def test_zero_resistance_is_ideal_product():
    rng = np.random.default_rng(0)
    g = rng.uniform(0, G_MAX, (7, 5))
    v = rng.uniform(-0.2, 0.2, (4, 7))
    assert np.array_equal(irdrop.solve_exact(g, v, 0.0, 0.0), v @ g)
    assert np.array_equal(irdrop.solve_exact(g, v[0], 0, 0), v[0] @ g)
    for method in irdrop.METHODS:
        a = irdrop.attenuation(g, 0.0, 0.0, method=method)
        assert a.shape == g.shape and np.array_equal(a, np.ones_like(g))


# -- (b) against the slow reference and hand calculations ----------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (1, 5), (5, 1)])
@pytest.mark.parametrize("r_row, r_col", [(2.0, 3.0), (0.0, 3.0), (2.0, 0.0), (1e-3, 50.0)])
def test_solve_exact_matches_dense_reference(shape, r_row, r_col):
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 1e-2, shape)  # large cells so the wire effect is ~10 %
    v = rng.uniform(-1.0, 1.0, (3, shape[0]))
    got = irdrop.solve_exact(g, v, r_row, r_col)
    want = np.array([dense_reference(g, vb, r_row, r_col)[0] for vb in v])
    scale = np.abs(v) @ g
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * scale.max())
    assert rel_dev(v @ g, want) > 1e-4  # the wires matter in this case: a real check


def test_one_cell_is_a_series_circuit():
    g, v, r_row, r_col = 40e-6, 0.17, 2.5, 1.5
    got = irdrop.solve_exact(np.array([[g]]), np.array([v]), r_row, r_col)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(v / (r_row + 1.0 / g + r_col), rel=1e-13)


def test_row_chain_by_hand():
    """One row of two cells, columns at 0 V: a ladder solved by hand."""
    g0, g1, r, v = 3e-3, 5e-3, 4.0, 1.0
    # node 1: (u0 − u1)/r = g1 u1 → u0 = u1 (1 + r g1); node 0: (v − u0)/r = g0 u0 + g1 u1
    u1 = v / ((1 + r * g1) * (1 + r * g0) + r * g1)
    u0 = u1 * (1 + r * g1)
    got = irdrop.solve_exact(np.array([[g0, g1]]), np.array([v]), r, 0.0)
    np.testing.assert_allclose(got, [g0 * u0, g1 * u1], rtol=1e-13)


def test_batch_shapes_and_chunking(monkeypatch):
    rng = np.random.default_rng(2)
    g = rng.uniform(0, G_MAX, (6, 4))
    v = rng.uniform(0, 0.2, (5, 6))
    whole = irdrop.solve_exact(g, v, 2.5, 2.5)
    assert whole.shape == (5, 4)
    np.testing.assert_allclose(irdrop.solve_exact(g, v[2], 2.5, 2.5), whole[2], rtol=1e-12)
    monkeypatch.setattr(irdrop, "_BATCH_CHUNK", 2)
    np.testing.assert_allclose(irdrop.solve_exact(g, v, 2.5, 2.5), whole, rtol=1e-12)
    assert irdrop.solve_exact(g, np.zeros((0, 6)), 2.5, 2.5).shape == (0, 4)


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (2, 5), (6, 6)])
@pytest.mark.parametrize("r_row, r_col", [(2.0, 3.0), (0.0, 3.0), (2.0, 0.0)])
def test_attenuation_is_cell_voltage_over_reference(shape, r_row, r_col):
    rng = np.random.default_rng(3)
    g = rng.uniform(0, 1e-2, shape)
    v_ref = rng.uniform(0.5, 1.5, shape[0])  # non-uniform reference input
    _, cell = dense_reference(g, v_ref, r_row, r_col)
    np.testing.assert_allclose(irdrop.attenuation(g, r_row, r_col, v_ref), cell / v_ref[:, None],
                               rtol=1e-9)


def test_attenuation_exact_along_reference_input():
    rng = np.random.default_rng(4)
    g = rng.uniform(0, G_MAX, (40, 30))
    v_ref = rng.uniform(0.05, 0.2, 40)
    a = irdrop.attenuation(g, 2.5, 1.0, v_ref)
    exact = irdrop.solve_exact(g, np.stack([v_ref, 3 * v_ref]), 2.5, 1.0)
    np.testing.assert_allclose(np.stack([v_ref, 3 * v_ref]) @ (g * a), exact, rtol=1e-9)
    # only the direction of v_ref matters: a scalar (e.g. the mean input) = the default
    np.testing.assert_allclose(irdrop.attenuation(g, 2.5, 1.0, 0.1),
                               irdrop.attenuation(g, 2.5, 1.0), rtol=1e-10)


def test_attenuation_is_exact_to_first_order_for_every_input():
    """M − G·A is O(r²) for both methods: halving r divides it by ~4; I − ideal is O(r)."""
    rng = np.random.default_rng(5)
    g = rng.uniform(0, G_MAX, (24, 20))
    errs = {"exact": [], "first_order": [], "ideal": []}
    for r in (0.4, 0.2):
        m = transfer_matrix(g, r)
        for method in ("exact", "first_order"):
            errs[method].append(rel_dev(g * irdrop.attenuation(g, r, r, method=method), m))
        errs["ideal"].append(rel_dev(g, m))
    assert 1.9 < errs["ideal"][0] / errs["ideal"][1] < 2.1
    for method in ("exact", "first_order"):
        assert 3.6 < errs[method][0] / errs[method][1] < 4.4, (method, errs)
    assert errs["exact"][0] < 0.25 * errs["first_order"][0]  # measured 0.11


@pytest.mark.parametrize("pattern", ["uniform", "checkerboard"])
@pytest.mark.parametrize("r_row, r_col", [(5.0, 5.0), (1.0, 7.0), (7.0, 0.5)])
def test_uniform_array_attenuation_is_the_exact_transfer(pattern, r_row, r_col):
    """Observed identity: for a uniform array, G·A (all-ones reference) is the transfer
    matrix, so the approximation is exact for every input; a checkerboard splits into two
    interleaved uniform sub-arrays. (A random array is not: see the error table.)"""
    g = np.full((12, 9), G_MAX / 2)
    if pattern == "checkerboard":
        g = G_MAX * ((np.add.outer(np.arange(12), np.arange(9)) % 2) == 0)
    m = irdrop.solve_exact(g, np.eye(12), r_row, r_col)
    np.testing.assert_allclose(g * irdrop.attenuation(g, r_row, r_col), m,
                               rtol=1e-10, atol=1e-12 * np.abs(m).max())


# -- (c) physical sanity -------------------------------------------------------------------------
def test_positive_inputs_lose_current():
    """Realistic positive inputs: every column current is positive and below the ideal.

    (Not a theorem for every input: a row held at 0 V sinks current from the columns, so a
    single driven row can push slightly more than g·V into a column through the wires.)
    """
    rng = np.random.default_rng(6)
    g = rng.uniform(0, G_MAX, (32, 24))
    v = rng.uniform(0, 0.2, (16, 32))
    exact = irdrop.solve_exact(g, v, 2.5, 2.5)
    assert np.all(exact > 0) and np.all(exact < v @ g)


def test_error_grows_with_resistance_and_size():
    rng = np.random.default_rng(7)
    g = rng.uniform(0, G_MAX, (64, 64))
    v = rng.uniform(0, 0.2, (8, 64))
    by_r = [rel_dev(v @ g, irdrop.solve_exact(g, v, r, r)) for r in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(by_r) > 0)
    by_n = [rel_dev(v[:, :n] @ g[:n, :n], irdrop.solve_exact(g[:n, :n], v[:, :n], 2.5, 2.5))
            for n in (8, 16, 32, 64)]
    assert np.all(np.diff(by_n) > 0)
    # ε = r g N² sets the size: quadrupling N² at fixed r·g multiplies the error by ~4
    assert 3.0 < by_n[1] / by_n[0] < 4.5


def test_far_cells_attenuate_more():
    g = np.full((16, 12), G_MAX / 2)
    a = irdrop.attenuation(g, 2.5, 2.5)
    assert np.all((a > 0) & (a < 1))
    assert np.all(np.diff(a, axis=1) < 0)  # farther from the row driver (left)
    assert np.all(np.diff(a, axis=0) > 0)  # closer to the virtual ground (bottom)
    assert a.argmin() == np.ravel_multi_index((0, 11), a.shape)  # top right
    assert a.argmax() == np.ravel_multi_index((15, 0), a.shape)  # bottom left
    row_only = irdrop.attenuation(g, 2.5, 0.0)
    col_only = irdrop.attenuation(g, 0.0, 2.5)
    assert np.all(np.diff(row_only, axis=1) < 0) and np.allclose(np.diff(row_only, axis=0), 0)
    assert np.all(np.diff(col_only, axis=0) > 0) and np.allclose(np.diff(col_only, axis=1), 0)


# -- (d) accuracy of the approximation -------------------------------------------------------------
def test_approx_error_table():
    """The attenuation approximation beats ignoring IR drop by far, in every row.

    Ignoring IR drop errs at first order in ε = r g_max N² (≈ ε/3). The attenuation is exact
    for the all-ones direction and at first order for every input, so what is left is second
    order and only from the inputs' spread around their mean: below 0.05 ε of the ideal
    error (measured ≤ 0.01 ε at N = 16 … 128, r = 2.5 Ω, g_max = 25 µS, i.e. ε ≤ 1.02), and
    well below the brief's 10 %. The first-order variant's remainder is O(ε²): below ε times
    the ideal error (measured ≈ 0.4 ε).
    """
    table = irdrop.approx_error_table()
    print()
    print(irdrop.format_error_table(table))
    assert len(table) == 4 * 3
    for row in table:
        assert row["err_ideal"] > 0.25 * row["eps"]  # IR drop is really there (≈ ε/3)
        assert row["err_approx"] < 0.1 * row["err_ideal"]
        assert row["err_approx"] < 0.05 * row["eps"] * row["err_ideal"]
        assert row["err_first_order"] < row["eps"] * row["err_ideal"]
    for pattern in irdrop.PATTERNS:
        ideal = [row["err_ideal"] for row in table if row["pattern"] == pattern]
        assert np.all(np.diff(ideal) > 0)


def test_approx_error_table_signed_inputs():
    """Zero-mean inputs in [−0.2, 0.2] V are far from the all-ones reference direction, so
    the second-order remainder is larger (measured 0.03–0.05 ε of the ideal error), yet still
    a small fraction of ignoring IR drop: asserted below 0.1 ε and below 10 %."""
    table = irdrop.approx_error_table(patterns=("random",), v_min=-0.2)
    print()
    print(irdrop.format_error_table(table))
    for row in table:
        assert row["err_approx"] < 0.1 * row["err_ideal"]
        assert row["err_approx"] < 0.1 * row["eps"] * row["err_ideal"]


# -- (e) properties ------------------------------------------------------------------------------
@st.composite
def crossbars(draw):
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 5))
    g = draw(hnp.arrays(np.float64, (rows, cols), elements=st.floats(0, 1e-2)))
    r_row = draw(st.sampled_from([0.0, 0.5, 3.0, 20.0]))
    r_col = draw(st.sampled_from([0.0, 0.5, 3.0, 20.0]))
    volts = st.floats(-1, 1)
    batch = draw(st.integers(1, 3))
    v1 = draw(hnp.arrays(np.float64, (batch, rows), elements=volts))
    v2 = draw(hnp.arrays(np.float64, (batch, rows), elements=volts))
    a = draw(st.floats(-10, 10))
    return g, r_row, r_col, v1, v2, a


@settings(max_examples=60, deadline=None)
@given(crossbars())
def test_linearity_and_superposition(case):
    g, r_row, r_col, v1, v2, a = case
    scale = 1e-12 * max(float(((np.abs(v1) + np.abs(v2)) @ g).max()) * max(1.0, abs(a)), 1e-300)
    i1 = irdrop.solve_exact(g, v1, r_row, r_col)
    i2 = irdrop.solve_exact(g, v2, r_row, r_col)
    np.testing.assert_allclose(irdrop.solve_exact(g, a * v1, r_row, r_col), a * i1,
                               rtol=1e-9, atol=scale)
    np.testing.assert_allclose(irdrop.solve_exact(g, v1 + v2, r_row, r_col), i1 + i2,
                               rtol=1e-9, atol=scale)
    # the attenuation (iterative kernel) is exact along its all-ones reference input
    ones = np.ones(g.shape[0])
    want = irdrop.solve_exact(g, ones, r_row, r_col)
    np.testing.assert_allclose(ones @ (g * irdrop.attenuation(g, r_row, r_col)), want,
                               rtol=1e-9, atol=1e-12 * max(float((ones @ g).max()), 1e-300))


# -- (f) bad input -------------------------------------------------------------------------------
GOOD_G = np.full((3, 2), 1e-5)
GOOD_V = np.full((4, 3), 0.1)


@pytest.mark.parametrize("g, v, r_row, r_col, match", [
    (np.array([[1e-5, np.nan], [1e-5, 1e-5], [1e-5, 1e-5]]), GOOD_V, 1, 1, "NaN or inf"),
    (np.array([[1e-5, np.inf], [1e-5, 1e-5], [1e-5, 1e-5]]), GOOD_V, 1, 1, "NaN or inf"),
    (np.array([[1e-5, -1e-6], [1e-5, 1e-5], [1e-5, 1e-5]]), GOOD_V, 1, 1, "negative"),
    (np.full(3, 1e-5), GOOD_V, 1, 1, "2-D"),
    (np.full((3, 2, 1), 1e-5), GOOD_V, 1, 1, "2-D"),
    (np.zeros((0, 2)), np.zeros((4, 0)), 1, 1, "2-D"),
    (GOOD_G, np.full((4, 2), 0.1), 1, 1, r"shape \(batch, 3\)"),
    (GOOD_G, np.full((2, 4, 3), 0.1), 1, 1, r"shape \(batch, 3\)"),
    (GOOD_G, np.array([0.1, np.nan, 0.1]), 1, 1, "v contain NaN"),
    (GOOD_G, GOOD_V, -1.0, 1, "r_row"),
    (GOOD_G, GOOD_V, 1, -1e-9, "r_col"),
    (GOOD_G, GOOD_V, np.nan, 1, "r_row"),
    (GOOD_G, GOOD_V, 1, np.inf, "r_col"),
    (GOOD_G, GOOD_V, "one", 1, "r_row"),
])
def test_solve_exact_rejects_bad_input(g, v, r_row, r_col, match):
    with pytest.raises(ValueError, match=match):
        irdrop.solve_exact(g, v, r_row, r_col)


@pytest.mark.parametrize("kwargs, match", [
    ({"r_row": -2.0}, "r_row"),
    ({"v_ref": 0.0}, "nonzero"),
    ({"v_ref": np.array([1.0, 0.0, 1.0])}, "nonzero"),
    ({"v_ref": np.ones(2)}, r"v_ref must have shape"),
    ({"v_ref": np.ones((2, 3))}, r"scalar or have shape \(3,\)"),
    ({"v_ref": np.nan}, "NaN"),
    ({"method": "spice"}, "method"),
    ({"method": "first_order", "v_ref": np.ones(3)}, "no effect"),
])
def test_attenuation_rejects_bad_input(kwargs, match):
    args = {"g": GOOD_G, "r_row": 1.0, "r_col": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        irdrop.attenuation(**args)
    with pytest.raises(ValueError, match="negative"):
        irdrop.attenuation(-GOOD_G, 1.0, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"patterns": ("stripes",)}, "pattern"),
    ({"sizes": (0,)}, "sizes"),
    ({"batch": 0}, "batch"),
    ({"g_max": -1.0}, "g_max"),
    ({"r_wire": -1.0}, "r_wire"),
    ({"v_min": 0.3}, "v_min"),
])
def test_error_table_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        irdrop.approx_error_table(**kwargs)


# -- differential cells: the "separate" and "shared" bit-line topologies ------------------------
def dense_reference_layers(gs, signs, v, r_row, r_col):
    """Column currents (C,) of row-wire layers (layer k: cells gs[k], rows driven at
    signs[k]·v) sharing one column wire per column, built branch by branch and solved
    densely: the slow reference for the shared bit line (one layer: dense_reference)."""
    rows, cols = gs[0].shape

    def row_node(k, i, j):
        return ("u", k, i, j) if r_row > 0 else ("src", k, i)

    def col_node(i, j):
        return ("w", i, j) if r_col > 0 else ("gnd",)

    branches = []
    for k, g in enumerate(gs):
        for i in range(rows):
            if r_row > 0:
                branches.append((("src", k, i), row_node(k, i, 0), 1.0 / r_row))
                for j in range(cols - 1):
                    branches.append((row_node(k, i, j), row_node(k, i, j + 1), 1.0 / r_row))
            for j in range(cols):
                branches.append((row_node(k, i, j), col_node(i, j), g[i, j]))
    if r_col > 0:
        for j in range(cols):
            for i in range(rows - 1):
                branches.append((col_node(i, j), col_node(i + 1, j), 1.0 / r_col))
            branches.append((col_node(rows - 1, j), ("gnd",), 1.0 / r_col))
    fixed = {("src", k, i): signs[k] * float(v[i]) for k in range(len(gs)) for i in range(rows)}
    fixed[("gnd",)] = 0.0
    free = sorted({n for a, b, _ in branches for n in (a, b) if n not in fixed})
    index = {n: q for q, n in enumerate(free)}
    k_mat = np.zeros((len(free), len(free)))
    rhs = np.zeros(len(free))
    for a, b, y in branches:
        for p, q in ((a, b), (b, a)):
            if p in fixed:
                continue
            k_mat[index[p], index[p]] += y
            if q in fixed:
                rhs[index[p]] += y * fixed[q]
            else:
                k_mat[index[p], index[q]] -= y
    x = np.linalg.solve(k_mat, rhs) if free else np.zeros(0)

    def volt(n):
        return fixed[n] if n in fixed else x[index[n]]

    return np.array([sum(g[i, j] * (volt(row_node(k, i, j)) - volt(col_node(i, j)))
                         for k, g in enumerate(gs) for i in range(rows)) for j in range(cols)])


def diff_pair(rng, shape, g_max=1e-2):
    w = rng.uniform(-1, 1, shape)
    return g_max * np.maximum(w, 0), g_max * np.maximum(-w, 0)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (5, 1)])
@pytest.mark.parametrize("r_row, r_col", [(2.0, 3.0), (0.0, 3.0), (2.0, 0.0), (1e-3, 50.0)])
@pytest.mark.parametrize("topology", irdrop.TOPOLOGIES)
def test_solve_differential_matches_dense_reference(shape, r_row, r_col, topology):
    rng = np.random.default_rng(31)
    gp, gn = rng.uniform(0, 1e-2, shape), rng.uniform(0, 1e-2, shape)
    v = rng.uniform(-1.0, 1.0, (3, shape[0]))
    got = irdrop.solve_differential(gp, gn, v, r_row, r_col, topology)
    if topology == "shared":
        want = np.array([dense_reference_layers([gp, gn], [1, -1], vb, r_row, r_col)
                         for vb in v])
    else:
        want = np.array([dense_reference(gp, vb, r_row, r_col)[0]
                         - dense_reference(gn, vb, r_row, r_col)[0] for vb in v])
    scale = np.abs(v) @ (gp + gn)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * scale.max())
    assert rel_dev(v @ (gp - gn), want) > 1e-4  # the wires matter in this case


def test_differential_identities():
    rng = np.random.default_rng(32)
    gp, gn = diff_pair(rng, (6, 5), G_MAX)
    v = rng.uniform(-0.2, 0.2, (4, 6))
    # no wires: the ideal differential product, exactly, in both topologies
    for topology in irdrop.TOPOLOGIES:
        assert np.array_equal(irdrop.solve_differential(gp, gn, v, 0, 0, topology),
                              v @ gp - v @ gn)
        assert irdrop.solve_differential(gp, gn, v[0], 2, 2, topology).shape == (5,)
        assert irdrop.solve_differential(gp, gn, v[:0], 2, 2, topology).shape == (0, 5)
    # separate = two arrays, subtracted
    np.testing.assert_allclose(irdrop.solve_differential(gp, gn, v, 2.5, 1.5, "separate"),
                               irdrop.solve_exact(gp, v, 2.5, 1.5)
                               - irdrop.solve_exact(gn, v, 2.5, 1.5), rtol=1e-13)
    # shared with an empty negative polarity is the positive array alone
    zero = np.zeros_like(gn)
    np.testing.assert_allclose(irdrop.solve_differential(gp, zero, v, 2.5, 1.5, "shared"),
                               irdrop.solve_exact(gp, v, 2.5, 1.5), rtol=1e-12)
    # swapping the polarities flips the sign (the two row wires are alike)
    np.testing.assert_allclose(irdrop.solve_differential(gn, gp, v, 2.5, 1.5, "shared"),
                               -irdrop.solve_differential(gp, gn, v, 2.5, 1.5, "shared"),
                               rtol=1e-12, atol=1e-25)


def test_topologies_differ_when_wires_matter():
    """Both polarities on one column wire is another circuit: at 32 × 32, 1 Ω, HERMES g_max
    the separate solve misses a large part of the shared cell's IR drop."""
    rng = np.random.default_rng(33)
    gp, gn = diff_pair(rng, (32, 32), 20.7e-6)
    v = rng.uniform(-0.2, 0.2, (32, 32))
    shared = irdrop.solve_differential(gp, gn, v, 1.0, 1.0, "shared")
    separate = irdrop.solve_differential(gp, gn, v, 1.0, 1.0, "separate")
    effect = rel_dev(v @ (gp - gn), shared)
    assert rel_dev(separate, shared) > 0.2 * effect


@pytest.mark.parametrize("r_row, r_col", [(2.5, 2.5), (0.0, 3.0), (3.0, 0.0)])
def test_attenuation_differential_separate_is_attenuation_of_each_array(r_row, r_col):
    rng = np.random.default_rng(34)
    gp, gn = diff_pair(rng, (12, 9), G_MAX)
    ap, an = irdrop.attenuation_differential(gp, gn, r_row, r_col, "separate")
    np.testing.assert_allclose(ap, irdrop.attenuation(gp, r_row, r_col), rtol=1e-12)
    np.testing.assert_allclose(an, irdrop.attenuation(gn, r_row, r_col), rtol=1e-12)
    f = irdrop.attenuation_differential(gp, gn, r_row, r_col, "separate", method="first_order")
    np.testing.assert_allclose(f[0], irdrop.attenuation(gp, r_row, r_col, method="first_order"),
                               rtol=1e-13)


def test_attenuation_differential_shared_is_exact_with_column_wires_only():
    """r_row = 0: the shared-cell transfer is (G+ − G−)(1 − B⁻¹b), which is the adjoint
    (common-mode) attenuation: exact for every input."""
    rng = np.random.default_rng(35)
    gp, gn = diff_pair(rng, (20, 7), 1e-3)
    ap, an = irdrop.attenuation_differential(gp, gn, 0.0, 4.0, "shared")
    m = irdrop.solve_differential(gp, gn, np.eye(20), 0.0, 4.0, "shared")
    np.testing.assert_allclose(gp * ap - gn * an, m, rtol=1e-9, atol=1e-12 * np.abs(m).max())
    assert rel_dev(gp - gn, m) > 0.05  # and the wire matters here


@pytest.mark.parametrize("topology", irdrop.TOPOLOGIES)
def test_attenuation_differential_is_first_order_exact_for_every_input(topology):
    """M − (G+A+ − G−A−) is O(r²) for both methods: halving r divides it by ~4 (ignoring IR
    drop errs at O(r): by ~2)."""
    rng = np.random.default_rng(36)
    gp, gn = diff_pair(rng, (24, 20), G_MAX)
    errs = {"exact": [], "first_order": [], "ideal": []}
    for r in (0.4, 0.2):
        m = irdrop.solve_differential(gp, gn, np.eye(24), r, r, topology)
        for method in ("exact", "first_order"):
            ap, an = irdrop.attenuation_differential(gp, gn, r, r, topology, method=method)
            errs[method].append(rel_dev(gp * ap - gn * an, m))
        errs["ideal"].append(rel_dev(gp - gn, m))
    assert 1.9 < errs["ideal"][0] / errs["ideal"][1] < 2.1
    for method in ("exact", "first_order"):
        assert 3.6 < errs[method][0] / errs[method][1] < 4.4, (method, errs)
    assert errs["exact"][0] < 0.5 * errs["first_order"][0]


def test_attenuation_differential_separate_exact_along_nonuniform_v_ref():
    rng = np.random.default_rng(37)
    gp, gn = diff_pair(rng, (16, 10), G_MAX)
    v_ref = rng.uniform(0.05, 0.2, 16)
    ap, an = irdrop.attenuation_differential(gp, gn, 2.5, 1.0, "separate", v_ref)
    want = irdrop.solve_differential(gp, gn, v_ref, 2.5, 1.0, "separate")
    np.testing.assert_allclose(v_ref @ (gp * ap - gn * an), want, rtol=1e-9)
    # and still first-order right for other inputs: far better than ignoring IR drop
    v = rng.uniform(-0.2, 0.2, (8, 16))
    exact = irdrop.solve_differential(gp, gn, v, 2.5, 1.0, "separate")
    assert rel_dev(v @ (gp * ap - gn * an), exact) < 0.05 * rel_dev(v @ (gp - gn), exact)


def test_physical_cell_voltages_are_a_bad_attenuation_for_the_shared_cell():
    """The voltage each cell sees under a real ±V reference input is set by the net column
    current; using it as A leaves a first-order error for signed inputs, of the size of
    ignoring IR drop. The adjoint (common-mode) A does not."""
    rng = np.random.default_rng(38)
    n = 32
    gp, gn = diff_pair(rng, (n, n), 20.7e-6)
    r = 2.5
    v = rng.uniform(-0.2, 0.2, (64, n))
    exact = irdrop.solve_differential(gp, gn, v, r, r, "shared")
    cell_p, cell_n = irdrop._cell_voltages([gp, gn], (1.0, -1.0), r, r, np.ones(n))
    err_physical = rel_dev(v @ (gp * cell_p - gn * (-cell_n)), exact)
    ap, an = irdrop.attenuation_differential(gp, gn, r, r, "shared")
    err_adjoint = rel_dev(v @ (gp * ap - gn * an), exact)
    err_ideal = rel_dev(v @ (gp - gn), exact)
    print(f"\nshared 32x32 2.5 ohm: ideal {err_ideal:.2e}, physical-cell A {err_physical:.2e}, "
          f"adjoint A {err_adjoint:.2e}")
    assert err_physical > 0.3 * err_ideal
    assert err_adjoint < 0.02 * err_physical


def test_differential_error_table():
    """Approximation vs ignoring IR drop vs the other topology, HERMES-like defaults
    (g_max = 20.7 µS, 1 Ω, signed inputs ±0.2 V). The approximation's remainder is second
    order: below 0.2 ε of the ideal error in every row (measured ≤ 0.13 ε, ε ≤ 0.34), and
    the other topology's solve misses a large part of the IR drop (measured 29–48 %)."""
    table = irdrop.differential_error_table(sizes=(16, 32, 64, 128))
    print()
    print(irdrop.format_differential_table(table))
    assert len(table) == 4 * 2 * 2
    for row in table:
        assert row["err_ideal"] > 0.15 * row["eps"]  # the wires matter (measured 0.18–0.6 ε)
        assert row["err_approx"] < row["err_first_order"]
        assert row["err_approx"] < 0.2 * row["eps"] * row["err_ideal"]
        assert row["err_other_topology"] > 0.25 * row["err_ideal"]
    for topology in irdrop.TOPOLOGIES:
        ideal = [r["err_ideal"] for r in table
                 if r["topology"] == topology and r["pattern"] == "random"]
        assert np.all(np.diff(ideal) > 0)


@st.composite
def diff_crossbars(draw):
    g, r_row, r_col, v1, v2, a = draw(crossbars())
    g2 = draw(hnp.arrays(np.float64, g.shape, elements=st.floats(0, 1e-2)))
    topology = draw(st.sampled_from(irdrop.TOPOLOGIES))
    return g, g2, r_row, r_col, v1, v2, a, topology


@settings(max_examples=40, deadline=None)
@given(diff_crossbars())
def test_differential_linearity(case):
    gp, gn, r_row, r_col, v1, v2, a, topology = case
    scale = 1e-12 * max(float(((np.abs(v1) + np.abs(v2)) @ (gp + gn)).max()) * max(1.0, abs(a)),
                        1e-300)
    i1 = irdrop.solve_differential(gp, gn, v1, r_row, r_col, topology)
    i2 = irdrop.solve_differential(gp, gn, v2, r_row, r_col, topology)
    np.testing.assert_allclose(irdrop.solve_differential(gp, gn, a * v1, r_row, r_col, topology),
                               a * i1, rtol=1e-9, atol=scale)
    np.testing.assert_allclose(irdrop.solve_differential(gp, gn, v1 + v2, r_row, r_col,
                                                         topology), i1 + i2, rtol=1e-9, atol=scale)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"g_neg": np.full((3, 3), 1e-5)}, InputError, "same shape"),
    ({"g_neg": -GOOD_G}, InputError, "negative conductance matrix g_neg has negative"),
    ({"g_pos": np.full((3, 2), np.nan)}, InputError, "g_pos contains NaN"),
    ({"topology": "both"}, ConfigError, "topology must be one of"),
    ({"r_row": -1.0}, ConfigError, "r_row"),
    ({"v": np.ones((4, 2))}, InputError, r"shape \(batch, 3\)"),
])
def test_solve_differential_rejects_bad_input(kwargs, error, match):
    args = {"g_pos": GOOD_G, "g_neg": GOOD_G / 2, "v": GOOD_V, "r_row": 1.0, "r_col": 1.0,
            "topology": "shared"} | kwargs
    with pytest.raises(error, match=match):
        irdrop.solve_differential(**args)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"topology": "Shared"}, ConfigError, "topology"),
    ({"method": "spice"}, ConfigError, "method"),
    ({"method": "first_order", "v_ref": np.ones(3)}, ConfigError, "no effect"),
    ({"v_ref": np.array([1.0, 0.0, 1.0])}, InputError, "nonzero"),
    ({"g_neg": np.full((2, 2), 1e-5)}, InputError, "same shape"),
])
def test_attenuation_differential_rejects_bad_input(kwargs, error, match):
    args = {"g_pos": GOOD_G, "g_neg": GOOD_G / 2, "r_row": 1.0, "r_col": 1.0,
            "topology": "separate"} | kwargs
    with pytest.raises(error, match=match):
        irdrop.attenuation_differential(**args)


@pytest.mark.parametrize("kwargs, match", [
    ({"topologies": ("twin",)}, "topology"),
    ({"patterns": ("checkerboard",)}, "pattern"),
    ({"sizes": (0,)}, "sizes"),
    ({"batch": 0}, "batch"),
    ({"g_max": 0.0}, "g_max"),
    ({"v_min": 0.3}, "v_min < v_max"),
])
def test_differential_error_table_rejects_bad_input(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        irdrop.differential_error_table(**kwargs)


def test_errors_are_memsim_types():
    """Bad data is an InputError, a bad parameter a ConfigError; both stay ValueErrors."""
    with pytest.raises(InputError):
        irdrop.solve_exact(-GOOD_G, GOOD_V, 1, 1)
    with pytest.raises(ConfigError):
        irdrop.attenuation(GOOD_G, 1, 1, method="spice")
    assert issubclass(InputError, ValueError) and issubclass(ConfigError, ValueError)
