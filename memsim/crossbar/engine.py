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
4. **ADC.** v = y(1 + γ_j) + δ_j + noise; code = floor or round(v / LSB), clipped to the code
   range (saturations counted). Converter noise: σ² = (noise_fs·FS)² + (noise_lsb·LSB)²
   (four integrations in 4-phase "accumulate" mode: 4 σ_fs²).
5. **Digital unit.** Per-column affine correction (a_j, b_j) fitted on reference MVMs at
   calibration time; drift compensation α (reference readout / readout now, per tile or per
   column); then the weight and input scales are undone and the row tiles summed.

Convolutions run as two convolutions of the quantized input per row tile (signal and
read-noise variance) when the input scale does not depend on the output position (fixed or
per-layer ranges, no DAC noise): only the outputs, not the unfolded input, go through the
ADC stage. With per-vector scaling the input is unfolded (im2col) and runs as a matrix
product.

Precision: a float32 tile computes its signal in float32; its read-noise variance products
(x²)·(σ²) run in bfloat16 with float32 accumulation where the hardware has native bfloat16
(the variance rounded to 2^-9 relative, its standard deviation to 2^-10), in float32
elsewhere. A float64 tile computes everything in float64. The digital unit's factors are
computed in float64 and applied in the output's precision.

Threads: the CPU kernels (:mod:`memsim.crossbar._kernels`) run on torch's intra-op thread
count, so ``torch.set_num_threads`` governs a whole forward pass; results do not depend on it.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memsim._layout import balanced_cuts
from memsim._memory import release_free_memory
from memsim.crossbar import _kernels as _k
from memsim.crossbar import cell as _cell
from memsim.crossbar.config import TileConfig
from memsim.devices.base import Device, check_generator, check_time
from memsim.errors import ConfigError, InputError, NumericalError, StateError

__all__ = ["STATE_CACHE_BYTES", "Saturation", "TileArray", "adc_stage_torch", "balanced_cuts"]

#: Device states are kept between reads up to this many bytes in all (every tile array of the
#: process together); the others are drawn again from their programming streams when a new
#: read time needs them (the same numbers, less memory).
STATE_CACHE_BYTES = 128 * 2**20
_state_cache_used = [0]


#: Column outputs of row tiles computed at once in a matrix product before they are converted
#: (a layer with many row tiles is converted a chunk of tiles at a time).
_PRODUCT_CHUNK_BYTES = 32 * 2**20
#: Devices (cells) of a layer above which its state at a time is large: freed memory is
#: handed back after reading it, and it is read on one thread.
_LARGE_LAYER = 1 << 22


def _claim_state_cache(nbytes: int) -> bool:
    if _state_cache_used[0] + nbytes > STATE_CACHE_BYTES:
        return False
    _state_cache_used[0] += nbytes
    return True


def _release_state_cache(nbytes: int) -> None:
    _state_cache_used[0] = max(0, _state_cache_used[0] - nbytes)


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
    stream: dict | None = None  # the generator state it was drawn from (saved with the tile)


def adc_stage_torch(y: torch.Tensor, var: torch.Tensor | None, z: torch.Tensor | None,
                    gain1: torch.Tensor, offset: torch.Tensor, lsb: torch.Tensor,
                    s2: torch.Tensor, bits: int, floor_mode: bool, mul: torch.Tensor | None,
                    add: torch.Tensor | None, scale: torch.Tensor | None, code: Any = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ADC stage of one row tile in torch ops (CUDA, and the CPU reference of the numba
    kernel :func:`memsim.crossbar._kernels.adc_stage`: the same formula).

    y, var, z: (B, P, U, C); gain1, offset, mul, add: (U, C); lsb, s2: (U,); scale: (B, U).
    ``code``: the ADC model's code of v / LSB (:mod:`memsim.crossbar.adc`), a function of
    one tensor; None: floor (``floor_mode``) or round.
    Returns (out, saturated per sample): out (B, P, U, C) is (q·mul + add)·scale in float64,
    or the raw ADC values q when ``mul`` is None.
    """
    v = y * gain1 + offset
    if z is not None:
        vv = s2[:, None].to(y.dtype)
        if var is not None:
            vv = var * (gain1 * gain1) + vv
        v = v + torch.sqrt(vv) * z
    if bits > 0:
        lsb_ = lsb[:, None].to(y.dtype)
        if code is not None:
            c = code(v / lsb_)
        else:
            c = torch.floor(v / lsb_) if floor_mode else torch.round(v / lsb_)
        lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1.0
        sat = ((c < lo) | (c > hi)).flatten(1).sum(1)
        q = c.clamp(lo, hi) * lsb_
    else:
        sat = torch.zeros(y.shape[0], dtype=torch.int64, device=y.device)
        q = v
    if mul is None:
        return q, sat
    d = torch.float64  # the digital unit in double precision, as the CPU kernel
    return (q.to(d) * mul.to(d) + add.to(d)) * scale[:, None, :, None].to(d), sat


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
        self._saved_times: dict[float, dict] = {}  # those of a loaded state, not yet redrawn
        self._states: dict[tuple[int, int], list] = {}
        self._own_weights = False
        self.input_range_: torch.Tensor | None = None  # (G, K) for "layer" scaling
        #: warn when "layer" ranges come from the first batch (the analog model warns once
        #: for all its layers instead)
        self.warn_first_batch = True
        #: the per-MVM read-noise variance maps are kept in bfloat16 for float32 tiles (an
        #: 8-bit mantissa: σ of each device's noise to 0.2 %, half the memory); products with
        #: them are computed in the tile's precision
        self.var_dtype = torch.bfloat16 if self.dtype == torch.float32 else self.dtype
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
        bad = 0
        for r0, r1 in g.row_cuts:  # row tiles as contiguous copies (the matrix may be a view)
            chunk = w[:, r0:r1].contiguous()
            bad += int(chunk.numel() - torch.isfinite(chunk).sum())
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
        self._seeds = rng.integers(0, 2**63, size=(g.groups, g.K, g.M))
        self._states: dict[tuple[int, int], list] = {}
        self._set_state_cache()
        cfg = self.config
        c_shape = (g.groups, g.K, g.C)
        self.adc_gain_ = (cfg.adc_gain_sigma * rng.standard_normal(c_shape)
                          if cfg.adc_gain_sigma and not self.exact else np.zeros(c_shape))
        self.adc_offset_unit_ = (rng.standard_normal(c_shape)
                                 if cfg.adc_offset_fs and not self.exact else np.zeros(c_shape))
        # the ADC model's own per-converter state (none for round and floor: no draws)
        self.adc_state_ = {} if self.exact else cfg.adc.draw(c_shape, cfg.adc_bits, rng)
        self.affine_ = (np.ones(c_shape), np.zeros(c_shape))
        self.reference_readout_ = None
        self._times = {}
        self._saved_times = {}
        if cfg.affine_calibration or cfg.drift_compensation != "none":
            self._calibrate(rng)
        return self

    def _set_state_cache(self) -> None:
        """Keep this array's device states if the process-wide budget allows."""
        g = self.geom
        old = getattr(self, "_cache_claim", None)
        if old is not None and old.detach() is not None:
            _release_state_cache(self._cache_bytes)
        # (target, programmed, ν, extra) · float32 per device, 2 polarities per weight
        self._cache_bytes = 2 * g.rpt * g.C * self.cell.instances * 4 * 4 * g.groups * g.K
        self._cache_states = _claim_state_cache(self._cache_bytes)
        self._cache_claim = (weakref.finalize(self, _release_state_cache, self._cache_bytes)
                             if self._cache_states else None)

    def _scales(self) -> np.ndarray:
        """(G, K, C) weight→conductance scale: max |w| per column of each tile (or per tile)."""
        g = self.geom
        scale = np.empty((g.groups, g.K, g.C))
        for k, (r0, r1) in enumerate(g.row_cuts):
            chunk = self._weights[:, r0:r1].contiguous()  # one pass over a strided view
            scale[:, k] = chunk.abs().amax(dim=1).double().cpu().numpy()
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
        out[:r1 - r0] = self._weights[u, r0:r1].contiguous().double().cpu().numpy()
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

    def tile_states(self, u: int, k: int, m: int, w: np.ndarray | None = None) -> list:
        """Device states (one per device instance, (2, rpt, cols of tile m)) of the physical
        tile (group u, row tile k, column tile m), from the cache or drawn again from the
        tile's own programming stream (``w``: its normalised weights, if at hand)."""
        st = self._states.get((u, k, m))
        if st is None:
            self._check_weights()
            if w is None:
                c0, c1 = self.geom.col_cuts[m]
                w = self.w_chunk(u, k)[:, c0:c1]
            st = self.cell.program(w, np.random.default_rng(int(self._seeds[u, k, m])),
                                   exact=self.exact)
            if self._cache_states:
                self._states[(u, k, m)] = st
        return st

    @property
    def states_(self) -> list:
        """The device states of the first tile (all of a single-tile array)."""
        self._require_programmed()
        return self.tile_states(0, 0, 0)

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
        out["adc_state_"] = dict(self.adc_state_)
        out["input_range_"] = None if self.input_range_ is None else self.input_range_.numpy()
        # the stream each cached device state was drawn from, so that a loaded layer reads
        # the same slow noise at those times as the saved one
        out["time_streams"] = [(t, st.stream) for t, st in self._times.items()
                               if st.stream is not None]
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
        self.adc_state_ = dict(state.get("adc_state_", {}))
        r = state["input_range_"]
        self.input_range_ = None if r is None else torch.from_numpy(np.asarray(r))
        self._weights = weights.detach() if weights.ndim == 3 else weights.detach()[None]
        self._own_weights = False
        self._weights_source = weights
        self._weights_version = weights._version
        self._mask = g.row_mask()
        self._states = {}
        self._set_state_cache()
        self._times = {}
        self._saved_times = {float(t): st for t, st in state.get("time_streams", [])}

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
            self._times.pop(t_since, None)
            while len(self._times) >= 2:
                self._times.pop(next(iter(self._times)))
            saved = self._saved_times.pop(t_since, None)
            if saved is not None:  # drawn before a save: draw it again from the same stream
                rng = np.random.default_rng()
                rng.bit_generator.state = saved
            stream = copy.deepcopy(rng.bit_generator.state)
            st = self._draw_time(t_since, rng)
            st.stream = stream
            self._times[t_since] = st
            if self.geom.groups * self.geom.K * self.geom.rpt * self.geom.C > _LARGE_LAYER:
                release_free_memory()  # the large layer's temporaries, back to the system
        return st

    def _read_chunks(self, t_since: float, rng: np.random.Generator):
        """(u, k, G₊, G₋, σ²₊, σ²₋) per row tile at ``t_since``, normalised and masked.

        Read ahead on torch's threads (:class:`_ReadAhead`) unless the layer is large: its
        state at a time is held whole while it is read, and the worker threads' heaps add
        to that peak (VGG-11's 25088x4096 layer: +70-150 MiB)."""
        g = self.geom
        large = g.groups * g.K * g.rpt * g.C > _LARGE_LAYER
        with _ReadAhead(self, t_since, active=not large) as ahead:
            for k in range(g.K):
                for u in range(g.groups):
                    yield (u, k, *self._chunk_maps(u, k, t_since, rng, ahead.take(u, k)))

    def _chunk_maps(self, u: int, k: int, t_since: float, rng: np.random.Generator,
                    parts: Callable[[int], tuple] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(G₊, G₋, σ²₊, σ²₋), (rpt, C), of row tile k of group u at ``t_since``: normalised,
        padding rows zero, the approximate IR-drop attenuation applied; read one physical
        tile at a time (bounded temporaries). ``parts``: a function of the column tile
        giving (states, :meth:`CellModel.read_parts`) of its physical tiles, computed ahead
        (:class:`_ReadAhead`)."""
        cfg = self.config
        g = self.geom
        out = [np.zeros((g.rpt, g.C)) for _ in range(4)]
        mask = self._mask[k][:, None]
        w = self.w_chunk(u, k) if (u, k, 0) not in self._states and parts is None else None
        for m, (c0, c1) in enumerate(g.col_cuts):
            if parts is None:
                states = self.tile_states(u, k, m, None if w is None else w[:, c0:c1])
                ahead = None
            else:
                states, ahead = parts(m)
            gp, gn, vp, vn = self.cell.read(states, t_since, rng, exact=self.exact,
                                            parts=ahead)
            gp, gn = gp * mask, gn * mask
            if cfg.ir_drop == "approx":
                ap, an = _ir_attenuation(gp[None, None] * self.cell.g_unit_S,
                                         gn[None, None] * self.cell.g_unit_S, cfg)
                gp, gn = gp * ap[0, 0], gn * an[0, 0]
            for dst, a in zip(out, (gp, gn, vp * mask, vn * mask), strict=True):
                dst[:, c0:c1] = a
        return tuple(out)

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
            if exact_ir:
                gp_raw[u, k], gn_raw[u, k] = gp * self.cell.g_unit_S, gn * self.cell.g_unit_S
            w[u, k] = torch.from_numpy(gp - gn)
            if split:
                gp_t[u, k], gn_t[u, k] = torch.from_numpy(gp), torch.from_numpy(gn)
            readout[u, k] = (gp + gn).sum(axis=0)
            if vp.any() or vn.any():
                if var is None:
                    vdt = self.var_dtype
                    var = torch.zeros(shape, dtype=vdt)
                    if split:
                        vp_t, vn_t = (torch.zeros(shape, dtype=vdt),
                                      torch.zeros(shape, dtype=vdt))
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
        """Reference MVMs at calibration time, one row tile at a time (bounded memory): the
        drift-compensation readout (all-ones input, per column) and the per-column affine fit
        (least squares of the ideal on the measured raw ADC values of ``calibration_vectors``
        uniform random inputs), both on the same read of the devices."""
        cfg = self.config
        g = self.geom
        t_cal = cfg.calibration_time_s
        readout = np.empty((g.groups, g.K, g.C))
        readout_var = np.zeros((g.groups, g.K, g.C))
        affine = cfg.affine_calibration
        a_fit = np.ones((g.groups, g.K, g.C))
        b_fit = np.zeros((g.groups, g.K, g.C))
        split = self.cell.needs_polarities(cfg)
        dt = self.dtype
        n = cfg.calibration_vectors
        ahead = _ReadAhead(self, t_cal)
        try:
            for k in range(g.K):
                maps = [self._chunk_maps(u, k, t_cal, rng, ahead.take(u, k))
                        for u in range(g.groups)]
                for u, (gp, gn, vp, vn) in enumerate(maps):
                    readout[u, k] = (gp + gn).sum(axis=0)
                    readout_var[u, k] = (vp + vn).sum(axis=0)
                if not affine:
                    continue

                def stack(i, maps=maps):
                    return torch.from_numpy(np.stack([m[i] for m in maps])[:, None]).to(
                        self.torch_device, dt)

                noisy = any(m[2].any() or m[3].any() for m in maps)
                gp_t, gn_t = stack(0), stack(1)
                st = _TimeState(t_since=t_cal, gp=gp_t if split else None,
                                gn=gn_t if split else None, w=gp_t - gn_t,
                                var_p=stack(2) if noisy and split else None,
                                var_n=stack(3) if noisy and split else None,
                                var=stack(2) + stack(3) if noisy else None,
                                alpha=torch.ones(1))
                x = rng.uniform(-1.0, 1.0, size=(g.groups, n, g.rpt)) * self._mask[k]
                xt = torch.from_numpy(x).to(self.torch_device, dt)
                layout = dict(B=n, P=1, sb=g.C, sp=0, su=n * g.C, sc=1, ob=g.groups * g.C, op=0,
                              ou=g.C, oc=1, ok=0)
                raw = torch.empty((n, g.groups, g.C), dtype=dt, device=xt.device)
                if cfg.encoding == "pwm_4phase" and cfg.phase_conversion == "separate":
                    # fitted on the four conversions it corrects, combined as in the forward path
                    acc = None
                    for xs, gm, vm, sign in self._four_phases(xt, st):
                        y = torch.bmm(xs, gm.reshape(g.groups, g.rpt, g.C))
                        var = None if vm is None else _bmm(xs * xs, vm.reshape(g.groups, g.rpt,
                                                                              g.C))
                        part = torch.empty_like(raw)
                        self._adc([y], [var], layout, None, st, rng, part, raw=True, ks=[k])
                        acc = part.mul_(sign) if acc is None else acc.add_(part, alpha=sign)
                    raw = acc
                else:
                    y, var = self._products(xt, None, st, g.groups)
                    self._adc([y], [var], layout, None, st, rng, raw, raw=True, ks=[k])
                measured = raw.double().cpu().numpy()  # (n, G, C)
                for u in range(g.groups):
                    ideal = torch.from_numpy(x[u]).to(dt) @ torch.from_numpy(
                        self.w_chunk(u, k)).to(dt)
                    mi_all = ideal.double().numpy()
                    ms = measured[:, u]
                    mm, mi = ms.mean(0), mi_all.mean(0)
                    dm = ms - mm
                    var_m = (dm * dm).sum(0)
                    cov = (dm * (mi_all - mi)).sum(0)
                    ok = var_m > 0
                    a_fit[u, k] = np.where(ok, cov / np.where(ok, var_m, 1.0), 1.0)
                    b_fit[u, k] = mi - a_fit[u, k] * mm
        finally:
            ahead.close()
        if readout_var.any():
            readout = readout + np.sqrt(readout_var) * rng.standard_normal(readout.shape)
        if cfg.drift_compensation != "none":
            self.reference_readout_ = readout
        if affine:
            self.affine_ = (a_fit, b_fit)

    # -- the forward paths -------------------------------------------------------------------------
    def _digital(self, st: _TimeState) -> tuple[torch.Tensor, torch.Tensor]:
        """(mul, add) per (G, K, C), float64: affine correction, drift compensation, weight
        scale (weights up to float64's range)."""
        a, b = self.affine_
        dev, d = self.torch_device, torch.float64
        ws = torch.from_numpy(self.weight_scale_).to(dev, d) * st.alpha.to(d)
        return (torch.from_numpy(a).to(dev, d) * ws, torch.from_numpy(b).to(dev, d) * ws)

    def _adc(self, ys: list, vs: list, layout: dict[str, int], scale: torch.Tensor | None,
             st: _TimeState, rng: np.random.Generator, out: torch.Tensor, *,
             raw: bool = False, zs: list | None = None, backend: str | None = None,
             ks: list[int] | None = None, accumulate: bool = False, final: bool = True,
             seed: np.uint64 | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ADC stage of every row tile, into ``out``.

        ``ys[k]``/``vs[k]``: analog outputs and read-noise variances of row tile k, logically
        (B, P, G, C) with the strides in ``layout`` (keys B, P, sb, sp, su, sc, base_k, and
        ob, op, ou, oc for ``out``); ``vs[k]`` may be None. ``scale``: (B or 1, G, K) input
        scales (unused when ``raw``). ``raw``: out receives the ADC values per row tile, out
        logically (B, P, G, K, C). Returns (saturated conversions, non-finite outputs) per
        sample. ``zs``: the normals to use (tests compare the back-ends on them). ``ks``: the
        row tiles ``ys`` hold (default all, in order). ``accumulate``: add to ``out`` (a
        later chunk of row tiles); ``final``: this call ends the sum (count non-finite);
        ``seed``: the noise seed (drawn from ``rng`` if None; chunks of one product share it,
        so that the normals do not depend on the chunking).
        """
        cfg = self.config
        g = self.geom
        B, P = layout["B"], layout["P"]
        lsb, s2, offset = self._converter()
        gain1 = 1.0 + self.adc_gain_
        noisy = any(v is not None for v in vs) or bool(np.any(s2 > 0))
        bits = cfg.adc_bits or 0
        floor = cfg.adc.fused == 1
        mul = add = None
        if not raw:
            mul, add = self._digital(st)
        backend = backend or ("numba" if out.device.type == "cpu" else "torch")
        if cfg.adc.fused is None and bits:
            backend = "torch"  # a plug-in ADC model runs its code() on torch tensors
        sat = np.zeros(B, dtype=np.int64)
        bad = np.zeros(B, dtype=np.int64)
        ks = list(range(g.K)) if ks is None else list(ks)
        if backend == "torch":
            return self._adc_torch(ys, vs, layout, scale, rng, out, raw, zs, noisy, bits,
                                   floor, lsb, s2, offset, gain1, mul, add, ks, accumulate,
                                   final)
        if seed is None:
            seed = np.uint64(rng.integers(0, 2**64, dtype=np.uint64))
        o = _flat(out)  # the layout's output strides address out's storage
        f64 = np.float64
        last = len(ks) - 1
        for i, k in enumerate(ks):
            y = _flat(ys[i])  # strides in the layout, from the tile's first element
            v = vs[i]
            vf = _flat(v) if v is not None else y[:0]
            v_bits = v is not None and v.dtype == torch.bfloat16
            z = _flat(zs[i]) if zs is not None else np.zeros(0, np.float32)
            g1 = np.ascontiguousarray(gain1[:, k], dtype=f64).reshape(-1)
            if raw:
                ones = np.ones(g.groups * g.C)
                m_k = a_k = ones
                sc, sc_b = np.ones(g.groups), 0
                ob = o[i * layout["ok"]:]
            else:
                m_k = np.ascontiguousarray(mul[:, k].cpu().numpy(), dtype=f64).reshape(-1)
                a_k = np.ascontiguousarray(add[:, k].cpu().numpy(), dtype=f64).reshape(-1)
                sk = scale[:, :, k].to("cpu", torch.float64)
                sc, sc_b = np.ascontiguousarray(sk.numpy()).reshape(-1), (
                    g.groups if sk.shape[0] > 1 else 0)
                ob = o
            _k.call(_k.adc_stage, B * P * g.groups * g.C,
                    y, vf, v is not None, v_bits, 0, layout["sb"], layout["sp"], layout["su"],
                    layout["sc"], B, P, g.groups, g.C, k, g.K, seed, noisy,
                    zs is not None, z, g1, g1 * g1,
                    np.ascontiguousarray(offset[:, k], dtype=f64).reshape(-1), m_k, a_k,
                    np.ascontiguousarray(lsb[:, k], dtype=f64),
                    np.ascontiguousarray(s2[:, k], dtype=f64), bits, floor, sc, sc_b,
                    ob, layout["ob"], layout["op"], layout["ou"], layout["oc"], raw,
                    (i > 0 or accumulate) and not raw, i == last and final and not raw, sat,
                    bad)
        return sat, bad

    def _adc_torch(self, ys, vs, layout, scale, rng, out, raw, zs, noisy, bits, floor, lsb,
                   s2, offset, gain1, mul, add, ks, accumulate=False, final=True):
        g = self.geom
        B, P = layout["B"], layout["P"]
        dev, dt = out.device, self.dtype
        gen = None
        if noisy and zs is None:
            gen = torch.Generator(device=dev)
            gen.manual_seed(int(rng.integers(2**63)))
        sat = torch.zeros(B, dtype=torch.int64, device=dev)
        shape = (B, P, g.groups, g.C)

        def view(t):
            return t.as_strided(shape, (layout["sb"], layout["sp"], layout["su"], layout["sc"]),
                                t.storage_offset())

        acc = None
        for i, k in enumerate(ks):
            y = view(ys[i])
            v = None if vs[i] is None else view(vs[i])
            z = None
            if noisy:
                z = view(zs[i]) if zs is not None else torch.randn(
                    shape, generator=gen, device=dev, dtype=dt)

            def tt(a):
                return torch.as_tensor(np.ascontiguousarray(a), device=dev, dtype=dt)

            q, sat_k = adc_stage_torch(
                y, v, z, tt(gain1[:, k]), tt(offset[:, k]), tt(lsb[:, k]), tt(s2[:, k]), bits,
                floor, None if raw else mul[:, k], None if raw else add[:, k],
                None if raw else scale[:, :, k].expand(B, g.groups), self._code(k, bits, dev))
            sat += sat_k
            if raw:
                out.as_strided((B, P, g.groups, g.C),
                               (layout["ob"], layout["op"], layout["ou"], layout["oc"]),
                               out.storage_offset() + i * layout["ok"]).copy_(q)
            else:
                acc = q if acc is None else acc + q
        bad = torch.zeros(B, dtype=torch.int64, device=dev)
        if not raw:
            dst = out.as_strided((B, P, g.groups, g.C),
                                 (layout["ob"], layout["op"], layout["ou"], layout["oc"]))
            if accumulate:
                dst.add_(acc.to(dst.dtype))
            else:
                dst.copy_(acc)
            if final:
                bad = (~torch.isfinite(dst)).flatten(1).sum(1)
        return sat.cpu().numpy(), bad.cpu().numpy()

    def _code(self, k: int, bits: int, dev: torch.device) -> Any:
        """The code function of a plug-in ADC model for row tile k (None: round/floor)."""
        adc = self.config.adc
        if adc.fused is not None or not bits:
            return None
        state = {name: torch.as_tensor(a[:, k], device=dev, dtype=self.dtype)
                 for name, a in self.adc_state_.items()}
        return lambda u: adc.code(u, bits, state)

    # -- matrix products ---------------------------------------------------------------------
    def _dac_linear(self, x: torch.Tensor, want_sq: bool
                    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, int]:
        """Scale, clip and quantize inputs x (N, G·R) into the batched-GEMM layout
        (G·K, N, rpt). Returns (x_q, x_q² or None, scales (N or 1, G, K), clipped count);
        non-finite inputs are an error naming the layer."""
        cfg = self.config
        g = self.geom
        N = x.shape[0]
        absmax = cfg.input_scaling in ("absmax", "clip_retry")
        n_steps = 0 if (cfg.dac_bits is None or self.exact) else 2 ** (cfg.dac_bits - 1) - 1
        dt = self.dtype
        if x.device.type == "cpu" and not (cfg.dac_noise and not self.exact):
            xc = x.contiguous()
            if xc.dtype not in (torch.float32, torch.float64):
                xc = xc.double()
            xq = torch.empty((g.groups * g.K, N, g.rpt), dtype=dt)
            # the squares in the precision of the variance product (bfloat16 bits written by
            # the kernel where that product runs in bfloat16)
            sq_bits = want_sq and self._var_keeps_bf16(x.device)
            x2 = torch.empty(xq.shape, dtype=torch.bfloat16 if sq_bits else dt) if want_sq \
                else torch.empty(0, dtype=dt)
            s_out = torch.empty((N, g.groups, g.K), dtype=torch.float64)
            s_fixed = (np.zeros(g.groups * g.K) if absmax
                       else self.layer_range().double().cpu().numpy().reshape(-1))
            bad = np.zeros(N, dtype=np.int64)
            clipped = np.zeros(N, dtype=np.int64)
            lo = np.array([r0 for r0, _ in g.row_cuts], dtype=np.int64)
            hi = np.array([r1 for _, r1 in g.row_cuts], dtype=np.int64)
            _k.call(_k.dac_linear, xc.numel(), xc.view(-1).numpy(), N, g.groups, g.R, g.K,
                    g.rpt, lo, hi, absmax, s_fixed, n_steps, xq.view(-1).numpy(),
                    _flat(x2) if want_sq else xq.view(-1).numpy()[:0], want_sq, sq_bits,
                    s_out.view(-1).numpy(), bad, clipped)
            if bad.any():
                self._bad_input(int(bad.sum()))
            scale = s_out if absmax else s_out[:1]
            return xq, (x2 if want_sq else None), scale, int(clipped.sum())
        self._check_input(x)
        xt = self._to_tiles(x)  # (N, G, K, rpt)
        if absmax:
            s = xt.abs().amax(dim=3)
            clipped = 0
        else:
            s = self.layer_range().to(xt)[None]
            clipped = int((xt.abs() > s[..., None]).sum())
        xq = self.dac(xt, s[..., None]).to(dt).permute(1, 2, 0, 3).reshape(
            g.groups * g.K, N, g.rpt).contiguous()
        return xq, (xq * xq if want_sq else None), s.double(), clipped

    def _bad_input(self, n: int) -> None:
        raise InputError(f"{self.name}: input contains {n} NaN or infinite value(s)")

    def _products_linear(self, xq: torch.Tensor, x2: torch.Tensor | None, st: _TimeState
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Column outputs and read-noise variances, (G·K, N, C), for DAC outputs
        (G·K, N, rpt)."""
        return self._products(xq, x2, st, self.geom.groups * self.geom.K)

    def _terms(self, xq: torch.Tensor, x2: torch.Tensor | None, st: _TimeState
               ) -> tuple[list, list]:
        """(input, map) pairs of the signal and of the read-noise variance products for DAC
        outputs xq (their squares x2, if at hand): the cell's I–V terms (one each for a
        linear symmetric cell); no variance terms without per-MVM noise."""
        if self.cell.identity():
            vterms = [(x2 if x2 is not None else xq * xq, st.var)] if st.var is not None else []
            return [(xq, st.w)], vterms
        return (self.cell.signal_terms(xq, st),
                self.cell.variance_terms(xq, st) if st.var is not None else [])

    def _products(self, xq: torch.Tensor, x2: torch.Tensor | None, st: _TimeState, GK: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Batched products of GK tiles: inputs (GK, N, rpt), maps of st reshaped to
        (GK, rpt, C)."""
        g = self.geom
        terms, vterms = self._terms(xq, x2, st)
        y = None
        for inp, mat in terms:
            part = torch.bmm(inp, mat.reshape(GK, g.rpt, g.C))
            y = part if y is None else y.add_(part)
        var = None
        for inp, mat in vterms:
            if inp.dtype == torch.bfloat16 and mat.dtype == torch.bfloat16:
                # bfloat16 products, float32 sums, bfloat16 out: read so by the CPU kernel
                part = torch.bmm(inp, mat.reshape(GK, g.rpt, g.C))
            else:
                part = _bmm(inp, mat.reshape(GK, g.rpt, g.C))
            var = part if var is None else var.add_(part)
        return y, var

    def _linear_layout(self, N: int) -> dict[str, int]:
        g = self.geom
        return dict(B=N, P=1, sb=g.C, sp=0, su=g.K * N * g.C, sc=1, ob=g.groups * g.C, op=0,
                    ou=g.C, oc=1, ok=0)

    def _linear_forward(self, xq, x2, s, st, rng, N, out_dtype):
        g = self.geom
        cfg = self.config
        if cfg.encoding == "pwm_4phase" and cfg.phase_conversion == "separate":
            return self._four_separate(xq, s, st, rng, N, out_dtype)
        out = torch.empty((N, g.groups * g.C), dtype=out_dtype, device=xq.device)
        if st.gp_raw is not None:  # exact IR drop: a nodal solve per input vector
            y, var = self._analog_exact_ir(xq, st)
        elif g.groups == 1 and g.K > 1 and N * g.C * g.K * 4 > _PRODUCT_CHUNK_BYTES:
            return self._linear_chunked(xq, x2, s, st, rng, N, out)
        else:
            y, var = self._products_linear(xq, x2, st)
        ys = [y[k::g.K] for k in range(g.K)]  # (G, N, C) views: tile stride K·N·C
        vs = [None if var is None else var[k::g.K] for k in range(g.K)]
        sat, bad = self._adc(ys, vs, self._linear_layout(N), s, st, rng, out)
        self._check_output(bad)
        return out, sat

    def _linear_chunked(self, xq, x2, s, st, rng, N, out):
        """A layer of many row tiles, a few at a time: the column outputs of a chunk of row
        tiles are converted and added before the next chunk is computed (bounded memory)."""
        g = self.geom
        per = max(1, _PRODUCT_CHUNK_BYTES // (N * g.C * 4))
        sat = np.zeros(N, dtype=np.int64)
        bad = np.zeros(N, dtype=np.int64)
        layout = self._linear_layout(N)
        seed = np.uint64(rng.integers(0, 2**64, dtype=np.uint64))
        for k0 in range(0, g.K, per):
            k1 = min(g.K, k0 + per)
            sub = _TimeState(
                t_since=st.t_since, w=st.w[:, k0:k1],
                gp=None if st.gp is None else st.gp[:, k0:k1],
                gn=None if st.gn is None else st.gn[:, k0:k1],
                var=None if st.var is None else st.var[:, k0:k1],
                var_p=None if st.var_p is None else st.var_p[:, k0:k1],
                var_n=None if st.var_n is None else st.var_n[:, k0:k1], alpha=st.alpha)
            y, var = self._products(xq[k0:k1], None if x2 is None else x2[k0:k1], sub, k1 - k0)
            lay = dict(layout, su=(k1 - k0) * N * g.C)
            sat_c, bad_c = self._adc(list(y), [None] * (k1 - k0) if var is None else list(var),
                                     lay, s, st, rng, out, ks=list(range(k0, k1)),
                                     accumulate=k0 > 0, final=k1 == g.K, seed=seed)
            sat += sat_c
            bad += bad_c
        self._check_output(bad)
        return out, sat

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

    def _first_batch_range(self, absmax: torch.Tensor) -> None:
        self.set_input_range_from(absmax)
        if self.warn_first_batch:
            import warnings

            from memsim.errors import CalibrationWarning

            warnings.warn(f"{self.name}: input_scaling = 'layer' set the input range from the "
                          "first batch; set it from data of your choice (Tile.calibrate_inputs, "
                          "memsim.calibrate) or use input_scaling='absmax'", CalibrationWarning,
                          stacklevel=4)

    def dac(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """x / s clipped to [−1, 1] and quantized to the DAC's steps (s broadcast to x; a zero
        scale gives 0). The torch form of the numba DAC kernels."""
        cfg = self.config
        safe = torch.where(s > 0, s, torch.ones_like(s))
        xq = (x / safe) * (s > 0)
        xq = xq.clamp_(-1.0, 1.0)
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
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            self._bad_input(bad)

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
        if x.is_complex():
            self._check_input(x)
        N = x.shape[0]
        if N == 0:
            return torch.zeros((0, g.groups * g.C), dtype=x.dtype, device=x.device)
        x = x.to(self.torch_device)
        st = self.state_at(t_since, rng, redraw=redraw)
        if cfg.input_scaling == "layer" and self.input_range_ is None:
            self._check_input(x)
            self._first_batch_range(self._to_tiles(x).abs().amax(dim=(0, 3)))
        out_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else self.dtype
        want_sq = st.var is not None and self.cell.identity()
        xq, x2, s, clipped = self._dac_linear(x, want_sq)
        out, sat = self._linear_forward(xq, x2, s, st, rng, N, out_dtype)
        retried = np.zeros(N, dtype=bool)
        conversions = N * g.groups * g.K * g.C
        saturated = int(sat.sum())
        if cfg.input_scaling == "clip_retry" and cfg.adc_bits is not None:
            todo = np.flatnonzero(sat)
            s = s.clone()
            for _ in range(cfg.max_retries):
                if todo.size == 0:
                    break
                retried[todo] = True
                idx = torch.from_numpy(todo).to(self.torch_device)
                s[idx] *= 2.0
                xt = self._to_tiles(x[idx])
                xq_r = self.dac(xt, s[idx].to(xt)[..., None]).to(self.dtype).permute(
                    1, 2, 0, 3).reshape(g.groups * g.K, todo.size, g.rpt).contiguous()
                x2_r = xq_r * xq_r if want_sq else None
                part, sat_r = self._linear_forward(xq_r, x2_r, s[idx], st, rng, todo.size,
                                                   out_dtype)
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
                                      inputs_clipped=clipped, inputs=int(x.numel()))
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

    @staticmethod
    def _four_phases(xq, st):
        """(input, conductance map, variance map, sign) of the four phases of 4-phase PWM:
        each sign of input on each weight polarity."""
        xp, xn = xq.clamp(min=0), (-xq).clamp(min=0)
        gp = st.gp if st.gp is not None else st.w.clamp(min=0)
        gn = st.gn if st.gn is not None else (-st.w).clamp(min=0)
        vp = st.var_p if st.var_p is not None else st.var
        vn = st.var_n if st.var_n is not None else st.var
        return ((xp, gp, vp, 1.0), (xp, gn, vn, -1.0), (xn, gp, vp, -1.0), (xn, gn, vn, 1.0))

    def _four_separate(self, xq, s, st, rng, N, out_dtype):
        """4-phase PWM with four conversions combined digitally: each sign of input and of
        weight polarity in its own phase, at positive read polarity, converted on its own."""
        g = self.geom
        GK = g.groups * g.K
        acc = None
        sat = np.zeros(N, dtype=np.int64)
        layout = self._linear_layout(N)
        layout.update(ob=GK * g.C, ou=g.K * g.C, ok=g.C)
        for xs, gm, vm, sign in self._four_phases(xq, st):
            y = torch.bmm(xs, gm.reshape(GK, g.rpt, g.C))
            var = None if vm is None else _bmm(xs * xs, vm.reshape(GK, g.rpt, g.C))
            raw = torch.empty((N, g.groups, g.K, g.C), dtype=self.dtype, device=y.device)
            sat_p, _ = self._adc([y[k::g.K] for k in range(g.K)],
                                 [None if var is None else var[k::g.K] for k in range(g.K)],
                                 layout, None, st, rng, raw, raw=True)
            sat += sat_p
            acc = sign * raw if acc is None else acc.add_(raw, alpha=sign)
        mul, add = self._digital(st)
        out = ((acc.double() * mul[None] + add[None]) * s.reshape(-1, g.groups, g.K)[
            ..., None].double()).sum(2).to(out_dtype)
        bad = (~torch.isfinite(out)).flatten(1).sum(1).cpu().numpy()
        self._check_output(bad)
        return out.reshape(N, g.groups * g.C), sat

    def _analog_exact_ir(self, xq, st):
        """Column outputs by a nodal solve per input vector (the exact IR-drop reference);
        the read-noise variance as for an ideal array."""
        g = self.geom
        cfg = self.config
        N = xq.shape[1]
        y = np.zeros((g.groups * g.K, N, g.C))
        xk = xq.detach().cpu().numpy().astype(np.float64)
        v_read = cfg.read_voltage_v
        for u in range(g.groups):
            for k in range(g.K):
                fp, fn = self.cell.polarity_inputs(xk[u * g.K + k])
                cur = _ir_solve(st.gp_raw[u, k], st.gn_raw[u, k], fp * v_read, fn * v_read, cfg)
                y[u * g.K + k] = cur / (v_read * self.cell.g_unit_S)
        yt = torch.from_numpy(y).to(self.torch_device, self.dtype)
        var = None
        if st.var is not None:
            for inp, mat in self.cell.variance_terms(xq, st):
                part = _bmm(inp, mat.reshape(g.groups * g.K, g.rpt, g.C))
                var = part if var is None else var.add_(part)
        return yt, var

    def _check_output(self, bad: np.ndarray) -> None:
        if bad.any():
            raise NumericalError(
                f"{self.name}: {int(bad.sum())} output value(s) are not finite numbers: the "
                "digital rescaling by the input and weight scales overflowed the output's "
                "precision; scale the layer's inputs or weights down, or run in float64")

    # -- convolution -------------------------------------------------------------------------
    def conv_fast_path(self) -> bool:
        """Whether a convolution can run as convolutions of the quantized input (input scale
        independent of the output position, no per-MVM DAC noise, no nodal solve)."""
        cfg = self.config
        return (cfg.input_scaling in ("fixed", "layer") and (cfg.dac_noise == 0 or self.exact)
                and cfg.ir_drop != "exact"
                and not (cfg.encoding == "pwm_4phase" and cfg.phase_conversion == "separate"))

    def conv(self, x: torch.Tensor, conv: dict[str, Any], t_since: float,
             rng: np.random.Generator, *, redraw: bool = False) -> torch.Tensor:
        """A convolution (``conv``: kernel_size, stride, padding, dilation, dims) of x
        ``(B, G·Cg_in, *spatial)`` through the tiles; returns ``(B, G·C, *out_spatial)``
        without bias (a channels-last tensor for 2-D inputs). Rows of each group matrix are
        in im2col order (input channel, kernel positions)."""
        self._require_programmed()
        dims = conv["dims"]
        if x.ndim != dims + 2:
            raise InputError(f"{self.name}: a {dims}-D convolution needs a "
                             f"{dims + 2}-D input (batch, channels, ...), got {tuple(x.shape)}")
        B = x.shape[0]
        if B == 0:
            out_sp = _conv_out_shape(x.shape[2:], conv)
            return x.new_zeros((0, self.geom.groups * self.geom.C, *out_sp))
        if x.is_complex():
            self._check_input(x)
        if not self.conv_fast_path():
            return self._conv_unfold(x, conv, t_since, rng, redraw)
        if dims == 1:  # a 1-D convolution is a 2-D one of height 1
            c2 = dict(dims=2, kernel_size=(1, conv["kernel_size"][0]),
                      stride=(1, conv["stride"][0]), padding=(0, conv["padding"][0]),
                      dilation=(1, conv["dilation"][0]))
            return self.conv(x[:, :, None, :], c2, t_since, rng, redraw=redraw)[:, :, 0, :]
        g = self.geom
        cfg = self.config
        kk = int(np.prod(conv["kernel_size"]))
        st = self.state_at(t_since, rng, redraw=redraw)
        cin_g = g.R // kk
        if cfg.input_scaling == "layer" and self.input_range_ is None:
            self._check_input(x)
            self._first_batch_range(self._conv_absmax(x, cin_g, kk))
        s = self.layer_range()  # (G, K)
        want_sq = st.var is not None and self.cell.identity()
        xqs, x2s, clipped = self._conv_dac(x, s, cin_g, kk, want_sq, scratch=True)
        out_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else self.dtype
        seed = np.uint64(rng.integers(0, 2**64, dtype=np.uint64))
        sat = np.zeros(B, dtype=np.int64)
        out = layout = bad = None
        # one row tile at a time, its products converted while they are still in cache
        for k in range(g.K):
            y, v = self._conv_analog(xqs[k], None if x2s is None else x2s[k], st, conv, kk,
                                     k)
            if out is None:
                Ho, Wo = y.shape[2:]
                P = Ho * Wo
                GC = g.groups * g.C
                # the first row tile's products (channels-last) are converted in place
                out = y if y.dtype == out_dtype else torch.empty(
                    (B, Ho, Wo, GC), dtype=out_dtype, device=y.device).permute(0, 3, 1, 2)
                layout = dict(B=B, P=P, sb=P * GC, sp=GC, su=g.C, sc=1, ob=P * GC, op=GC,
                              ou=g.C, oc=1, ok=0)
            sat_k, bad = self._adc([y], [v], layout, s[None].double(), st, rng, out, ks=[k],
                                   accumulate=k > 0, final=k == g.K - 1, seed=seed)
            sat += sat_k
            del y, v
        del xqs, x2s
        self._check_output(bad)
        self.saturation_ = Saturation(conversions=B * g.groups * g.K * g.C * P,
                                      saturated=int(sat.sum()),
                                      samples_saturated=int(np.count_nonzero(sat)),
                                      inputs_clipped=clipped, inputs=int(x.numel()))
        return out

    def _tile_channels(self, cin_g: int, kk: int) -> list[np.ndarray]:
        """Input channels of each row tile, group-major (the grouped convolution's order)."""
        g = self.geom
        return [np.concatenate([u * cin_g + np.arange(r0 // kk, r1 // kk)
                                for u in range(g.groups)]) for r0, r1 in g.row_cuts]

    def _conv_absmax(self, x, cin_g, kk):
        g = self.geom
        per_ch = x.detach().abs().amax(dim=[0, *range(2, x.ndim)]).to("cpu", torch.float64)
        out = torch.zeros(g.groups, g.K, dtype=torch.float64)
        for k, (r0, r1) in enumerate(g.row_cuts):
            for u in range(g.groups):
                out[u, k] = per_ch[u * cin_g + r0 // kk:u * cin_g + r1 // kk].max()
        return out

    def _var_keeps_bf16(self, device: torch.device) -> bool:
        """Whether the read-noise variance products of a float32 tile run in bfloat16 and
        stay so (one term, read by the CPU kernel): see :meth:`_conv_var_dtype`."""
        return (device.type == "cpu" and self.config.adc.fused is not None
                and self.cell.identity() and self._conv_var_dtype(device) == torch.bfloat16)

    def _conv_var_dtype(self, device: torch.device) -> torch.dtype:
        """The precision of the read-noise variance convolution: bfloat16 with float32
        accumulation where the hardware has native bfloat16 (the maps are stored in bfloat16
        already; the summed variance is rounded to 2^-9 relative, its standard deviation to
        2^-10), measured 8-10 % of a ResNet's forward on 2 cores; elsewhere, and for float64
        tiles, the tile's precision."""
        return self.var_dtype if _native_bf16(device) else self.dtype

    def _conv_dac(self, x, s, cin_g, kk, want_sq, scratch=False):
        """The quantized input of every row tile, channels-last, as a list of (B, n_k, H, W)
        views; each channel scaled by its row tile's range. ``scratch``: the views are of
        this thread's reused work buffers (valid until the next call with ``scratch``)."""
        chans = self._tile_channels(cin_g, kk)
        B, C, H, W = x.shape
        n_steps = 0 if (self.config.dac_bits is None or self.exact) else \
            2 ** (self.config.dac_bits - 1) - 1
        s_ch = np.empty(C)
        for k, ch in enumerate(chans):
            s_ch[ch] = s[ch // cin_g, k].double().cpu().numpy()
        if x.device.type == "cpu":
            runs = []  # (first input channel, length, row tile, position in the tile, range)
            cin_tile = [(r0 // kk, r1 // kk) for r0, r1 in self.geom.row_cuts]
            for k, (lo, hi) in enumerate(cin_tile):
                for u in range(self.geom.groups):
                    runs.append((u * cin_g + lo, hi - lo, k, u * (hi - lo),
                                 float(s[u, k])))
            ch_n = np.array([ch.size for ch in chans], dtype=np.int64)
            offs = np.concatenate([[0], np.cumsum(ch_n * B * H * W)[:-1]]).astype(np.int64)
            total = int(ch_n.sum()) * B * H * W
            # the squares in the precision of the variance convolution (bfloat16 bits
            # written by the kernel, rounded as torch rounds: no conversion pass)
            sq_bits = want_sq and self._conv_var_dtype(x.device) == torch.bfloat16
            sq_dt = torch.bfloat16 if sq_bits else self.dtype
            if scratch:
                xq = _scratch("xq", total, self.dtype)
                x2 = _scratch("x2", total if want_sq else 0, sq_dt)
            else:
                xq = torch.empty(total, dtype=self.dtype)
                x2 = torch.empty(total if want_sq else 0, dtype=sq_dt)
            bad = np.zeros(B * H, dtype=np.int64)
            clip = np.zeros(B * H, dtype=np.int64)
            xin = x if x.dtype in (torch.float32, torch.float64) else x.double()
            st = xin.stride()
            flat = xin.as_strided((xin.untyped_storage().nbytes() // xin.element_size(),),
                                  (1,), 0)
            r = np.array(runs, dtype=np.float64)
            _k.call(_k.dac_conv, x.numel(), flat.numpy()[xin.storage_offset():], st[0], st[1],
                    st[2], st[3], B, C, H, W, r[:, 4].copy(), n_steps,
                    r[:, 0].astype(np.int64), r[:, 1].astype(np.int64),
                    r[:, 2].astype(np.int64), r[:, 3].astype(np.int64), ch_n, offs,
                    xq.numpy(), _flat(x2) if x2.numel() else xq.numpy()[:0],
                    want_sq, sq_bits, bad, clip)
            if bad.any():
                self._bad_input(int(bad.sum()))

            def views(buf):
                return [buf[int(o):int(o) + int(n) * B * H * W].view(B, H, W, int(n)).permute(
                    0, 3, 1, 2) for o, n in zip(offs, ch_n, strict=True)]

            return views(xq), (views(x2) if want_sq else None), int(clip.sum())
        self._check_input(x)
        s_t = torch.from_numpy(s_ch).to(x.device, x.dtype).reshape(1, C, 1, 1)
        clipped = int((x.abs() > s_t).sum())
        xq = self.dac(x, s_t).to(self.dtype)
        xqs = [xq.index_select(1, torch.from_numpy(ch).to(x.device)).contiguous(
            memory_format=torch.channels_last) for ch in chans]
        return xqs, ([t * t for t in xqs] if want_sq else None), clipped

    def _conv_weights(self, mat: torch.Tensor, k: int, kk: int, ksize) -> torch.Tensor:
        """Row tile k of the (G, K, rpt, C) tile matrices as conv weights (G·C, cpt_k,
        *kernel), channels-last."""
        g = self.geom
        r0, r1 = g.row_cuts[k]
        cpt = (r1 - r0) // kk
        w = mat[:, k, :r1 - r0].reshape(g.groups, cpt, *ksize, g.C)
        perm = (0, w.ndim - 1, 1, *range(2, w.ndim - 1))
        return w.permute(perm).reshape(g.groups * g.C, cpt, *ksize).to(self.dtype).contiguous(
            memory_format=torch.channels_last)

    def _conv_analog(self, xq, x2, st, conv, kk, k):
        """Signal and read-noise variance of row tile k (its quantized input ``xq``, squared
        ``x2`` or None): one convolution of the tile's input channels each, channels-last
        (faster in oneDNN than grouped convolutions across tiles, or NCHW for few
        channels)."""
        g = self.geom
        args = dict(stride=conv["stride"], padding=conv["padding"],
                    dilation=conv["dilation"], groups=g.groups)
        cache = getattr(st, "_conv_cache", None)
        if cache is None:
            cache = {}
            st._conv_cache = cache
        vdt = self._conv_var_dtype(xq.device)
        keep = self._var_keeps_bf16(xq.device)  # the CPU ADC kernel reads bfloat16

        def weights(tag, i, mat):
            key = (tag, i, k)
            if key not in cache:
                w = self._conv_weights(mat, k, kk, conv["kernel_size"])
                cache[key] = w if tag == "s" else w.to(vdt)
            return cache[key]

        terms, vterms = self._terms(xq, x2, st)
        y = None
        for i, (inp, mat) in enumerate(terms):
            part = F.conv2d(inp, weights("s", i, mat), **args)
            y = part if y is None else y.add_(part)
        v = None
        for i, (inp, mat) in enumerate(vterms):
            part = F.conv2d(inp.to(vdt), weights("v", i, mat), **args)
            part = part if keep else part.to(self.dtype)
            v = part if v is None else v.add_(part)
        return (y.contiguous(memory_format=torch.channels_last),
                None if v is None else v.contiguous(memory_format=torch.channels_last))

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


class _ReadAhead:
    """The deterministic part of each physical tile's read at one time (drift, noise
    amplitudes: :meth:`CellModel.read_parts`), computed a few tiles ahead, in reading order
    (row tile k, then group u, then column tile m), on torch's threads. The random numbers
    are drawn by the caller in order, so the numbers do not depend on the thread count; an
    uncached tile is programmed once, its states passed on with its parts. Inactive (``take``
    returns None) on one thread or for an exact array."""

    def __init__(self, arr: TileArray, t_since: float, active: bool = True) -> None:
        g = arr.geom
        self.arr, self.t_since, self.M = arr, t_since, g.M
        self.keys = [(u, k, m) for k in range(g.K) for u in range(g.groups)
                     for m in range(g.M)]
        self.threads = min(torch.get_num_threads(), len(self.keys))
        self.pool = None
        if active and self.threads >= 2 and not arr.exact:
            arr._check_weights()
            self.pool = ThreadPoolExecutor(self.threads)
        self.pending: dict = {}
        self.next = 0
        self.taken = 0

    def _one(self, key):
        states = self.arr.tile_states(*key)
        return states, self.arr.cell.read_parts(states, self.t_since)

    def _submit(self) -> None:
        key = self.keys[self.next]
        self.pending[key] = self.pool.submit(self._one, key)
        self.next += 1

    def take(self, u: int, k: int) -> Callable[[int], tuple] | None:
        """A function of the column tile m giving (states, parts) of physical tile (u, k, m),
        in order (2 tiles per thread in flight: bounded memory); None when inactive."""
        if self.pool is None:
            return None

        def get(m: int):
            key = (u, k, m)
            while key not in self.pending:
                self._submit()
            out = self.pending.pop(key).result()
            self.taken += 1
            if self.taken % 32 == 0:
                # the workers' heaps keep what the reading thread freed (measured: +150 MiB
                # peak for VGG-11's 25088x4096 layer): hand it back as we go
                release_free_memory()
            while self.next < len(self.keys) and len(self.pending) < 2 * self.threads:
                self._submit()
            return out

        return get

    def close(self) -> None:
        if self.pool is not None:
            for f in self.pending.values():
                f.cancel()
            self.pending.clear()
            self.pool.shutdown(wait=True)
            self.pool = None

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b batched, b (a variance map kept in a compact type) converted one tile at a time
    to a's precision: the product is computed in a's precision."""
    if b.dtype == a.dtype:
        return torch.bmm(a, b)
    out = torch.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype, device=a.device)
    for i in range(a.shape[0]):
        torch.mm(a[i], b[i].to(a.dtype), out=out[i])
    return out


def _flat(t: torch.Tensor) -> np.ndarray:
    """The numpy view of a CPU tensor's storage from its first element on (strides are
    passed separately)."""
    n = t.untyped_storage().nbytes() // t.element_size()
    flat = t.as_strided((n - t.storage_offset(),), (1,), t.storage_offset())
    return (flat.view(torch.int16) if t.dtype == torch.bfloat16 else flat).numpy()


def _ir_attenuation(gp: np.ndarray, gn: np.ndarray, cfg: TileConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell IR-drop attenuation of every tile ((G, K, rows, C) conductances in S) for the
    card's bit-line topology (:func:`memsim.crossbar.irdrop.attenuation_differential`)."""
    from memsim.crossbar import irdrop

    r = cfg.wire_resistance_ohm
    ap, an = np.ones_like(gp), np.ones_like(gn)
    for u in range(gp.shape[0]):
        for k in range(gp.shape[1]):
            ap[u, k], an[u, k] = irdrop.attenuation_differential(gp[u, k], gn[u, k], r, r,
                                                                 cfg.bitline)
    return ap, an


def _ir_solve(gp: np.ndarray, gn: np.ndarray, vp: np.ndarray, vn: np.ndarray,
              cfg: TileConfig) -> np.ndarray:
    """Column currents (A) of one tile by the nodal solve of its bit-line topology, for the
    drives vp (G₊ rows) and vn (G₋ rows), (N, rows) volts, with y = vp·G₊ − vn·G₋ ideally."""
    from memsim.crossbar import irdrop

    r = cfg.wire_resistance_ohm
    if np.array_equal(vp, vn):
        return irdrop.solve_differential(gp, gn, vp, r, r, cfg.bitline)
    # different drives per polarity (an asymmetric cell): the network is linear, so the
    # column currents are the sum of the G₊ part (G₋ held) and the G₋ part
    zero = np.zeros_like(gn)
    return (irdrop.solve_differential(gp, zero, vp, r, r, cfg.bitline)
            - irdrop.solve_differential(zero, gn, vn, r, r, cfg.bitline))


_BF16: dict[str, bool] = {}
#: Work buffers retained per thread up to this size (bytes each): the quantized inputs of a
#: convolution are written into them instead of fresh memory, whose page faults cost as
#: much as the quantization on a virtual machine (ResNet-32, batch 256).
SCRATCH_MAX_BYTES = 64 * 2**20
_scratch_local = threading.local()


def _scratch(tag: str, n: int, dtype: torch.dtype) -> torch.Tensor:
    """n elements of this thread's reused CPU buffer ``tag`` (fresh memory when over
    :data:`SCRATCH_MAX_BYTES`)."""
    size = n * dtype.itemsize
    if size > SCRATCH_MAX_BYTES:
        return torch.empty(n, dtype=dtype)
    bufs = getattr(_scratch_local, "bufs", None)
    if bufs is None:
        bufs = _scratch_local.bufs = {}
    buf = bufs.get((tag, dtype))
    if buf is None or buf.numel() < n:
        buf = bufs[(tag, dtype)] = torch.empty(n, dtype=dtype)
    return buf[:n]


def _native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively (not emulated) on ``device``."""
    if device.type not in _BF16:
        if device.type == "cuda":
            _BF16["cuda"] = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        elif device.type == "cpu":
            _BF16["cpu"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        else:
            _BF16[device.type] = False
    return _BF16[device.type]


def _conv_out_shape(spatial, conv) -> tuple[int, ...]:
    out = []
    for i, n in enumerate(spatial):
        k, s = conv["kernel_size"][i], conv["stride"][i]
        p, d = conv["padding"][i], conv["dilation"][i]
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)

