"""A tile: DAC → crossbar of differential unit cells → ADC → local digital unit.

Physics and numerics (normalised units as in :mod:`memsim.crossbar.config`):

1. Input scaling and DAC. x = X / s_x with s_x per sample (abs-max) or fixed; the DAC
   quantizes x to n = 2^(b−1) − 1 signed steps, x_q = round(n x)/n, plus optional input
   noise. With pulse-width encoding the step is a pulse-length unit; with amplitude
   encoding a voltage step; the arithmetic is the same.
2. Crossbar. Weights W are scaled per column (or per tile) to w in [−1, 1] and mapped to a
   differential pair per polarity: G± = g_min + max(±w, 0)(g_max − g_min). With two devices
   per polarity and significance F the first device carries (F+1)/F of the weight and the
   second programs the residual error of the first (program-and-correct); F = 1 splits it
   equally. The column output is y_j = Σ_i x_i (G+_ij − G−_ij)/g_unit, g_unit the conductance
   of weight 1. Conductances come from the device model at the time since this tile was
   programmed, once per read time (1/f noise slower than 1/noise_window, kept for later
   batches at the same time, as aihwkit's ``drift_weights`` does); the faster 1/f noise
   is drawn per MVM and is exact in distribution without rows×cols draws per vector: the
   noise of column j is Gaussian with variance Σ_i σ_ij² x_i², one extra product (x²)·(σ²).
3. ADC. v = y(1 + γ_j) + δ_j + noise, code = round(v/LSB) or floor(v/LSB) (CCO counting),
   clipped to the signed code range (saturations are counted); LSB = output_range/2^(b−1).
   In 4-phase mode each of the four sign combinations (x+G+, x+G−, x−G+, x−G−) is a separate
   conversion, combined digitally.
4. Digital unit. A per-column affine correction y ≈ a_j·code·LSB + b_j fitted by least
   squares on reference MVMs at calibration time; drift compensation multiplies by
   α = reference readout at calibration / readout now (global or per column), the readout
   being the all-ones-input current of both arrays; then weight and input scales are undone.

IR drop: "approx" scales every cell by an input-independent attenuation computed once per
read from the nodal equations (:mod:`memsim.crossbar.irdrop`); "exact" solves the resistive
network for every input vector (slow; a reference).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from memsim._random import draw_seed
from memsim.crossbar import _kernels as _k
from memsim.crossbar.config import TileConfig
from memsim.devices.base import Device, DeviceState, check_generator, check_time

__all__ = ["Saturation", "Tile"]


@dataclass
class Saturation:
    """ADC saturation report of the last matvec (counted, never silent)."""

    conversions: int = 0
    saturated: int = 0
    samples_saturated: int = 0
    samples_retried: int = 0
    inputs_clipped: int = 0

    @property
    def rate(self) -> float:
        return self.saturated / self.conversions if self.conversions else 0.0


@dataclass
class _Read:
    """Conductances of one read, in normalised units (weight 1 = 1.0), float arrays."""

    gp: np.ndarray  # (r, c) positive array
    gn: np.ndarray  # (r, c) negative array
    w: np.ndarray  # (r, c) gp − gn, the differential weights the 1-phase product uses
    sp: np.ndarray  # (r, c) per-MVM noise variance of the positive array
    sn: np.ndarray  # (r, c) per-MVM noise variance of the negative array
    s: np.ndarray | None  # sp + sn, or None when there is no per-MVM read noise
    readout: np.ndarray  # (c,) float64 column sums of gp + gn (drift-compensation readout)
    readout_sd: np.ndarray  # (c,) float64 σ of that readout's per-MVM noise
    gp_raw: np.ndarray | None = None  # siemens, for the exact IR-drop solve
    gn_raw: np.ndarray | None = None


_NO_ROWS = np.empty((0, 0), dtype=np.float32)
_NO_COLS = np.empty(0)

# Scratch arrays of the hot path (DAC outputs, column currents, variances), kept per thread
# between calls: fresh multi-MiB arrays would cost a page fault per 4 KiB on every call.
_scratch = threading.local()
_SCRATCH_MAX_BYTES = 64 * 2**20  # larger arrays are allocated per call


def _buffer(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array for internal use only; valid until the next request of
    ``name`` in this thread."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    if n > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype=dtype)
    store = _scratch.__dict__.setdefault("buffers", {})
    buf = store.get(name)
    if buf is None or buf.nbytes < n:
        buf = np.empty(max(n, 64), dtype=np.uint8)
        store[name] = buf
    return buf[:n].view(dtype).reshape(shape)


class Tile:
    """One crossbar tile with its converters and digital unit.

    Attributes set by :meth:`program` (scikit-learn style, trailing underscore):
        shape_, weight_scale_, programmed_at_s_, states_, adc_gain_, adc_offset_,
        affine_ (a, b per column), reference_readout_; by :meth:`matvec`: saturation_.
    """

    def __init__(self, config: TileConfig, device: Device) -> None:
        self.config = config
        self.device = device
        n_card = device.devices_per_polarity
        if config.devices_per_polarity % n_card:
            raise ValueError(
                f"tile {config.name!r} has {config.devices_per_polarity} device(s) per "
                f"polarity but device {device.name!r} models {n_card} devices at once; "
                f"{config.devices_per_polarity} is not a multiple of {n_card}"
            )
        self.instances = config.devices_per_polarity // n_card
        if self.instances == 1 and config.significance != 1.0:
            raise ValueError(
                f"tile {config.name!r}: significance = {config.significance:g} needs two "
                f"independently programmed devices per polarity (device {device.name!r} "
                f"models {n_card} per card instance)"
            )
        f = config.significance
        self.factors = (1.0,) if self.instances == 1 else (f, 1.0)
        self.g_range_s = device.g_max_s - device.g_min_s
        self.g_unit_s = sum(self.factors) * self.g_range_s
        self.dtype = np.float64 if config.dtype == "float64" else np.float32
        self.saturation_ = Saturation()

    def __repr__(self) -> str:
        c = self.config
        return (f"Tile({c.name!r}, device={self.device.name!r}, {c.rows}x{c.cols}, "
                f"DAC {c.dac_bits} b, ADC {c.adc_bits} b {c.adc_mode}, {c.encoding})")

    # -- programming ------------------------------------------------------------------------
    def program(self, weights: Any, rng: np.random.Generator, *, at_s: float = 0.0) -> Tile:
        """Program ``weights`` (rows', cols') <= (rows, cols) at time ``at_s`` (s)."""
        rng = check_generator(rng)
        cfg = self.config
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"tile {cfg.name!r}: weights must be a 2-D matrix, got shape "
                             f"{w.shape}")
        if w.shape[0] > cfg.rows or w.shape[1] > cfg.cols or 0 in w.shape:
            raise ValueError(f"tile {cfg.name!r}: a {w.shape[0]}x{w.shape[1]} matrix does not "
                             f"fit a {cfg.rows}x{cfg.cols} crossbar")
        if not np.all(np.isfinite(w)):
            n = int(np.count_nonzero(~np.isfinite(w)))
            raise ValueError(f"tile {cfg.name!r}: weights contain {n} NaN or infinite value(s)")
        at_s = check_time(at_s)
        if cfg.weight_scaling == "per_column":
            scale = np.max(np.abs(w), axis=0)
        else:
            scale = np.full(w.shape[1], np.max(np.abs(w)))
        scale = np.where(scale > 0, scale, 1.0)
        u = w / scale
        u = np.stack([np.maximum(u, 0.0), np.maximum(-u, 0.0)])  # (2, r, c)
        dev = self.device
        states: list[DeviceState] = []
        if self.instances == 1 or cfg.significance == 1.0:
            for _ in range(self.instances):
                states.append(dev.program(dev.g_min_s + u * self.g_range_s, rng))
        else:
            f = cfg.significance
            u_msp = np.minimum(1.0, u * (f + 1.0) / f)
            msp = dev.program(dev.g_min_s + u_msp * self.g_range_s, rng)
            u_got = (msp.g_prog_s - dev.g_min_s) / self.g_range_s
            u_lsp = np.clip(u * (f + 1.0) - f * u_got, 0.0, 1.0)
            states = [msp, dev.program(dev.g_min_s + u_lsp * self.g_range_s, rng)]
        self.states_ = states
        self._attenuation: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._reads: dict[float, _Read] = {}
        self._parts: dict[float, Any] = {}
        self.shape_ = w.shape
        self.weights_ = w
        self.weight_scale_ = scale
        self.programmed_at_s_ = at_s
        c = w.shape[1]
        self.adc_gain_ = cfg.adc_gain_sigma * rng.standard_normal(c) if cfg.adc_gain_sigma \
            else np.zeros(c)
        self.adc_offset_ = cfg.adc_offset_sigma * rng.standard_normal(c) if \
            cfg.adc_offset_sigma else np.zeros(c)
        self.affine_ = (np.ones(c), np.zeros(c))
        self.reference_readout_ = None
        if cfg.affine_calibration or cfg.drift_compensation != "none":
            self._calibrate(rng)
        return self

    def _calibrate(self, rng: np.random.Generator) -> None:
        """Reference MVMs at calibration time: affine fit and drift-compensation readout."""
        cfg = self.config
        t = cfg.calibration_time_s
        read = self._read(t, rng)
        if cfg.drift_compensation != "none":
            self.reference_readout_ = self._readout(read, rng)
        if cfg.affine_calibration:
            k = cfg.calibration_vectors
            seeds = rng.integers(0, 2**64, size=5, dtype=np.uint64)
            x, x2, _ = self._dac(rng.uniform(-1.0, 1.0, size=(k, self.shape_[0])),
                                 np.ones(k), True, seeds[4], read.s is not None)
            measured = np.zeros((k, self.shape_[1]), dtype=self.dtype)
            self._convert(x, x2, read, seeds, None, measured)
            measured = measured.astype(np.float64)
            ideal = x.astype(np.float64) @ (self.weights_ / self.weight_scale_)
            a = np.empty(self.shape_[1])
            b = np.empty(self.shape_[1])
            mm, mi = measured.mean(0), ideal.mean(0)
            dm = measured - mm
            var = (dm * dm).sum(0)
            cov = (dm * (ideal - mi)).sum(0)
            ok = var > 0
            a[ok] = cov[ok] / var[ok]
            a[~ok] = 1.0
            b[:] = mi - a * mm
            self.affine_ = (a, b)

    # -- reading ------------------------------------------------------------------------------
    def _require_programmed(self) -> None:
        if not hasattr(self, "states_"):
            raise RuntimeError(f"tile {self.config.name!r} is not programmed: call program()")

    def _read(self, t_since: float, rng: np.random.Generator, *, redraw: bool = False
              ) -> _Read:
        """The tile's conductances at ``t_since`` (s since programming), normalised, with
        their per-MVM noise maps.

        The conductances include the read noise slower than the card's noise window (the
        1/f noise below 1/window): a realization of the devices' state at that time. It is
        drawn at the first read at a time and kept for later reads at the same time, as
        reads within one noise window see the same slow noise (aihwkit's ``drift_weights``
        likewise draws it once per inference time); ``redraw`` draws a new one. Faster noise
        is drawn per MVM in :meth:`matvec`.
        """
        read = None if redraw else self._reads.get(t_since)
        if read is None:
            read = self._draw_read(t_since, rng)
            self._reads.pop(t_since, None)
            if len(self._reads) >= 2:  # a few times at most: 3 arrays of the tile each
                self._reads.pop(next(iter(self._reads)))
            self._reads[t_since] = read
        return read

    def _draw_read(self, t_since: float, rng: np.random.Generator) -> _Read:
        """Draw the conductances at ``t_since`` (see :meth:`_read`).

        When the device model splits a read into a deterministic mean and Gaussian noise
        (``Device.mvm_read_parts``: PCM drift with 1/f noise), the mean and σ maps are
        computed once per time since programming and cached, and the slow noise of every
        device is drawn in one fused pass. Otherwise the device reads directly.
        """
        cfg = self.config
        u = self.g_unit_s
        dt = self.dtype
        cached = self._parts.get(t_since)
        if cached is None:
            cached = self._read_parts(t_since)
            if len(self._parts) >= 8:
                self._parts.pop(next(iter(self._parts)))
            self._parts[t_since] = cached
        if cached is not False:
            mean, slow, sp, sn, s, readout_sd = cached
            r, c = self.shape_
            gp, gn, w = (np.empty((r, c), dtype=dt) for _ in range(3))
            seed = draw_seed(rng)

            readout = np.zeros(c)
            _k.slow_read_kernel(mean, slow, seed, gp, gn, w, readout)
            exact = cfg.ir_drop == "exact"
            return _Read(gp=gp, gn=gn, w=w, sp=sp, sn=sn, s=s, readout=readout,
                         readout_sd=readout_sd,
                         gp_raw=gp.astype(np.float64) * u if exact else None,
                         gn_raw=gn.astype(np.float64) * u if exact else None)
        dev = self.device
        gp = gn = sp = sn = 0.0
        for f, state in zip(self.factors, self.states_, strict=True):
            g, sd = dev.read_for_mvm(state, t_since, rng, window_s=cfg.noise_window_s)
            gp = gp + f * g[0]
            gn = gn + f * g[1]
            sp = sp + (f * sd[0]) ** 2
            sn = sn + (f * sd[1]) ** 2
        raw_p, raw_n = gp, gn
        if cfg.ir_drop == "approx":
            att = self._attenuation_for(t_since, gp, gn)
            gp = gp * att[0]
            gn = gn * att[1]
        gp, gn = (gp / u).astype(dt), (gn / u).astype(dt)
        sp, sn = (sp / u**2).astype(dt), (sn / u**2).astype(dt)
        s = sp + sn
        return _Read(gp=gp, gn=gn, w=gp - gn, sp=sp, sn=sn, s=s if s.any() else None,
                     readout=gp.sum(0, dtype=np.float64) + gn.sum(0, dtype=np.float64),
                     readout_sd=np.sqrt(s.sum(0, dtype=np.float64)),
                     gp_raw=raw_p if cfg.ir_drop == "exact" else None,
                     gn_raw=raw_n if cfg.ir_drop == "exact" else None)

    def _attenuation_for(self, t_since: float, gp: np.ndarray, gn: np.ndarray):
        """Approximate IR drop: an input-independent attenuation per array, computed from the
        first conductances seen at each time since programming and kept for later batches."""
        att = self._attenuation.get(t_since)
        if att is None:
            from memsim.crossbar.irdrop import attenuation

            r = self.config.wire_resistance_ohm
            att = (attenuation(gp, r, r), attenuation(gn, r, r))
            if len(self._attenuation) >= 16:
                self._attenuation.pop(next(iter(self._attenuation)))
            self._attenuation[t_since] = att
        return att

    def _read_parts(self, t_since: float):
        """Cached per time: per-device (mean, slow σ) scaled to normalised units (with the
        cell's significance factors and the IR-drop attenuation), the fast variance maps and
        the readout noise σ; False when the device model cannot be split that way."""
        parts = [self.device.mvm_read_parts(s, t_since, window_s=self.config.noise_window_s)
                 for s in self.states_]
        if any(p is None for p in parts):
            return False
        f = np.asarray(self.factors)[:, None, None, None]
        mean = np.stack([p[0] for p in parts])  # (instances, 2, r, c), siemens
        slow = np.stack([p[1] for p in parts])
        fast = ((f * np.stack([p[2] for p in parts])) ** 2).sum(0) / self.g_unit_s**2
        scale = f / self.g_unit_s
        if self.config.ir_drop == "approx":
            g_sum = (f * mean).sum(0)
            scale = scale * np.stack(self._attenuation_for(t_since, g_sum[0], g_sum[1]))
        dt = self.dtype
        sp, sn = fast[0].astype(dt), fast[1].astype(dt)
        s = sp + sn
        return (np.ascontiguousarray(mean * scale, dtype=dt),
                np.ascontiguousarray(slow * scale, dtype=dt),
                sp, sn, s if s.any() else None, np.sqrt(s.sum(0, dtype=np.float64)))

    def _readout(self, read: _Read, rng: np.random.Generator) -> np.ndarray:
        """Drift-compensation readout: all-ones input on both arrays, per column."""
        total = read.readout
        if np.any(read.readout_sd > 0):
            total = total + read.readout_sd * rng.standard_normal(total.shape)
        return total

    def _dac(self, x: np.ndarray, scale: np.ndarray, given: bool, seed: np.uint64,
             want_sq: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scale, clip to [−1, 1], quantize to the DAC's signed steps, add input noise.

        ``scale`` (per row) is used if ``given``, else filled from the card's input scaling.
        Returns (x_q, x_q² or empty, counts of non-finite and of clipped entries)."""
        cfg = self.config
        n = float(2 ** (cfg.dac_bits - 1) - 1) if cfg.dac_bits is not None else 0.0
        if given:
            mode = -1.0
        else:
            mode = cfg.input_range if cfg.input_scaling == "fixed" else 0.0
        xq = _buffer("xq", x.shape, self.dtype)
        x2 = _buffer("x2", x.shape, self.dtype) if want_sq else _NO_ROWS.astype(self.dtype)
        counts = np.zeros(2, dtype=np.int64)
        _k.scan_dac_kernel(x, mode, n, xq, x2, scale, counts)
        if cfg.dac_noise:
            _k.input_noise_kernel(xq, x2, cfg.dac_noise, seed, 0)
        return xq, x2, counts

    def _analog(self, x: np.ndarray, x2: np.ndarray | None, g: np.ndarray,
                s: np.ndarray | None, raw: tuple | None):
        """Column outputs x @ g and their per-MVM read-noise variance (x²) @ s.

        ``raw``: for the exact IR-drop mode, ((G_siemens, sign), ...) of the arrays whose
        column currents are solved from the nodal equations and added with their signs.
        """
        if raw is not None:  # exact IR drop: nodal solve for every input vector
            from memsim.crossbar.irdrop import solve_exact

            r = self.config.wire_resistance_ohm
            v = x.astype(np.float64) * self.config.read_voltage_v
            y = sum(sign * solve_exact(gr, v, r, r) for gr, sign in raw)
            y = (y / (self.config.read_voltage_v * self.g_unit_s)).astype(self.dtype)
        else:
            y = np.matmul(x, g, out=_buffer("y", (x.shape[0], g.shape[1]), self.dtype))
        if s is None:
            return y, _NO_ROWS.astype(self.dtype)
        return y, np.matmul(x2, s, out=_buffer("var", (x2.shape[0], s.shape[1]), self.dtype))

    def _convert(self, xq: np.ndarray, x2: np.ndarray, read: _Read, seeds: np.ndarray,
                 digital: tuple | None, out: np.ndarray) -> np.ndarray:
        """DAC output → analog → ADC (→ digital unit), for 1 or 4 phases.

        ``digital`` = (col_mul, col_add, row_scale): out receives the digital unit's output;
        None: out (zeros) receives the ADC values in normalised units (summed over the four
        phases). ``seeds``: one per phase.
        Returns the saturated conversions per row.
        """
        cfg = self.config
        bits = cfg.adc_bits
        lsb = cfg.output_range / 2 ** (bits - 1) if bits is not None else 1.0
        sigma = cfg.adc_noise
        dt = self.dtype
        gain1 = (1.0 + self.adc_gain_).astype(dt)
        gain1_sq = gain1 * gain1
        offset = self.adc_offset_.astype(dt)
        sat = np.zeros(xq.shape[0], dtype=np.int64)
        floor = cfg.adc_mode == "floor"

        def adc(y, var, seed, sign, mul, add, scale, dest):
            noisy = sigma > 0 or var.shape[0] > 0
            _k.adc_kernel(y, var, noisy, seed, 0, gain1, gain1_sq, offset, lsb,
                          sigma * sigma, bits or 0, floor, sign, mul, add, scale, dest, sat)

        if cfg.encoding != "pwm_4phase":
            raw = None
            if read.gp_raw is not None:  # separate networks; the currents subtract
                raw = ((read.gp_raw, 1), (read.gn_raw, -1))
            y, var = self._analog(xq, x2, read.w, read.s, raw)
            if digital is None:
                adc(y, var, seeds[0], 1.0, _NO_COLS, _NO_COLS, _NO_COLS, out)
            else:
                adc(y, var, seeds[0], 1.0, *digital, out)
            return sat
        xp = np.maximum(xq, 0)
        xn = np.maximum(-xq, 0)
        noisy = read.s is not None
        xp2 = xp * xp if noisy else None
        xn2 = xn * xn if noisy else None
        exact = read.gp_raw is not None
        rp = ((read.gp_raw, 1),) if exact else None
        rn = ((read.gn_raw, 1),) if exact else None
        acc = out if digital is None else np.zeros((xq.shape[0], read.gp.shape[1]), dtype=dt)
        sp = read.sp if noisy else None
        sn = read.sn if noisy else None
        for k, (xs, xs2, g, s, raw, sign) in enumerate((
                (xp, xp2, read.gp, sp, rp, 1.0), (xp, xp2, read.gn, sn, rn, -1.0),
                (xn, xn2, read.gp, sp, rp, -1.0), (xn, xn2, read.gn, sn, rn, 1.0))):
            y, var = self._analog(xs, xs2, g, s, raw)
            adc(y, var, seeds[k], sign, _NO_COLS, _NO_COLS, _NO_COLS, acc)
        if digital is not None:
            _k.digital_kernel(acc, *digital, out)
        return sat

    def matvec(self, x: Any, t: float, rng: np.random.Generator, *,
               redraw: bool = False) -> np.ndarray:
        """Y = X @ W through the tile at time ``t`` (s; the tile was programmed at ``at_s``).

        X has shape (batch, rows') or (rows',); returns (batch, cols') or (cols',), float64.
        Every MVM draws its own fast read noise and converter noise. The read noise slower
        than the card's noise window is part of the devices' state at ``t``: drawn at the
        first call at ``t`` and shared by later calls at the same ``t`` (``redraw=True``
        draws a new realization).
        """
        self._require_programmed()
        rng = check_generator(rng)
        cfg = self.config
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        one = x.ndim == 1
        if one:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.shape_[0]:
            raise ValueError(f"tile {cfg.name!r}: input of shape {np.shape(x)} does not match "
                             f"the {self.shape_[0]} programmed rows (expected (batch, "
                             f"{self.shape_[0]}))")
        x = np.ascontiguousarray(x)
        t = check_time(t)
        if t < self.programmed_at_s_:
            raise ValueError(f"tile {cfg.name!r}: t = {t:g} s is before the tile was programmed "
                             f"(at {self.programmed_at_s_:g} s)")
        t_since = t - self.programmed_at_s_
        read = self._read(t_since, rng, redraw=redraw)

        a, b = self.affine_
        alpha = 1.0
        if self.reference_readout_ is not None:
            now = self._readout(read, rng)
            ref = self.reference_readout_
            if cfg.drift_compensation == "global":
                alpha = ref.sum() / now.sum()
            else:
                alpha = np.where(now > 0, ref / np.where(now > 0, now, 1.0), 1.0)
        col = alpha * self.weight_scale_
        col_mul = np.ascontiguousarray(a * col, dtype=np.float64)
        col_add = np.ascontiguousarray(b * col, dtype=np.float64)
        retries = cfg.max_retries if cfg.input_scaling == "clip_retry" else 0
        seeds = rng.integers(0, 2**64, size=(retries + 1, 5), dtype=np.uint64)
        batch = x.shape[0]
        out = np.empty((batch, self.shape_[1]), dtype=np.float64)
        sx = np.empty(batch)
        want_sq = read.s is not None and cfg.encoding != "pwm_4phase"

        phases = 4 if cfg.encoding == "pwm_4phase" else 1
        cols = self.shape_[1]
        xq, x2, counts = self._dac(x, sx, False, seeds[0, 4], want_sq)
        if counts[0]:
            raise ValueError(f"tile {cfg.name!r}: input contains {counts[0]} NaN or infinite "
                             "value(s)")
        sat = self._convert(xq, x2, read, seeds[0], (col_mul, col_add, sx), out)
        conversions = sat.size * cols * phases
        saturated = int(sat.sum())
        todo = np.flatnonzero(sat)
        retried = np.zeros(sat.size, dtype=bool)
        for k in range(1, retries + 1):  # clip-aware scaling: halve the gain of saturated rows
            if todo.size == 0:
                break
            retried[todo] = True
            sx[todo] *= 2.0
            sub = sx[todo]
            xq, x2, _ = self._dac(x[todo], sub, True, seeds[k, 4], want_sq)
            part = np.empty((todo.size, cols))
            sat_r = self._convert(xq, x2, read, seeds[k], (col_mul, col_add, sub), part)
            out[todo] = part
            conversions += sat_r.size * cols * phases
            saturated += int(sat_r.sum())
            todo = todo[sat_r > 0]
        self.saturation_ = Saturation(
            conversions=conversions, saturated=saturated, samples_saturated=int(todo.size),
            samples_retried=int(retried.sum()), inputs_clipped=int(counts[1]))
        return out[0] if one else out
