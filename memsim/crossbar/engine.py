"""The tile engine: every tile of one weight matrix as batched torch tensors.

One implementation of the tile physics serves the numpy API (:class:`memsim.crossbar.Tile`,
one matrix of at most rows × cols) and the analog torch layers (:mod:`memsim.analog`, whole
layers of many tiles), on CPU threads and on CUDA.

A layer matrix (``groups`` matrices of R inputs × C outputs; grouped convolutions have one
per group) is cut into K row tiles (at multiples of ``row_unit``: whole input channels of a
convolution) and column tiles of at most ``cols`` columns. Each tile is one crossbar with its
DAC, ADC and local digital unit; row tiles of a column add their digital outputs.

Physics, per tile (normalised units of :mod:`memsim.crossbar.config`):

1. **Input scaling and DAC.** x = X / s, with s the abs-max of the tile's inputs per input
   vector ("absmax"), a fixed range ("fixed") or a per-layer range ("layer"); x is clipped to
   [−1, 1] (clipped entries are counted) and quantized to n = 2^(b−1) − 1 signed steps. An
   all-zero input vector has s = 0: no pulses, and the digital unit's output is 0.
2. **Unit cell.** Weights W are scaled per column (or per tile) to w in [−1, 1] and held by
   a differential pair per polarity, with 1 or 2 devices each (:mod:`memsim.crossbar.cell`).
   The cell's I–V relation gives the current of each polarity as a function of the input:
   y = f₊(x) · G₊ − f₋(x) · G₋ (:func:`memsim.crossbar.cell.input_transforms`); for a linear
   symmetric cell f₊ = f₋ = x and y = x · (G₊ − G₋).
3. **Devices at time t.** Conductances at the time since this tile was programmed: drift and
   the 1/f read noise slower than the noise window are a state of the devices at t (drawn
   once per read time); the faster read noise is drawn for every MVM, exact in distribution
   through the variance of each column output, Σ_i f(x_i)² σ_ij², one extra product.
3. **ADC.** v = y(1 + γ_j) + δ_j + noise; code = floor or round(v / LSB), clipped to the code
   range (saturations counted). Converter noise: σ² = (noise_fs·FS)² + (noise_lsb·LSB)²
   (four integrations in 4-phase "accumulate" mode: 4 σ_fs²).
4. **Digital unit.** Per-column affine correction (a_j, b_j) fitted on reference MVMs at
   calibration time; drift compensation α (reference readout / readout now, per tile or per
   column); then the weight and input scales are undone and the row tiles summed.

Convolutions run as two grouped convolutions of the quantized input (signal and read-noise
variance) when the input scale does not depend on the output position (fixed or per-layer
ranges, no DAC noise): only the outputs, not the unfolded input, go through the ADC stage.
With per-vector scaling the input is unfolded (im2col) and runs as a matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memsim._layout import balanced_cuts
from memsim.crossbar import _kernels as _k
from memsim.crossbar import cell as _cell
from memsim.crossbar.config import TileConfig
from memsim.devices.base import Device, check_generator, check_time
from memsim.errors import ConfigError, InputError, NumericalError, StateError

__all__ = ["STATE_CACHE_BYTES", "Saturation", "TileArray", "adc_stage_torch", "balanced_cuts"]

#: Device states of a layer are kept between reads up to this size; larger layers draw them
#: again from their programming streams at each new read time (same numbers, less memory).
STATE_CACHE_BYTES = 256 * 2**20


@dataclass
class Saturation:
    """Converter report of the last forward (counted, never silent)."""

    conversions: int = 0
    saturated: int = 0
    samples_saturated: int = 0
    samples_retried: int = 0
    inputs_clipped: int = 0
    inputs: int = 0

    @property
    def rate(self) -> float:
        return self.saturated / self.conversions if self.conversions else 0.0

    def add(self, other: Saturation) -> None:
        for name in ("conversions", "saturated", "samples_saturated", "samples_retried",
                     "inputs_clipped", "inputs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Geometry:
    groups: int
    R: int
    C: int
    row_cuts: list[tuple[int, int]]
    col_cuts: list[tuple[int, int]]

    @property
    def K(self) -> int:
        return len(self.row_cuts)

    @property
    def rpt(self) -> int:
        return max(r1 - r0 for r0, r1 in self.row_cuts)

    @property
    def M(self) -> int:
        return len(self.col_cuts)

    def row_mask(self) -> np.ndarray:
        """(K, rpt) True where a padded tile row is a real row of the matrix."""
        m = np.zeros((self.K, self.rpt), dtype=bool)
        for k, (r0, r1) in enumerate(self.row_cuts):
            m[k, :r1 - r0] = True
        return m

    def col_tile(self) -> np.ndarray:
        """(C,) column tile of each column."""
        out = np.empty(self.C, dtype=np.int64)
        for m, (c0, c1) in enumerate(self.col_cuts):
            out[c0:c1] = m
        return out

    def to_tiles(self, w: np.ndarray) -> np.ndarray:
        """(G, R, C) → (G, K, rpt, C), zero rows where a tile is shorter."""
        out = np.zeros((self.groups, self.K, self.rpt, self.C), dtype=w.dtype)
        for k, (r0, r1) in enumerate(self.row_cuts):
            out[:, k, :r1 - r0] = w[:, r0:r1]
        return out


@dataclass
class _TimeState:
    """The tile's conductances at one time since programming, normalised, on the engine's
    torch device: what every MVM at that time uses."""

    t_since: float
    gp: torch.Tensor | None  # (G, K, rpt, C) positive polarity (None: only w is needed)
    gn: torch.Tensor | None
    w: torch.Tensor  # gp − gn
    var_p: torch.Tensor | None  # per-MVM read-noise variance maps (None: no read noise)
    var_n: torch.Tensor | None
    var: torch.Tensor | None  # var_p + var_n
    alpha: torch.Tensor  # (G, K, C) drift-compensation factor per column
    gp_raw: np.ndarray | None = None  # siemens, (G, K, rpt, C), for the exact IR-drop solve
    gn_raw: np.ndarray | None = None


def adc_stage_torch(y: torch.Tensor, var: torch.Tensor | None, z: torch.Tensor | None,
                    gain1: torch.Tensor, offset: torch.Tensor, lsb: torch.Tensor,
                    s2: torch.Tensor, bits: int, floor_mode: bool, mul: torch.Tensor | None,
                    add: torch.Tensor | None, scale: torch.Tensor | None,
                    out_dtype: torch.dtype = torch.float32
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ADC stage in torch ops (CUDA, and the CPU reference of the numba kernel).

    y, var, z: (B, U, K, C, P); gain1, offset, mul, add: (U, K, C); lsb, s2: (U, K);
    scale: (B, U, K). Returns (out, saturated per sample, non-finite per sample): out is
    (B, U, C, P) = Σ_k (q·mul + add)·scale (in float64, stored as ``out_dtype``), or the raw
    ADC values (B, U, K, C, P) when ``mul`` is None. Same formula as
    :func:`memsim.crossbar._kernels.adc_stage`.
    """
    g1 = gain1[None, :, :, :, None]
    v = y * g1 + offset[None, :, :, :, None]
    if z is not None:
        vv = s2[None, :, :, None, None]
        if var is not None:
            vv = var * (g1 * g1) + vv
        v = v + torch.sqrt(vv) * z
    if bits > 0:
        lsb_ = lsb[None, :, :, None, None]
        c = torch.floor(v / lsb_) if floor_mode else torch.round(v / lsb_)
        lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1.0
        sat = ((c < lo) | (c > hi)).flatten(1).sum(1)
        q = c.clamp(lo, hi) * lsb_
    else:
        sat = torch.zeros(y.shape[0], dtype=torch.int64, device=y.device)
        q = v
    if mul is None:
        return q, sat, torch.zeros_like(sat)
    d = torch.float64  # the digital unit in double precision, as the CPU kernel
    out = ((q.to(d) * mul[None, :, :, :, None].to(d) + add[None, :, :, :, None].to(d))
           * scale[:, :, :, None, None].to(d)).sum(2).to(out_dtype)
    bad = (~torch.isfinite(out)).flatten(1).sum(1)
    return out, sat, bad


def _as_numpy64(t: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().to("cpu", torch.float64).numpy()
    return np.asarray(t, dtype=np.float64)


class TileArray:
    """All tiles of one layer's weight matrices, programmed once, read at any time.

    Args:
        config: the tile card's parameters.
        device: the device model of every cell.
        shape: (R, C) of each matrix (rows = inputs, cols = outputs).
        groups: number of matrices of that shape (a grouped convolution's groups).
        row_unit: row tiles are cut at multiples of this (k·k for a convolution).
        name: for messages ("layer1.0.conv1").
        torch_device: where the tensors live ("cpu", "cuda", ...).
        exact: read the devices at their targets (no programming error, drift or read
            noise): the tile's exact limit (:meth:`memsim.crossbar.Tile.noise_free`).

    Attributes set by :meth:`program` (scikit-learn style): ``programmed_at_s_``,
    ``weight_scale_``, ``adc_gain_``, ``adc_offset_``, ``affine_``, ``reference_readout_``;
    by each forward: ``saturation_``.
    """

    def __init__(self, config: TileConfig, device: Device, shape: tuple[int, int], *,
                 groups: int = 1, row_unit: int = 1, name: str = "tile",
                 torch_device: Any = "cpu", exact: bool = False) -> None:
        self.config = config
        self.device = device
        self.name = name
        self.exact = exact
        self.torch_device = torch.device(torch_device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        R, C = int(shape[0]), int(shape[1])
        if R < 1 or C < 1 or groups < 1:
            raise ConfigError(f"{name}: a weight matrix of shape {shape} × {groups} groups has "
                              "no weights")
        self.geom = _Geometry(groups, R, C, balanced_cuts(R, config.rows, row_unit),
                              balanced_cuts(C, config.cols))
        self.cell = _cell.CellModel(config, device)
        self.saturation_ = Saturation()
        self._times: dict[float, _TimeState] = {}
        self._states: dict[tuple[int, int], list] = {}
        self._own_weights = False
        self.input_range_: torch.Tensor | None = None  # (G, K) for "layer" scaling
        self.output_range_: np.ndarray | None = None  # (G, K) calibrated ADC full scale

    def __repr__(self) -> str:
        g = self.geom
        return (f"TileArray({self.name!r}, {g.groups}×{g.R}×{g.C} on {g.K}×{g.M} tiles of "
                f"{self.config.rows}×{self.config.cols}, device={self.device.name!r})")

    def state_bytes(self) -> int:
        """Bytes kept between reads: device states (when cached), the per-time conductance
        and noise maps, per-column converter and digital data."""
        n = sum(c.nbytes for states in self._states.values() for c in states)
        n += sum(getattr(self, a).nbytes for a in ("weight_scale_", "adc_gain_",
                                                   "adc_offset_unit_") if hasattr(self, a))
        if self._own_weights:
            n += self._weights.numel() * self._weights.element_size()
        for st in self._times.values():
            for t in (st.gp, st.gn, st.w, st.var_p, st.var_n, st.var):
                n += 0 if t is None else t.numel() * t.element_size()
        return n

    @property
    def tiles(self) -> int:
        """Physical arrays (one per row tile × column tile × group)."""
        return self.geom.groups * self.geom.K * self.geom.M

    # -- programming ------------------------------------------------------------------------
    def program(self, weights: Any, rng: np.random.Generator, *, at_s: float = 0.0,
                keep_reference: bool = False) -> TileArray:
        """Program ``weights`` ((G,) R, C), float, at time ``at_s`` (s on the caller's clock).

        Programming draws, per tile, everything that is fixed when a device is written
        (programming error, drift exponents, faults, converter mismatch) from one stream per
        row tile of ``rng``. The device states are kept when they are small
        (:data:`STATE_CACHE_BYTES`) and otherwise drawn again from the same streams when a
        new read time needs them: the same numbers, without the memory.

        ``keep_reference``: ``weights`` is a torch tensor owned by the caller (an analog
        layer's parameter) that is read again, not copied; if it changes in place after
        programming, reading the tiles is an error (program again).
        """
        rng = check_generator(rng)
        g = self.geom
        if isinstance(weights, torch.Tensor):
            w = weights.detach()
        else:
            w = torch.from_numpy(_as_numpy64(weights))
        if w.ndim == 2:
            w = w[None]
        if tuple(w.shape) != (g.groups, g.R, g.C):
            raise InputError(f"{self.name}: weights of shape {tuple(w.shape)} do not match the "
                             f"programmed layout {(g.groups, g.R, g.C)}")
        bad = int((~torch.isfinite(w)).sum())
        if bad:
            raise InputError(f"{self.name}: weights contain {bad} NaN or infinite value(s)")
        if keep_reference and isinstance(weights, torch.Tensor):
            self._weights, self._own_weights = w, False
            self._weights_version = weights._version
        else:
            self._weights, self._own_weights = w.to("cpu", torch.float64).clone(), True
            self._weights_version = None
        self._weights_source = weights if keep_reference else None
        self.programmed_at_s_ = check_time(at_s)
        self.weight_scale_ = self._scales()
        self._mask = g.row_mask()
        self._seeds = rng.integers(0, 2**63, size=(g.groups, g.K))
        self._states: dict[tuple[int, int], list] = {}
        per_chunk = 2 * g.rpt * g.C * self.cell.instances * 4 * 4  # (target, prog, ν, q)·f32
        self._cache_states = per_chunk * g.groups * g.K <= STATE_CACHE_BYTES
        cfg = self.config
        c_shape = (g.groups, g.K, g.C)
        self.adc_gain_ = (cfg.adc_gain_sigma * rng.standard_normal(c_shape)
                          if cfg.adc_gain_sigma and not self.exact else np.zeros(c_shape))
        self.adc_offset_unit_ = (rng.standard_normal(c_shape)
                                 if cfg.adc_offset_fs and not self.exact else np.zeros(c_shape))
        self.affine_ = (np.ones(c_shape), np.zeros(c_shape))
        self.reference_readout_ = None
        self._times = {}
        if cfg.affine_calibration or cfg.drift_compensation != "none":
            self._calibrate(rng)
        return self

    def _scales(self) -> np.ndarray:
        """(G, K, C) weight→conductance scale: max |w| per column of each tile (or per tile)."""
        g = self.geom
        scale = np.empty((g.groups, g.K, g.C))
        for k, (r0, r1) in enumerate(g.row_cuts):
            scale[:, k] = self._weights[:, r0:r1].abs().amax(dim=1).double().cpu().numpy()
        if self.config.weight_scaling == "per_tile":
            col_tile = g.col_tile()
            for m in range(g.M):
                sel = col_tile == m
                scale[:, :, sel] = scale[:, :, sel].max(axis=2, keepdims=True)
        scale = np.where(scale > 0, scale, 1.0)
        if not np.all(np.isfinite(scale)):
            raise NumericalError(f"{self.name}: weight magnitudes overflow float64")
        return scale

    def _check_weights(self) -> None:
        if self._weights_source is not None and \
                self._weights_source._version != self._weights_version:
            raise StateError(f"{self.name}: its float weights changed after programming; "
                             "program the model again (memsim.program) to write them")

    def w_chunk(self, u: int, k: int) -> np.ndarray:
        """Normalised weights (rpt, C), float64, of row tile k of group u (zero padding rows)."""
        g = self.geom
        r0, r1 = g.row_cuts[k]
        out = np.zeros((g.rpt, g.C))
        out[:r1 - r0] = self._weights[u, r0:r1].double().cpu().numpy()
        return out / self.weight_scale_[u, k][None, :]

    def w_norm(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """All normalised weights (G, K, rpt, C) on the engine's device."""
        g = self.geom
        out = torch.zeros((g.groups, g.K, g.rpt, g.C), dtype=dtype or self.dtype,
                          device=self.torch_device)
        ws = torch.from_numpy(self.weight_scale_).to(out)
        for k, (r0, r1) in enumerate(g.row_cuts):
            out[:, k, :r1 - r0] = self._weights[:, r0:r1].to(out) / ws[:, k, None, :]
        return out

    def chunk_states(self, u: int, k: int) -> list:
        """Device states (one per device instance, (2, rpt, C)) of row tile k of group u,
        from the cache or drawn again from the tile's programming stream."""
        st = self._states.get((u, k))
        if st is None:
            self._check_weights()
            st = self.cell.program(self.w_chunk(u, k), np.random.default_rng(
                int(self._seeds[u, k])), exact=self.exact)
            if self._cache_states:
                self._states[(u, k)] = st
        return st

    @property
    def states_(self) -> list:
        """The device states of the first tile (all of a single-tile array)."""
        self._require_programmed()
        return self.chunk_states(0, 0)

    # -- saving and loading --------------------------------------------------------------------
    _STATE_ARRAYS = ("weight_scale_", "adc_gain_", "adc_offset_unit_", "reference_readout_",
                     "output_range_", "_seeds")

    def export_state(self) -> dict[str, Any]:
        """What programming drew, as numpy arrays and numbers (for ``state_dict``); the device
        states are drawn again from the saved streams. The weights are the layer's own."""
        self._require_programmed()
        out: dict[str, Any] = {name: getattr(self, name) for name in self._STATE_ARRAYS}
        out["programmed_at_s_"] = self.programmed_at_s_
        out["affine_"] = self.affine_
        out["input_range_"] = None if self.input_range_ is None else self.input_range_.numpy()
        out["layout"] = (self.geom.groups, self.geom.R, self.geom.C, self.geom.row_cuts,
                         self.geom.col_cuts)
        return out

    def import_state(self, state: dict[str, Any], weights: torch.Tensor) -> None:
        """Restore what :meth:`export_state` saved, for the layer's (loaded) ``weights``."""
        g = self.geom
        layout = (g.groups, g.R, g.C, g.row_cuts, g.col_cuts)
        saved = state["layout"]
        if (tuple(saved[:3]) != layout[:3] or [tuple(c) for c in saved[3]] != g.row_cuts
                or [tuple(c) for c in saved[4]] != g.col_cuts):
            raise InputError(f"{self.name}: the saved tile state has layout {saved[:3]} on "
                             f"other tiles than this layer ({layout[:3]}); convert the model "
                             "with the same tile card before loading")
        for name in self._STATE_ARRAYS:
            setattr(self, name, state[name])
        self.programmed_at_s_ = float(state["programmed_at_s_"])
        self.affine_ = tuple(state["affine_"])
        r = state["input_range_"]
        self.input_range_ = None if r is None else torch.from_numpy(np.asarray(r))
        self._weights = weights.detach() if weights.ndim == 3 else weights.detach()[None]
        self._own_weights = False
        self._weights_source = weights
        self._weights_version = weights._version
        self._mask = g.row_mask()
        self._states = {}
        per_chunk = 2 * g.rpt * g.C * self.cell.instances * 4 * 4
        self._cache_states = per_chunk * g.groups * g.K <= STATE_CACHE_BYTES
        self._times = {}

    def _require_programmed(self) -> None:
        if not hasattr(self, "_seeds"):
            raise StateError(f"{self.name} is not programmed: call program() first")

    # -- converter parameters ------------------------------------------------------------------
    def full_scale(self) -> np.ndarray:
        """(G, K) ADC full scale of each row tile, normalised units."""
        if self.output_range_ is not None:
            return self.output_range_
        g = self.geom
        return np.full((g.groups, g.K), self.config.output_range)

    def _converter(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(LSB, σ² of converter noise, offset) per row tile/column for the current full
        scales; LSB is 1 (unused) when the ADC is unquantized."""
        cfg = self.config
        fs = self.full_scale()
        if cfg.adc_bits is None:
            lsb = np.ones_like(fs)
            s_lsb = np.zeros_like(fs)
        else:
            lsb = fs / 2 ** (cfg.adc_bits - 1)
            s_lsb = cfg.adc_noise_lsb * lsb
        conversions = 4 if (cfg.encoding == "pwm_4phase"
                            and cfg.phase_conversion == "accumulate") else 1
        s2 = conversions * (cfg.adc_noise_fs * fs) ** 2 + s_lsb**2
        if self.exact:
            s2 = np.zeros_like(s2)
        offset = cfg.adc_offset_fs * fs[:, :, None] * self.adc_offset_unit_
        return lsb, s2, offset

    # -- reading at a time ----------------------------------------------------------------------
    def state_at(self, t_since: float, rng: np.random.Generator, *, redraw: bool = False
                 ) -> _TimeState:
        """The devices' state ``t_since`` seconds after programming (cached per time: the
        slow noise is a state of the devices at that time; ``redraw`` draws a new one)."""
        self._require_programmed()
        self._check_weights()
        st = None if redraw else self._times.get(t_since)
        if st is None:
            st = self._draw_time(t_since, rng)
            self._times.pop(t_since, None)
            while len(self._times) >= 2:
                self._times.pop(next(iter(self._times)))
            self._times[t_since] = st
        return st

    def _read_chunks(self, t_since: float, rng: np.random.Generator):
        """(u, k, G₊, G₋, σ²₊, σ²₋) per row tile at ``t_since``, normalised and masked."""
        g = self.geom
        for u in range(g.groups):
            for k in range(g.K):
                read = self.cell.read(self.chunk_states(u, k), t_since, rng, exact=self.exact)
                m = self._mask[k][:, None]
                yield (u, k, *(a * m for a in read))

    def _draw_time(self, t_since: float, rng: np.random.Generator) -> _TimeState:
        cfg = self.config
        g = self.geom
        dev, dt = self.torch_device, self.dtype
        split = self.cell.needs_polarities(cfg)
        shape = (g.groups, g.K, g.rpt, g.C)
        w = torch.empty(shape, dtype=dt)
        gp_t = torch.empty(shape, dtype=dt) if split else None
        gn_t = torch.empty(shape, dtype=dt) if split else None
        var = vp_t = vn_t = None
        readout = np.empty((g.groups, g.K, g.C))
        readout_var = np.zeros((g.groups, g.K, g.C))
        exact_ir = cfg.ir_drop == "exact"
        gp_raw = np.empty(shape) if exact_ir else None
        gn_raw = np.empty(shape) if exact_ir else None
        for u, k, gp, gn, vp, vn in self._read_chunks(t_since, rng):
            if cfg.ir_drop == "approx":
                ap, an = _ir_attenuation(gp[None, None] * self.cell.g_unit_s,
                                         gn[None, None] * self.cell.g_unit_s, cfg)
                gp, gn = gp * ap[0, 0], gn * an[0, 0]
            elif exact_ir:
                gp_raw[u, k], gn_raw[u, k] = gp * self.cell.g_unit_s, gn * self.cell.g_unit_s
            w[u, k] = torch.from_numpy(gp - gn)
            if split:
                gp_t[u, k], gn_t[u, k] = torch.from_numpy(gp), torch.from_numpy(gn)
            readout[u, k] = (gp + gn).sum(axis=0)
            if vp.any() or vn.any():
                if var is None:
                    var = torch.zeros(shape, dtype=dt)
                    if split:
                        vp_t, vn_t = torch.zeros(shape, dtype=dt), torch.zeros(shape, dtype=dt)
                var[u, k] = torch.from_numpy(vp + vn)
                if split:
                    vp_t[u, k], vn_t[u, k] = torch.from_numpy(vp), torch.from_numpy(vn)
                readout_var[u, k] = (vp + vn).sum(axis=0)
        if var is not None:
            readout = readout + np.sqrt(readout_var) * rng.standard_normal(readout.shape)
        alpha = self._alpha(readout)

        def on(t):
            return None if t is None else t.to(dev)

        return _TimeState(t_since=t_since, gp=on(gp_t), gn=on(gn_t), w=on(w), var_p=on(vp_t),
                          var_n=on(vn_t), var=on(var),
                          alpha=torch.from_numpy(alpha).to(dev, dt), gp_raw=gp_raw,
                          gn_raw=gn_raw)

    def _alpha(self, readout: np.ndarray) -> np.ndarray:
        """Drift compensation α per (G, K, C): reference readout / readout now."""
        ref = self.reference_readout_
        if ref is None or self.config.drift_compensation == "none":
            return np.ones_like(readout)
        if self.config.drift_compensation == "per_column":
            ok = readout > 0
            return np.where(ok, ref / np.where(ok, readout, 1.0), 1.0)
        col_tile = self.geom.col_tile()
        out = np.ones_like(readout)
        for m in range(self.geom.M):
            sel = col_tile == m
            now = readout[..., sel].sum(-1)
            a = np.where(now > 0, ref[..., sel].sum(-1) / np.where(now > 0, now, 1.0), 1.0)
            out[..., sel] = a[..., None]
        return out

    def _calibrate(self, rng: np.random.Generator) -> None:
        """Reference MVMs at calibration time: drift-compensation readout and the per-column
        affine fit (least squares of ideal on measured outputs)."""
        cfg = self.config
        g = self.geom
        readout = np.empty((g.groups, g.K, g.C))
        readout_var = np.zeros((g.groups, g.K, g.C))
        for u, k, gp, gn, vp, vn in self._read_chunks(cfg.calibration_time_s, rng):
            readout[u, k] = (gp + gn).sum(axis=0)
            readout_var[u, k] = (vp + vn).sum(axis=0)
        if readout_var.any():
            readout = readout + np.sqrt(readout_var) * rng.standard_normal(readout.shape)
        if cfg.drift_compensation != "none":
            self.reference_readout_ = readout
        if not cfg.affine_calibration:
            return
        st = self._draw_time(cfg.calibration_time_s, rng)
        n = cfg.calibration_vectors
        x = rng.uniform(-1.0, 1.0, size=(n, g.groups, g.K, g.rpt)) * self._mask[None, None]
        xt = torch.from_numpy(x).to(self.torch_device, self.dtype)
        measured = self._tiles_raw(xt, st, rng)  # (n, G, K, C)
        ideal = np.empty_like(measured)
        for u in range(g.groups):
            for k in range(g.K):
                ideal[:, u, k] = x[:, u, k] @ self.w_chunk(u, k)
        mm = measured.mean(0)
        mi = ideal.mean(0)
        dm = measured - mm
        var = (dm * dm).sum(0)
        cov = (dm * (ideal - mi)).sum(0)
        ok = var > 0
        a = np.where(ok, cov / np.where(ok, var, 1.0), 1.0)
        self.affine_ = (a, mi - a * mm)

    # -- the forward paths -------------------------------------------------------------------------
    def _digital(self, st: _TimeState) -> tuple[torch.Tensor, torch.Tensor]:
        """(mul, add) per (G, K, C), float64: affine correction, drift compensation, weight
        scale (weights up to float64's range)."""
        a, b = self.affine_
        dev, d = self.torch_device, torch.float64
        ws = torch.from_numpy(self.weight_scale_).to(dev, d) * st.alpha.to(d)
        return (torch.from_numpy(a).to(dev, d) * ws, torch.from_numpy(b).to(dev, d) * ws)

    def _adc(self, y: torch.Tensor, var: torch.Tensor | None,
             layout: tuple[int, int, int, int],
             scale: torch.Tensor | None, st: _TimeState | None, rng: np.random.Generator,
             *, raw: bool = False, z: torch.Tensor | None = None,
             backend: str | None = None, out_dtype: torch.dtype | None = None
             ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """The ADC stage on analog outputs ``y`` of logical shape (B, U=G, K, C, P) stored
        with ``layout`` = (B, sample stride, tile stride, P) (columns and positions
        contiguous). Returns (out, saturated per sample, non-finite per sample)."""
        cfg = self.config
        g = self.geom
        B, ys_b, ys_u, P = layout
        lsb, s2, offset = self._converter()
        gain = self.adc_gain_
        if raw:
            mul = add = None
        else:
            mul, add = self._digital(st)
        noisy = var is not None or bool(np.any(s2 > 0))
        bits = cfg.adc_bits or 0
        floor = cfg.adc_mode == "floor"
        backend = backend or ("numba" if y.device.type == "cpu" else "torch")
        dt = self.dtype
        out_dtype = out_dtype or dt
        if backend == "torch":
            dev = y.device

            def tt(a):
                return torch.as_tensor(a, device=dev, dtype=dt)

            shape5 = (B, g.groups, g.K, g.C, P)
            strides = (ys_b, ys_u * g.K, ys_u, P, 1)
            y5 = y.as_strided(shape5, strides)
            v5 = None if var is None else var.as_strided(shape5, strides)
            if noisy and z is None:
                gen = torch.Generator(device=dev)
                gen.manual_seed(int(rng.integers(2**63)))
                z = torch.randn(shape5, generator=gen, device=dev, dtype=dt)
            elif z is not None:
                z = z.as_strided(shape5, strides)
            sc = None
            if not raw:
                sc = scale.reshape(-1, g.groups, g.K).expand(B, g.groups, g.K)
            out, sat, bad = adc_stage_torch(
                y5, v5, z if noisy else None, tt(1.0 + gain), tt(offset), tt(lsb), tt(s2), bits,
                floor, mul, add, sc, out_dtype)
            return out, sat.cpu().numpy(), bad.cpu().numpy()
        yf = y.reshape(-1)
        vf = var.reshape(-1) if var is not None else yf[:0]
        zf = z.reshape(-1) if z is not None else torch.empty(0, dtype=torch.float32)
        gain1 = np.ascontiguousarray((1.0 + gain).reshape(-1), dtype=np.float64)
        if raw:
            out = torch.empty((B, g.groups, g.K, g.C, P), dtype=dt)
            ones = np.ones(g.groups * g.K * g.C)
            mul_n = add_n = ones
            sc = np.ones(g.groups * g.K)
            sc_b = 0
        else:
            out = torch.empty((B, g.groups, g.C, P), dtype=out_dtype)
            mul_n = mul.reshape(-1).cpu().numpy().astype(np.float64)
            add_n = add.reshape(-1).cpu().numpy().astype(np.float64)
            sc = scale.reshape(-1).cpu().numpy().astype(np.float64)
            sc_b = 0 if sc.size == g.groups * g.K else g.groups * g.K
        sat = np.zeros(B, dtype=np.int64)
        bad = np.zeros(B, dtype=np.int64)
        seed = np.uint64(rng.integers(0, 2**64, dtype=np.uint64))
        _k.adc_stage(yf.numpy(), vf.numpy(), var is not None, ys_b, ys_u, B, g.groups, g.K,
                     g.C, P, seed, noisy, z is not None, zf.numpy(), gain1, gain1 * gain1,
                     np.ascontiguousarray(offset.reshape(-1), dtype=np.float64), mul_n, add_n,
                     np.ascontiguousarray(lsb.reshape(-1), dtype=np.float64),
                     np.ascontiguousarray(s2.reshape(-1), dtype=np.float64), bits, floor,
                     sc, sc_b, out.view(-1).numpy(), raw, sat, bad)
        return out, sat, bad

    def _tiles_raw(self, x: torch.Tensor, st: _TimeState, rng: np.random.Generator
                   ) -> np.ndarray:
        """Raw ADC values (n, G, K, C) for normalised tile inputs x (n, G, K, rpt) in [−1, 1]
        (calibration: no DAC, no digital unit)."""
        y, var = self._analog_linear(x, st)
        g = self.geom
        n = x.shape[0]
        out, _, _ = self._adc(y, var, (n, g.C, n * g.C, 1), None, st, rng, raw=True)
        # raw layout (B, G, K, C, 1)
        return out.reshape(n, g.groups, g.K, g.C).cpu().numpy().astype(np.float64)

    def _analog_linear(self, xq: torch.Tensor, st: _TimeState
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Column outputs and read-noise variances for tile inputs xq (N, G, K, rpt).

        Returns y, var in layout (G, K, N, C) (contiguous): sample stride C, tile stride
        N·C."""
        g = self.geom
        N = xq.shape[0]
        xk = xq.permute(1, 2, 0, 3).reshape(g.groups * g.K, N, g.rpt)
        terms = self.cell.signal_terms(xk, st)
        y = None
        for inp, mat in terms:
            part = torch.bmm(inp, mat.reshape(g.groups * g.K, g.rpt, g.C))
            y = part if y is None else y.add_(part)
        var = None
        if st.var is not None:
            for inp, mat in self.cell.variance_terms(xk, st):
                part = torch.bmm(inp, mat.reshape(g.groups * g.K, g.rpt, g.C))
                var = part if var is None else var.add_(part)
        return y, var

    def _scale_inputs(self, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Input scales for tile inputs xt (N, G, K, rpt): (scale, its (N or 1, G, K) view,
        clipped count)."""
        cfg = self.config
        mode = cfg.input_scaling
        if mode in ("absmax", "clip_retry"):
            s = xt.abs().amax(dim=3)
            return s, s, 0
        s = self.layer_range()
        clipped = int((xt.abs() > s[None, :, :, None]).sum())
        return s[None], s[None], clipped

    def layer_range(self) -> torch.Tensor:
        """(G, K) input range of the "fixed" or "layer" scaling."""
        g = self.geom
        if self.config.input_scaling == "layer":
            if self.input_range_ is None:
                raise StateError(f"{self.name}: input_scaling = 'layer' needs an input range: "
                                 "calibrate it from data (memsim.calibrate, or the first batch)")
            return self.input_range_.to(self.torch_device, self.dtype)
        return torch.full((g.groups, g.K), self.config.input_range, dtype=self.dtype,
                          device=self.torch_device)

    def set_input_range_from(self, x_absmax: torch.Tensor) -> None:
        """Set the per-row-tile input range of "layer" scaling from (G, K) abs-maxima."""
        r = x_absmax.detach().to("cpu", torch.float64)
        self.input_range_ = torch.where(r > 0, r, torch.ones_like(r))

    def dac(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x / s clipped to [−1, 1] and quantized to the DAC's steps (s broadcast to x; a zero
        scale gives 0)."""
        cfg = self.config
        safe = torch.where(s > 0, s, torch.ones_like(s))
        xq = (x / safe).clamp_(-1.0, 1.0)
        if cfg.dac_bits is not None and not self.exact:
            n = float(2 ** (cfg.dac_bits - 1) - 1)
            xq = xq.mul_(n).round_().div_(n)
        if cfg.dac_noise and not self.exact:
            xq = xq + cfg.dac_noise * torch.randn_like(xq)
        return xq

    def _check_input(self, x: torch.Tensor) -> None:
        if x.is_complex():
            raise InputError(f"{self.name}: complex inputs are not supported (the imaginary "
                             "part would be lost)")
        if not torch.isfinite(x).all():
            n = int((~torch.isfinite(x)).sum())
            raise InputError(f"{self.name}: input contains {n} NaN or infinite value(s)")

    def matvec(self, x: torch.Tensor, t_since: float, rng: np.random.Generator, *,
               redraw: bool = False) -> torch.Tensor:
        """Y (N, G·C) for inputs X (N, G·R) (group g reads columns g·R … of X)."""
        self._require_programmed()
        g = self.geom
        cfg = self.config
        if x.ndim != 2 or x.shape[1] != g.groups * g.R:
            raise InputError(f"{self.name}: input of shape {tuple(x.shape)} does not match the "
                             f"{g.groups * g.R} programmed rows (expected (batch, "
                             f"{g.groups * g.R}))")
        N = x.shape[0]
        if N == 0:
            return torch.zeros((0, g.groups * g.C), dtype=x.dtype, device=x.device)
        self._check_input(x)
        x = x.to(self.torch_device)
        st = self.state_at(t_since, rng, redraw=redraw)
        xt = self._to_tiles(x)  # (N, G, K, rpt) in x's dtype (float64 scale: no overflow)
        if cfg.input_scaling == "layer" and self.input_range_ is None:
            self.set_input_range_from(xt.abs().amax(dim=(0, 3)))
        s, s_view, clipped = self._scale_inputs(xt)
        xq = self.dac(xt, s_view[..., None]).to(self.dtype)
        out_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else self.dtype
        out, sat = self._linear_forward(xq, s, st, rng, N, out_dtype)
        retried = np.zeros(N, dtype=bool)
        conversions = N * g.groups * g.K * g.C
        saturated = int(sat.sum())
        if cfg.input_scaling == "clip_retry" and cfg.adc_bits is not None:
            todo = np.flatnonzero(sat)
            for _ in range(cfg.max_retries):
                if todo.size == 0:
                    break
                retried[todo] = True
                idx = torch.from_numpy(todo).to(self.torch_device)
                s_sub = s[idx] * 2.0
                s[idx] = s_sub
                xq_sub = self.dac(xt[idx], s_sub[..., None]).to(self.dtype)
                part, sat_r = self._linear_forward(xq_sub, s_sub, st, rng, todo.size, out_dtype)
                out[idx] = part
                conversions += todo.size * g.groups * g.K * g.C
                saturated += int(sat_r.sum())
                todo = todo[sat_r > 0]
            samples_sat = int(todo.size)
        else:
            samples_sat = int(np.count_nonzero(sat))
        self.saturation_ = Saturation(conversions=conversions * cfg.phases
                                      if cfg.phase_conversion == "separate" else conversions,
                                      saturated=saturated, samples_saturated=samples_sat,
                                      samples_retried=int(retried.sum()),
                                      inputs_clipped=clipped, inputs=int(xt.numel()))
        return out

    def _to_tiles(self, x: torch.Tensor) -> torch.Tensor:
        """(N, G·R) → (N, G, K, rpt) with zero padding rows."""
        g = self.geom
        xg = x.reshape(x.shape[0], g.groups, g.R)
        if g.K == 1 and g.rpt == g.R:
            return xg[:, :, None, :]
        out = x.new_zeros((x.shape[0], g.groups, g.K, g.rpt))
        for k, (r0, r1) in enumerate(g.row_cuts):
            out[:, :, k, :r1 - r0] = xg[:, :, r0:r1]
        return out

    def _linear_forward(self, xq: torch.Tensor, s: torch.Tensor, st: _TimeState,
                        rng: np.random.Generator, N: int, out_dtype: torch.dtype
                        ) -> tuple[torch.Tensor, np.ndarray]:
        g = self.geom
        cfg = self.config
        if st.gp_raw is not None:  # exact IR drop: a nodal solve per input vector
            y, var = self._analog_exact_ir(xq, st)
        elif cfg.encoding == "pwm_4phase" and cfg.phase_conversion == "separate":
            return self._four_separate(xq, s, st, rng, N, out_dtype)
        else:
            y, var = self._analog_linear(xq, st)
        out, sat, bad = self._adc(y, var, (N, g.C, N * g.C, 1), s, st, rng,
                                  out_dtype=out_dtype)
        self._check_output(bad)
        return out.reshape(N, g.groups * g.C), sat

    def _four_separate(self, xq, s, st, rng, N, out_dtype):
        """4-phase PWM with four conversions combined digitally: each sign of input and of
        weight polarity in its own phase, at positive read polarity, converted on its own."""
        g = self.geom
        acc = None
        sat = np.zeros(N, dtype=np.int64)
        xp, xn = xq.clamp(min=0), (-xq).clamp(min=0)
        gp = st.gp if st.gp is not None else st.w.clamp(min=0)
        gn = st.gn if st.gn is not None else (-st.w).clamp(min=0)
        vp = st.var_p if st.var_p is not None else st.var
        vn = st.var_n if st.var_n is not None else st.var
        for xs, gm, vm, sign in ((xp, gp, vp, 1.0), (xp, gn, vn, -1.0), (xn, gp, vp, -1.0),
                                 (xn, gn, vn, 1.0)):
            xk = xs.permute(1, 2, 0, 3).reshape(g.groups * g.K, N, g.rpt)
            y = torch.bmm(xk, gm.reshape(g.groups * g.K, g.rpt, g.C))
            var = None if vm is None else torch.bmm(xk * xk, vm.reshape(g.groups * g.K,
                                                                       g.rpt, g.C))
            raw, sat_p, _ = self._adc(y, var, (N, g.C, N * g.C, 1), None, st, rng, raw=True)
            sat += sat_p
            acc = sign * raw if acc is None else acc.add_(raw, alpha=sign)
        mul, add = self._digital(st)
        out = ((acc[:, :, :, :, 0].double() * mul[None] + add[None])
               * s.reshape(-1, g.groups, g.K)[..., None].double()).sum(2).to(out_dtype)
        bad = (~torch.isfinite(out)).flatten(1).sum(1).cpu().numpy()
        self._check_output(bad)
        return out.reshape(N, g.groups * g.C), sat

    def _analog_exact_ir(self, xq, st):
        g = self.geom
        cfg = self.config
        N = xq.shape[0]
        y = np.zeros((g.groups, g.K, N, g.C))
        xk = xq.detach().cpu().numpy().astype(np.float64)
        v_read = cfg.read_voltage_v
        for u in range(g.groups):
            for k in range(g.K):
                fp, fn = self.cell.polarity_inputs(xk[:, u, k])
                cur = _ir_solve(st.gp_raw[u, k], st.gn_raw[u, k], fp * v_read, fn * v_read, cfg)
                y[u, k] = cur / (v_read * self.cell.g_unit_s)
        yt = torch.from_numpy(y).to(self.torch_device, self.dtype)
        var = None
        if st.var is not None:
            xk_t = xq.permute(1, 2, 0, 3).reshape(g.groups * g.K, N, g.rpt)
            var = None
            for inp, mat in self.cell.variance_terms(xk_t, st):
                part = torch.bmm(inp, mat.reshape(g.groups * g.K, g.rpt, g.C))
                var = part if var is None else var.add_(part)
        return yt.reshape(g.groups * g.K, N, g.C), var

    def _check_output(self, bad: np.ndarray) -> None:
        if bad.any():
            raise NumericalError(
                f"{self.name}: {int(bad.sum())} output value(s) are not finite numbers: the "
                "digital rescaling by the input and weight scales overflowed the output's "
                "precision; scale the layer's inputs or weights down, or run in float64")

    # -- convolution -------------------------------------------------------------------------
    def conv_fast_path(self) -> bool:
        """Whether a convolution can run as grouped convolutions of the quantized input (input
        scale independent of the output position, no per-MVM DAC noise, no nodal solve)."""
        cfg = self.config
        return (cfg.input_scaling in ("fixed", "layer") and (cfg.dac_noise == 0 or self.exact)
                and cfg.ir_drop != "exact"
                and not (cfg.encoding == "pwm_4phase" and cfg.phase_conversion == "separate"))

    def conv(self, x: torch.Tensor, conv: dict[str, Any], t_since: float,
             rng: np.random.Generator, *, redraw: bool = False) -> torch.Tensor:
        """A convolution (``conv``: kernel_size, stride, padding, dilation, dims) of x
        (B, G·Cg_in, *spatial) through the tiles; returns (B, G·C, *out_spatial) without bias.
        Rows of each group matrix are in im2col order (input channel, kernel positions)."""
        self._require_programmed()
        dims = conv["dims"]
        if x.ndim != dims + 2:
            raise InputError(f"{self.name}: a {dims}-D convolution needs a "
                             f"{dims + 2}-D input (batch, channels, ...), got {tuple(x.shape)}")
        B = x.shape[0]
        if B == 0:
            out_sp = _conv_out_shape(x.shape[2:], conv)
            return x.new_zeros((0, self.geom.groups * self.geom.C, *out_sp))
        self._check_input(x)
        if not self.conv_fast_path():
            return self._conv_unfold(x, conv, t_since, rng, redraw)
        g = self.geom
        cfg = self.config
        kk = int(np.prod(conv["kernel_size"]))
        st = self.state_at(t_since, rng, redraw=redraw)
        cin_g = g.R // kk
        if cfg.input_scaling == "layer" and self.input_range_ is None:
            self.set_input_range_from(self._conv_absmax(x, cin_g, kk))
        s = self.layer_range()  # (G, K)
        xq, clipped = self._conv_dac(x, s, cin_g, kk)
        y, var = self._conv_analog(xq, st, conv, kk)  # (B, G, K, C, P)
        P = y.shape[-1]
        out, sat, bad = self._adc(y, var, (B, g.groups * g.K * g.C * P, g.C * P, P), s, st,
                                  rng, out_dtype=x.dtype if x.dtype in (
                                      torch.float32, torch.float64) else self.dtype)
        self._check_output(bad)
        self.saturation_ = Saturation(conversions=B * g.groups * g.K * g.C * P,
                                      saturated=int(sat.sum()),
                                      samples_saturated=int(np.count_nonzero(sat)),
                                      inputs_clipped=clipped, inputs=int(x.numel()))
        return out.reshape(B, g.groups * g.C, *_conv_out_shape(x.shape[2:], conv))

    def _tile_channels(self, cin_g: int, kk: int) -> list[torch.Tensor | slice]:
        """Input channels of each row tile (all groups): a slice, or an index tensor when
        the layer has several groups."""
        g = self.geom
        out: list[torch.Tensor | slice] = []
        for r0, r1 in g.row_cuts:
            c0, c1 = r0 // kk, r1 // kk
            if g.groups == 1:
                out.append(slice(c0, c1))
            else:
                idx = np.concatenate([u * cin_g + np.arange(c0, c1) for u in range(g.groups)])
                out.append(torch.from_numpy(idx))
        return out

    def _conv_absmax(self, x, cin_g, kk):
        g = self.geom
        per_ch = x.detach().abs().amax(dim=[0, *range(2, x.ndim)]).to("cpu", torch.float64)
        out = torch.zeros(g.groups, g.K, dtype=torch.float64)
        for k, (r0, r1) in enumerate(g.row_cuts):
            for u in range(g.groups):
                out[u, k] = per_ch[u * cin_g + r0 // kk:u * cin_g + r1 // kk].max()
        return out

    def _conv_dac(self, x, s, cin_g, kk):
        """The quantized input (same layout as x): each channel scaled by its row tile's
        range."""
        g = self.geom
        s_ch = torch.empty((g.groups, cin_g), dtype=x.dtype, device=x.device)
        for k, (r0, r1) in enumerate(g.row_cuts):
            s_ch[:, r0 // kk:r1 // kk] = s[:, k:k + 1].to(x.dtype)
        s_ch = s_ch.reshape(1, g.groups * cin_g, *([1] * (x.ndim - 2)))
        clipped = int((x.abs() > s_ch).sum())
        return self.dac(x, s_ch).to(self.dtype), clipped

    def _conv_weights(self, mat: torch.Tensor, k: int, kk: int, ksize) -> torch.Tensor:
        """Row tile k of the (G, K, rpt, C) tile matrices as conv weights (G·C, cpt_k, *kernel)."""
        g = self.geom
        r0, r1 = g.row_cuts[k]
        cpt = (r1 - r0) // kk
        w = mat[:, k, :r1 - r0].reshape(g.groups, cpt, *ksize, g.C)
        perm = (0, w.ndim - 1, 1, *range(2, w.ndim - 1))
        return w.permute(perm).reshape(g.groups * g.C, cpt, *ksize).contiguous()

    def _conv_analog(self, xq, st, conv, kk):
        """Signal and read-noise variance of every row tile: one convolution of the tile's
        input channels per tile (grouped convolutions across tiles are slower in oneDNN),
        stacked to (B, G, K, C, P)."""
        g = self.geom
        fn = F.conv2d if conv["dims"] == 2 else F.conv1d
        args = dict(stride=conv["stride"], padding=conv["padding"],
                    dilation=conv["dilation"], groups=g.groups)
        cache = getattr(st, "_conv_cache", None)
        if cache is None:
            cache = {}
            st._conv_cache = cache
        chans = self._tile_channels(g.R // kk, kk)

        def run(terms, tag):
            outs = []
            for k, ch in enumerate(chans):
                acc = None
                for i, (inp, mat) in enumerate(terms):
                    key = (tag, i, k)
                    if key not in cache:
                        cache[key] = self._conv_weights(mat, k, kk, conv["kernel_size"])
                    xk = inp[:, ch] if isinstance(ch, slice) else inp.index_select(
                        1, ch.to(inp.device))
                    part = fn(xk, cache[key], **args)
                    acc = part if acc is None else acc.add_(part)
                outs.append(acc.reshape(acc.shape[0], g.groups, 1, g.C, -1))
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)

        y = run(self.cell.signal_terms(xq, st), "s")
        var = run(self.cell.variance_terms(xq, st), "v") if st.var is not None else None
        return y.contiguous(), None if var is None else var.contiguous()

    def _conv_unfold(self, x, conv, t_since, rng, redraw):
        """Per-vector input scaling (or DAC noise, or a nodal solve): im2col, then matvec."""
        g = self.geom
        dims = conv["dims"]
        x4 = x if dims == 2 else x[:, :, None, :]
        ks = tuple(conv["kernel_size"]) if dims == 2 else (1, conv["kernel_size"][0])

        def two(v, fill):
            v = tuple(v)
            return v if dims == 2 else (fill, v[0])

        cols = F.unfold(x4, ks, dilation=two(conv["dilation"], 1),
                        padding=two(conv["padding"], 0),
                        stride=two(conv["stride"], 1))  # (B, G·R, L)
        B, _, L = cols.shape
        flat = cols.transpose(1, 2).reshape(B * L, g.groups * g.R)
        y = self.matvec(flat, t_since, rng, redraw=redraw)  # (B·L, G·C)
        out_sp = _conv_out_shape(x.shape[2:], conv)
        return y.reshape(B, L, g.groups * g.C).transpose(1, 2).reshape(
            B, g.groups * g.C, *out_sp)


def _ir_attenuation(gp: np.ndarray, gn: np.ndarray, cfg: TileConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell IR-drop attenuation of every tile ((G, K, rows, C) conductances in S)."""
    from memsim.crossbar import irdrop

    r = cfg.wire_resistance_ohm
    ap, an = np.ones_like(gp), np.ones_like(gn)
    for u in range(gp.shape[0]):
        for k in range(gp.shape[1]):
            ap[u, k] = irdrop.attenuation(gp[u, k], r, r)
            an[u, k] = irdrop.attenuation(gn[u, k], r, r)
    return ap, an


def _ir_solve(gp: np.ndarray, gn: np.ndarray, vp: np.ndarray, vn: np.ndarray,
              cfg: TileConfig) -> np.ndarray:
    """Column currents (A) of one tile for drive voltages vp (G₊) and vn (G₋), (N, rows)."""
    from memsim.crossbar import irdrop

    r = cfg.wire_resistance_ohm
    return irdrop.solve_exact(gp, vp, r, r) - irdrop.solve_exact(gn, vn, r, r)


def _conv_out_shape(spatial, conv) -> tuple[int, ...]:
    out = []
    for i, n in enumerate(spatial):
        k, s = conv["kernel_size"][i], conv["stride"][i]
        p, d = conv["padding"][i], conv["dilation"][i]
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)

