"""Kolmogorov–Arnold networks: the B-spline basis, KANLinear on tiles, the chip's digital work,
the trained workloads and the pykan converter (memsim.workloads.kan)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="KANs are torch modules")

import memsim  # noqa: E402
from memsim.errors import ConfigError, InputError  # noqa: E402
from memsim.workloads.kan import (  # noqa: E402
    KAN,
    MLP,
    BSplineBasis,
    KANLinear,
    basis_ops_per_input,
    count_parameters,
    equal_parameter_hidden,
)


def naive_bspline(x: float, knots: list[float], c: int, k: int) -> float:
    """B_c,k(x) by the textbook Cox–de Boor recursion, one value at a time (0/0 = 0)."""
    if k == 0:
        return 1.0 if knots[c] <= x < knots[c + 1] else 0.0
    out = 0.0
    d = knots[c + k] - knots[c]
    if d > 0:
        out += (x - knots[c]) / d * naive_bspline(x, knots, c, k - 1)
    d = knots[c + k + 1] - knots[c + 1]
    if d > 0:
        out += (knots[c + k + 1] - x) / d * naive_bspline(x, knots, c + 1, k - 1)
    return out


# -- the basis -----------------------------------------------------------------------------------
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_basis_is_a_partition_of_unity_on_the_grid(order):
    basis = BSplineBasis(3, grid_size=5, spline_order=order, grid_range=(-1.0, 2.0))
    x = torch.linspace(-1.0, 2.0, 3001, dtype=torch.float64)[:-1].reshape(-1, 3)
    b = basis(x)
    assert b.shape == (1000, 3, 5 + order)
    assert (b >= 0).all()
    torch.testing.assert_close(b.sum(-1), torch.ones(1000, 3, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    # outside the extended grid every basis function is zero
    far = torch.tensor([[-1e3, 5.0, 2.0 + 3.0 / 5 * (order + 0.01)]], dtype=torch.float64)
    assert basis(far).abs().max() == 0


def test_basis_matches_the_slow_reference_on_uniform_and_uneven_knots():
    rng = np.random.default_rng(7)
    grid, order = 4, 3
    n_knots = grid + 2 * order + 1
    uneven = np.sort(rng.uniform(-2, 2, n_knots))
    coincident = np.sort(np.r_[rng.uniform(-2, 2, n_knots - 2), [0.5, 0.5]])
    knots = torch.tensor(np.stack([np.linspace(-2, 2, n_knots), uneven, coincident]))
    basis = BSplineBasis(3, grid, order, knots=knots)
    assert not basis.uniform
    x = rng.uniform(-2.5, 2.5, (200, 3))
    x[0] = [0.5, uneven[5], 0.5]  # exactly on knots
    got = basis(torch.tensor(x, dtype=torch.float64)).numpy()
    k32 = basis.knots.double().numpy()  # the stored (float32) knots
    want = np.array([[[naive_bspline(x[n, i], list(k32[i]), c, order)
                       for c in range(grid + order)] for i in range(3)] for n in range(200)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_basis_matches_scipy_design_matrix():
    interpolate = pytest.importorskip("scipy.interpolate")
    basis = BSplineBasis(1, grid_size=7, spline_order=3, grid_range=(0.0, 1.0))
    t = basis.knots[0].double().numpy()
    x = np.linspace(0.0, 1.0, 501)[:-1]
    want = interpolate.BSpline.design_matrix(x, t, 3).toarray()
    got = basis(torch.tensor(x[:, None])).numpy()[:, 0, :]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_bad_basis_and_layer_settings_are_clear_errors():
    with pytest.raises(InputError, match="knots of shape"):
        BSplineBasis(2, 5, 3, knots=torch.zeros(2, 5))
    with pytest.raises(InputError, match="non-decreasing"):
        BSplineBasis(1, 1, 0, knots=torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ConfigError, match="grid_range"):
        BSplineBasis(2, 5, 3, grid_range=(1.0, 1.0))
    with pytest.raises(ConfigError, match="grid_size"):
        BSplineBasis(2, 0, 3)
    uneven = torch.tensor([[0.0, 0.1, 0.5, 1.0]])
    with pytest.raises(ConfigError, match="uniform knot grid"):
        BSplineBasis(1, 1, 1, knots=uneven, method="lut")
    with pytest.raises(ConfigError, match="basis evaluation"):
        KANLinear(4, 2, basis_method="table")
    with pytest.raises(InputError, match="expects 4"):
        KANLinear(4, 2)(torch.zeros(3, 5))
    with pytest.raises(ConfigError, match="one per layer"):
        KAN([4, 3, 2], grid_range=[(0, 1), (0, 1), (0, 1)])


def test_basis_operation_counts():
    # Piegl & Tiller A2.2: 2 per level + 5 per value; a uniform grid finds the interval in 3
    assert basis_ops_per_input(5, 3) == 3 + 6 + 30
    assert basis_ops_per_input(5, 1) == 3 + 2 + 5
    assert basis_ops_per_input(5, 3, uniform=False) == 4 + 6 + 30  # ceil(log2(11)) = 4
    assert basis_ops_per_input(5, 3, "lut") == 2 + 4


# -- the layer on tiles --------------------------------------------------------------------------
def test_kan_linear_is_base_plus_spline():
    torch.manual_seed(0)
    layer = KANLinear(6, 4, grid_size=5, spline_order=3).double()
    x = torch.rand(10, 6, dtype=torch.float64) * 2 - 1
    coef = layer.spline_coefficients()  # (out, in, G + k)
    want = torch.nn.functional.silu(x) @ layer.base.weight.T \
        + torch.einsum("nic,oic->no", layer.basis(x), coef)
    torch.testing.assert_close(layer(x), want)
    assert layer(x.reshape(2, 5, 6)).shape == (2, 5, 4)


def test_exact_limit_analog_kan_equals_torch_kan():
    torch.manual_seed(1)
    model = KAN([64, 16, 10], grid_range=[(0.0, 1.0), (-2.0, 2.0)]).eval()
    amodel = memsim.analog(model, exact=True)
    kinds = sorted(m.layer_name for m in memsim.analog.analog_modules(amodel))
    assert kinds == ["layers.0.base", "layers.0.spline", "layers.1.base", "layers.1.spline"]
    memsim.program(amodel, 0)
    x = torch.rand(32, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(amodel(x), model(x), rtol=1e-4, atol=1e-5)


def _recorded_kan(method: str):
    torch.manual_seed(2)
    model = KAN([64, 16, 10], basis_method=method).eval()
    amodel = memsim.analog(model)
    memsim.program(amodel, 0)
    x = torch.rand(4, 1, 8, 8)
    memsim.calibrate(amodel, x)
    return amodel, memsim.describe(amodel, x)


def test_the_chip_counts_the_basis_evaluation_as_local_digital_work():
    amodel, desc = _recorded_kan("de-boor")
    nodes = {n.name: n for n in desc.nodes.values()}
    assert [n for n in nodes if n.startswith("bspline")] == ["bspline", "bspline_1"]
    per = basis_ops_per_input(5, 3)
    assert nodes["bspline"].digital_ops == 64 * per
    assert nodes["bspline"].attrs["ldpu_items"] == 64 * per  # one result per clock
    assert nodes["bspline_1"].digital_ops == 16 * per
    assert nodes["bspline"].inputs == ("input",)
    assert nodes["layers.0.spline"].inputs == ("bspline",)
    assert nodes["layers.0.spline"].matrices == (("w", (64 * 8, 16)),)
    assert not desc.notes  # nothing estimated as "1 op per element"
    chip = memsim.load_chip("hermes-64core")
    n_inf = 3
    run = chip.simulate(amodel, inferences=n_inf)
    _, desc_lut = _recorded_kan("lut")
    run_lut = chip.simulate(desc_lut, inferences=n_inf)
    # the two runs differ only in the basis operations: (64 + 16) inputs × ops difference
    diff = run.counts["local_digital_op"] - run_lut.counts["local_digital_op"]
    assert diff == pytest.approx(n_inf * (64 + 16) * (per - basis_ops_per_input(5, 3, "lut")))
    # the basis runs on the cores that hold the spline matrices, before their MVMs
    spline = {r["name"]: r for r in run.layers()}["layers.0.spline"]
    assert spline["energy_breakdown_j"]["local digital"] > 0


def test_basis_results_set_the_local_unit_time():
    """The local unit produces one result per clock: per input max(operations, G + k values
    written), not the one value it reads; the LUT's basis is faster than the recursion."""
    from memsim.chip.ops import ldpu_items

    _, desc = _recorded_kan("lut")
    node = desc.nodes["bspline"]
    assert basis_ops_per_input(5, 3, "lut") < 8
    assert ldpu_items(node, desc.shapes) == 64 * 8
    plain = memsim.mapping.description.NodeDesc("x", "relu", ("input",), (64,))
    assert ldpu_items(plain, {"input": (64,), "x": (64,)}) == 64
    chip = memsim.load_chip("hermes-64core")
    _, desc_deboor = _recorded_kan("de-boor")
    spans = []
    for d in (desc, desc_deboor):
        run = chip.simulate(d, inferences=1)
        spans.append({r["name"]: r for r in run.layers()}["layers.0.spline"]["latency_s"])
    # 512 basis rows = two 256-row arrays on two cores, each evaluating the basis of its 32
    # inputs: 32 x (39 - 8) more results at 400 MHz
    assert {r["name"]: r for r in run.layers()}["layers.0.spline"]["cores"] == 2
    assert spans[1] - spans[0] == pytest.approx(32 * (39 - 8) / 400e6, rel=1e-6)


# -- workloads -----------------------------------------------------------------------------------
def test_equal_parameter_mlp():
    kan = KAN([784, 16, 10])
    n = count_parameters(kan)
    assert n == 9 * (784 * 16 + 16 * 10)  # base + (G + k) spline weights per edge, no bias
    h = equal_parameter_hidden(n, 784, 10)
    mlp = MLP([784, h, 10])
    assert abs(count_parameters(mlp) - n) <= (784 + 1 + 10) / 2
    assert count_parameters(MLP([784, h + 1, 10])) - n > 0 > count_parameters(
        MLP([784, h - 1, 10])) - n


def test_trained_digits_kan_and_its_equal_mlp():
    from memsim.workloads.trained import get_trained
    from memsim.workloads.training import accuracy

    kan_w, mlp_w = get_trained("digits-kan"), get_trained("digits-mlp-eq")
    _, _, x_te, y_te = kan_w.data()
    xt = torch.tensor(x_te, dtype=torch.float32)
    kan, mlp = kan_w.model(None), mlp_w.model(None)
    assert abs(count_parameters(kan) - count_parameters(mlp)) < 40
    with torch.no_grad():
        assert accuracy(kan(xt), y_te) > 0.95
        assert accuracy(mlp(xt), y_te) > 0.95
    assert "KAN 64-16-10" in kan_w.description


def test_comparison_command(capsys):
    from memsim.workloads.kan import main

    assert main(["--quick", "--json"]) == 0
    import json

    rows = {(r["workload"], r["basis"]): r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {("digits-kan", "de-boor"), ("digits-kan", "lut"),
                         ("digits-mlp-eq", "-")}
    deboor, lut, mlp = rows["digits-kan", "de-boor"], rows["digits-kan", "lut"], \
        rows["digits-mlp-eq", "-"]
    assert deboor["basis_ops"] == (64 + 16) * basis_ops_per_input(5, 3)
    assert lut["basis_ops"] == (64 + 16) * basis_ops_per_input(5, 3, "lut")
    assert mlp["basis_ops"] == 0 and abs(mlp["parameters"] - deboor["parameters"]) < 40
    assert lut["latency_s"] < deboor["latency_s"]  # 8 instead of 39 clocks per input
    assert lut["local_digital_j"] < deboor["local_digital_j"]
    assert deboor["arrays"] > mlp["arrays"]  # G + k = 8 spline rows per input


# -- pykan ---------------------------------------------------------------------------------------
@pytest.fixture
def pykan():
    kan = pytest.importorskip("kan", reason="pykan is not installed (pip install pykan)")
    return kan


def _pykan_model(pykan, width, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pykan.KAN(width=width, grid=5, k=3, seed=0, auto_save=False, **kw)


def test_pykan_model_converts_with_its_adapted_grids_and_affine_maps(pykan):
    from memsim.workloads.kan import from_pykan

    model = _pykan_model(pykan, [4, 5, 3], affine_trainable=True)
    x = torch.rand(300, 4) * 2 - 1
    with torch.no_grad():
        model.update_grid_from_samples(x)  # per-input, uneven knots
        for p in (*model.node_scale, *model.node_bias, *model.subnode_scale,
                  *model.subnode_bias):
            p.add_(torch.randn_like(p) * 0.3)
        model.act_fun[0].mask[1, 2] = 0.0
        want = model(x)
    ours = from_pykan(model)
    assert not ours.layers[0].basis.uniform
    with torch.no_grad():
        torch.testing.assert_close(ours(x), want, rtol=1e-4, atol=1e-5)
        amodel = memsim.analog(ours, exact=True)
        memsim.program(amodel, 0)
        torch.testing.assert_close(amodel(x), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="uniform"):
        from_pykan(model, basis_method="lut")


def test_pykan_parts_without_weight_matrices_are_refused(pykan):
    from memsim.workloads.kan import from_pykan

    model = _pykan_model(pykan, [2, 2, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fix_symbolic(0, 0, 0, "sin", fit_params_bool=False, verbose=False)
    with pytest.raises(InputError, match="symbolic"):
        from_pykan(model)
    mult = _pykan_model(pykan, [2, [1, 1], 1])
    with pytest.raises(InputError, match="multiplication"):
        from_pykan(mult)
    with pytest.raises(InputError, match="not a pykan"):
        from_pykan(torch.nn.Linear(2, 2))
