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
   programmed, once per batch (1/f noise slower than 1/noise_window); the faster 1/f noise
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
    sp: np.ndarray  # (r, c) per-MVM noise variance of the positive array
    sn: np.ndarray  # (r, c) per-MVM noise variance of the negative array
    gp_raw: np.ndarray | None = None  # siemens, for the exact IR-drop solve
    gn_raw: np.ndarray | None = None


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
            x = self._dac(rng.uniform(-1.0, 1.0, size=(k, self.shape_[0])), rng)
            measured = self._convert(x, read, rng)[0].astype(np.float64)
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

    def _read(self, t_since: float, rng: np.random.Generator) -> _Read:
        """Conductances at ``t_since`` (s since programming), normalised, with noise maps.

        When the device model splits a read into a deterministic mean and Gaussian noise
        (``Device.mvm_read_parts``: PCM drift with 1/f noise), the mean and σ maps are
        computed once per time since programming and cached; each batch then only draws the
        slow noise of every device (one fused pass). Otherwise the device reads directly.
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
            mean, slow, fast_p, fast_n, att = cached
            out = np.empty((2, *self.shape_), dtype=dt)
            f = np.asarray(self.factors, dtype=np.float64)
            seed = draw_seed(rng)
            _k.slow_read_kernel(mean, slow, f, 1.0 / u, seed, att, 0, 2, out)
            raw = out * u if cfg.ir_drop == "exact" else None
            return _Read(gp=out[0], gn=out[1], sp=fast_p, sn=fast_n,
                         gp_raw=None if raw is None else raw[0].astype(np.float64),
                         gn_raw=None if raw is None else raw[1].astype(np.float64))
        dev = self.device
        gp = gn = sp = sn = 0.0
        for f, state in zip(self.factors, self.states_, strict=True):
            g, s = dev.read_for_mvm(state, t_since, rng, window_s=cfg.noise_window_s)
            gp = gp + f * g[0]
            gn = gn + f * g[1]
            sp = sp + (f * s[0]) ** 2
            sn = sn + (f * s[1]) ** 2
        raw_p, raw_n = gp, gn
        if cfg.ir_drop == "approx":
            att = self._attenuation_for(t_since, gp, gn)
            gp = gp * att[0]
            gn = gn * att[1]
        return _Read(gp=(gp / u).astype(dt), gn=(gn / u).astype(dt),
                     sp=(sp / u**2).astype(dt), sn=(sn / u**2).astype(dt),
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
        """Cached per time: (mean, slow σ) per device, fast variance maps, attenuation."""
        parts = [self.device.mvm_read_parts(s, t_since, window_s=self.config.noise_window_s)
                 for s in self.states_]
        if any(p is None for p in parts):
            return False
        mean = np.stack([p[0] for p in parts])  # (instances, 2, r, c)
        slow = np.stack([p[1] for p in parts])
        f = np.asarray(self.factors)[:, None, None, None]
        fast = ((f * np.stack([p[2] for p in parts])) ** 2).sum(0) / self.g_unit_s**2
        dt = self.dtype
        if self.config.ir_drop == "approx":
            g_sum = (f * mean).sum(0)
            att = np.stack(self._attenuation_for(t_since, g_sum[0], g_sum[1]))
        else:
            att = np.empty((0, 0, 0))
        return (np.ascontiguousarray(mean), np.ascontiguousarray(slow),
                fast[0].astype(dt), fast[1].astype(dt), att)

    def _readout(self, read: _Read, rng: np.random.Generator) -> np.ndarray:
        """Drift-compensation readout: all-ones input on both arrays, per column."""
        total = read.gp.sum(0, dtype=np.float64) + read.gn.sum(0, dtype=np.float64)
        sd = np.sqrt(read.sp.sum(0, dtype=np.float64) + read.sn.sum(0, dtype=np.float64))
        if np.any(sd > 0):
            total = total + sd * rng.standard_normal(total.shape)
        return total

    def _dac(self, x: np.ndarray, rng: np.random.Generator,
             inv_scale: np.ndarray | None = None) -> np.ndarray:
        """Scale (per sample), clip to [−1, 1], quantize to the DAC's signed steps."""
        cfg = self.config
        if inv_scale is None:
            inv_scale = np.ones(x.shape[0])
        n = float(2 ** (cfg.dac_bits - 1) - 1) if cfg.dac_bits is not None else 0.0
        out = np.empty(x.shape, dtype=self.dtype)
        _k.dac_kernel(np.ascontiguousarray(x), np.ascontiguousarray(inv_scale, np.float64),
                      n, out)
        if cfg.dac_noise:
            out += (cfg.dac_noise * rng.standard_normal(out.shape)).astype(self.dtype)
        return out

    def _analog(self, x: np.ndarray, g: np.ndarray, s: np.ndarray,
                raw: tuple | None) -> tuple[np.ndarray, np.ndarray | None]:
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
            y = x @ g
        var = np.square(x) @ s if s.any() else None
        return y, var

    def _adc(self, y: np.ndarray, var: np.ndarray | None,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Read noise + ADC: values in normalised units and saturations per sample."""
        cfg = self.config
        bits = cfg.adc_bits
        lsb = cfg.output_range / 2 ** (bits - 1) if bits is not None else 1.0
        sigma = cfg.adc_noise
        noisy = sigma > 0 or var is not None
        dt = self.dtype
        seed = draw_seed(rng) if noisy else np.uint64(0)
        out = np.empty(y.shape, dtype=dt)
        sat = np.empty(y.shape[0], dtype=np.int64)
        var = var if var is not None else np.empty((0, 0), dt)
        gain = self.adc_gain_.astype(dt)
        offset = self.adc_offset_.astype(dt)
        _k.adc_kernel(y, var, noisy, seed, 0, gain, offset, lsb, sigma * sigma, bits or 0,
                      cfg.adc_mode == "floor", out, sat)
        self.saturation_.conversions += y.size
        self.saturation_.saturated += int(sat.sum())
        return out, sat > 0

    def _convert(self, x: np.ndarray, read: _Read, rng: np.random.Generator):
        """DAC output → analog → ADC, for 1 or 4 phases; returns (y, saturated per sample)."""
        if self.config.encoding == "pwm_4phase":
            xp = np.maximum(x, 0)
            xn = np.maximum(-x, 0)
            y = None
            sat = np.zeros(x.shape[0], dtype=bool)
            exact = read.gp_raw is not None
            rp = ((read.gp_raw, 1),) if exact else None
            rn = ((read.gn_raw, 1),) if exact else None
            for xs, g, s, raw, sign in ((xp, read.gp, read.sp, rp, 1),
                                        (xp, read.gn, read.sn, rn, -1),
                                        (xn, read.gp, read.sp, rp, -1),
                                        (xn, read.gn, read.sn, rn, 1)):
                v, m = self._adc(*self._analog(xs, g, s, raw), rng)
                y = sign * v if y is None else y + sign * v
                sat |= m
            return y, sat
        raw = None
        if read.gp_raw is not None:  # the two arrays are separate networks; currents subtract
            raw = ((read.gp_raw, 1), (read.gn_raw, -1))
        return self._adc(*self._analog(x, read.gp - read.gn, read.sp + read.sn, raw), rng)

    def matvec(self, x: Any, t: float, rng: np.random.Generator) -> np.ndarray:
        """Y = X @ W through the tile at time ``t`` (s; the tile was programmed at ``at_s``).

        X has shape (batch, rows') or (rows',); returns (batch, cols') or (cols',).
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
        sx = np.empty(x.shape[0])
        bad, clipped = _k.input_scan_kernel(
            x, cfg.input_range if cfg.input_scaling == "fixed" else 0.0, sx)
        if bad:
            raise ValueError(f"tile {cfg.name!r}: input contains {bad} NaN or infinite "
                             "value(s)")
        t = check_time(t)
        if t < self.programmed_at_s_:
            raise ValueError(f"tile {cfg.name!r}: t = {t:g} s is before the tile was programmed "
                             f"(at {self.programmed_at_s_:g} s)")
        t_since = t - self.programmed_at_s_
        self.saturation_ = Saturation()
        read = self._read(t_since, rng)

        self.saturation_.inputs_clipped = int(clipped)
        y, sat = self._convert(self._dac(x, rng, 1.0 / sx), read, rng)
        if cfg.input_scaling == "clip_retry":
            todo = np.flatnonzero(sat)
            retried = np.zeros(x.shape[0], dtype=bool)
            for _ in range(cfg.max_retries):
                if todo.size == 0:
                    break
                retried[todo] = True
                sx[todo] *= 2.0
                y_r, sat_r = self._convert(self._dac(x[todo], rng, 1.0 / sx[todo]), read, rng)
                y[todo] = y_r
                todo = todo[sat_r]
            self.saturation_.samples_retried = int(retried.sum())
            sat = np.zeros_like(sat)
            sat[todo] = True
        self.saturation_.samples_saturated = int(sat.sum())

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
        out = np.empty(y.shape, dtype=np.float64)
        _k.digital_kernel(y, (a * col).astype(np.float64), (b * col).astype(np.float64),
                          sx.astype(np.float64), out)
        return out[0] if one else out
