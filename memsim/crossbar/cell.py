"""The unit cell: how a weight becomes conductances, and how the cell turns inputs into current.

**Programming.** A weight w in [−1, 1] is held by a differential pair per polarity:
G₊ = g_min + max(w, 0)·(g_max − g_min), G₋ likewise with −w, with 1 or 2 devices per
polarity. With two devices per polarity and significance F = 1 both carry the weight and
their currents add. With F > 1 (program-and-correct, as in multi-device PCM cells) the first
device pair is F times more significant: the cell reads (F·(G₁₊ − G₁₋) + (G₂₊ − G₂₋)) /
((F + 1)(g_max − g_min)); the first pair is programmed to u·(F + 1)/F, read back, and the
second pair programs the *signed* residual u·(F + 1) − F·u₁ on the polarity that corrects it
(an overshoot of the first pair is corrected on the second pair's opposite polarity), so the
error falls as F grows.

**Reading (I–V).** A device read at voltage v carries I = G·g(v). ``iv_model`` "linear":
g(v) = v; "sinh": g(v) = V₀ sinh(v/V₀), the sub-threshold conduction of amorphous PCM. A
read of reversed polarity carries ``read_asymmetry`` times the current of the forward read
(PCM's bipolar current asymmetry). In normalised units the drive of an input x in [−1, 1] is
i(x) = I(x·V_read)/I(V_read).

- amplitude encoding: the device sees x·V_read, drive i(x);
- PWM 1-phase: a pulse of amplitude ±V_read for a time ``|x|``: drive x for x ≥ 0 and
  ``read_asymmetry``·x for x < 0 (one amplitude: the I–V curvature cancels, the polarity
  asymmetry does not);
- PWM 4-phase: every phase at positive polarity: drive x, exact.

How the two polarities combine depends on ``read_polarity``: with "same" both see the
input's polarity and their currents are subtracted, y = i(x)·(G₊ − G₋); with "opposite"
(HERMES's 1-phase mode: a positive input reads G₊ at V− and G₋ at V+, a negative one the
reverse; Le Gallo et al., npj Unconv. Comput. 1, 11, 2024, Fig. 1) the G₋ devices are read
at the opposite polarity, so that their current subtracts by itself:
y = i(x)·G₊ + i(−x)·G₋. A symmetric linear cell gives y = x·(G₊ − G₋) in every case; an
asymmetric one adds a common-mode term ``((1 − a)/2)·|x|·(G₊ + G₋)`` in the "opposite" scheme,
which 4-phase operation (every device read at the one polarity V−, ibid. Fig. 1a) cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memsim.crossbar.config import TileConfig
from memsim.devices.base import Device, DeviceState
from memsim.errors import ConfigError

__all__ = ["CellModel", "CompactState"]


@dataclass
class CompactState:
    """A DeviceState kept in float32 (float64 for a float64 tile; int8 for stuck flags)
    between reads."""

    g_target_S: np.ndarray
    g_prog_S: np.ndarray
    stuck: np.ndarray | None
    extra: dict[str, np.ndarray]

    @classmethod
    def of(cls, s: DeviceState, *, keep64: bool = False) -> CompactState:
        dt = np.float64 if keep64 else np.float32
        extra = {k: (np.asarray(v) if np.asarray(v).dtype.kind in "iub" or v.ndim == 0
                     else np.asarray(v, dtype=dt)) for k, v in s.extra.items()}
        return cls(np.asarray(s.g_target_S, dtype=dt), np.asarray(s.g_prog_S, dtype=dt),
                   None if s.stuck is None else np.asarray(s.stuck, dtype=np.int8), extra)

    def expand(self) -> DeviceState:
        extra = {k: (v if v.dtype.kind in "iub" or v.ndim == 0 else v.astype(np.float64))
                 for k, v in self.extra.items()}
        return DeviceState(g_target_S=self.g_target_S.astype(np.float64),
                           g_prog_S=self.g_prog_S.astype(np.float64), stuck=self.stuck,
                           extra=extra)

    @property
    def nbytes(self) -> int:
        arrays = [self.g_target_S, self.g_prog_S, self.stuck, *self.extra.values()]
        return sum(a.nbytes for a in arrays if a is not None)


class CellModel:
    """Programming and I–V of the tile's unit cell (see the module docstring)."""

    def __init__(self, config: TileConfig, device: Device) -> None:
        self.config = config
        self.device = device
        n_card = device.devices_per_polarity
        if config.devices_per_polarity % n_card:
            raise ConfigError(
                f"tile {config.name!r} has {config.devices_per_polarity} device(s) per "
                f"polarity but device {device.name!r} models {n_card} devices at once; "
                f"{config.devices_per_polarity} is not a multiple of {n_card}")
        self.instances = config.devices_per_polarity // n_card
        if self.instances == 1 and config.significance != 1.0:
            raise ConfigError(
                f"tile {config.name!r}: significance = {config.significance:g} needs two "
                f"independently programmed devices per polarity (device {device.name!r} "
                f"models {n_card} per card instance)")
        f = config.significance
        self.factors = (1.0,) if self.instances == 1 else (f, 1.0)
        self.g_range_S = device.g_max_S - device.g_min_S
        self.g_unit_S = sum(self.factors) * self.g_range_S

    # -- programming ----------------------------------------------------------------------------
    def targets(self, u: np.ndarray) -> np.ndarray:
        """(2, ...) target conductances (S) of a polarity pair for normalised weights u."""
        dev = self.device
        pair = np.stack([np.maximum(u, 0.0), np.maximum(-u, 0.0)])
        return dev.g_min_S + np.minimum(pair, 1.0) * self.g_range_S

    def program(self, w: np.ndarray, rng: np.random.Generator, *, exact: bool = False
                ) -> list[CompactState]:
        """Program normalised weights w (any shape, in [−1, 1]); one state per device
        instance, each of shape ``(2, *w.shape)`` (polarity first)."""
        dev = self.device
        if exact:
            t = self.targets(w)
            return [CompactState.of(DeviceState(g_target_S=t, g_prog_S=t), keep64=True)
                    for _ in range(self.instances)]
        f = self.config.significance
        keep64 = self.config.dtype == "float64"  # float32 state for a float32 tile
        if self.instances == 1 or f == 1.0:
            return [CompactState.of(dev.program(self.targets(w), rng), keep64=keep64)
                    for _ in range(self.instances)]
        u_msp = np.clip(w * (f + 1.0) / f, -1.0, 1.0)
        msp = dev.program(self.targets(u_msp), rng)
        u_got = (msp.g_prog_S[0] - msp.g_prog_S[1]) / self.g_range_S
        residual = np.clip(w * (f + 1.0) - f * u_got, -1.0, 1.0)
        lsp = dev.program(self.targets(residual), rng)
        return [CompactState.of(msp, keep64=keep64), CompactState.of(lsp, keep64=keep64)]

    def effective_weights(self, states: list[CompactState]) -> np.ndarray:
        """Normalised weights the programmed cells hold right after programming."""
        w = 0.0
        for f, s in zip(self.factors, states, strict=True):
            w = w + f * (s.g_prog_S[0].astype(np.float64) - s.g_prog_S[1])
        return w / self.g_unit_S

    # -- reading ----------------------------------------------------------------------------
    def read_parts(self, states: list[CompactState], t: float) -> list | None:
        """The deterministic part of :meth:`read` (a function of the states and t only, no
        random numbers), one entry per device instance; None where the device reads
        otherwise. Computed ahead, on several threads, and passed to :meth:`read`."""
        window = self.config.noise_window_s
        out = []
        for cs in states:
            parts = self.device.mvm_read_parts(cs.expand(), t, window_s=window)
            if parts is None:
                return None
            out.append(parts)
        return out

    def read(self, states: list[CompactState], t: float, rng: np.random.Generator, *,
             exact: bool = False, parts: list | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(G₊, G₋, σ²₊, σ²₋) normalised (weight 1 = 1.0), at ``t`` s after programming:
        conductances with the slow read noise, and the variance of the per-MVM read noise
        of each polarity; each array has the shape of the programmed weights. ``parts``:
        :meth:`read_parts` of the same states and t (the same numbers, computed ahead)."""
        window = self.config.noise_window_s
        gp = gn = vp = vn = 0.0
        dev = self.device
        for i, (f, cs) in enumerate(zip(self.factors, states, strict=True)):
            if exact:
                g = cs.g_target_S.astype(np.float64)
                sd = np.zeros_like(g)
            else:
                state = cs.expand() if parts is None else None
                parts_i = parts[i] if parts is not None else dev.mvm_read_parts(
                    state, t, window_s=window)
                if parts_i is None:
                    g, sd = dev.read_for_mvm(state, t, rng, window_s=window)
                else:
                    mean, slow, sd = parts_i
                    g = mean
                    if np.any(slow):
                        z = rng.standard_normal(mean.shape, dtype=np.float32)
                        g = np.maximum(mean + slow * z, 0.0)
            gp = gp + f * g[0]
            gn = gn + f * g[1]
            vp = vp + (f * sd[0]) ** 2
            vn = vn + (f * sd[1]) ** 2
        u = self.g_unit_S
        zero = np.zeros(np.shape(gp))
        return (np.asarray(gp) / u, np.asarray(gn) / u,
                np.asarray(vp) / u**2 + zero, np.asarray(vn) / u**2 + zero)

    # -- I–V -------------------------------------------------------------------------------------
    def _drive(self, x: torch.Tensor) -> torch.Tensor:
        """Drive i(x) of a device for input x in [−1, 1] (see the module docstring)."""
        cfg = self.config
        a = cfg.read_asymmetry
        if cfg.encoding == "pwm_4phase":
            return x
        if cfg.encoding == "pwm_1phase" or cfg.iv_model == "linear":
            return x if a == 1.0 else torch.where(x < 0, x * a, x)
        v = cfg.read_voltage_v / cfg.iv_v0_v
        y = torch.sinh(x * v) / math.sinh(v)
        return y if a == 1.0 else torch.where(x < 0, y * a, y)

    def symmetric(self) -> bool:
        """True when both polarities see the same drive function (one weight matrix)."""
        cfg = self.config
        if cfg.encoding == "pwm_4phase" or cfg.read_polarity == "same":
            return True
        linear = cfg.encoding == "pwm_1phase" or cfg.iv_model == "linear"
        return linear and cfg.read_asymmetry == 1.0

    def identity(self) -> bool:
        """True when the drive is the input itself."""
        cfg = self.config
        if cfg.encoding == "pwm_4phase":
            return True
        linear = cfg.encoding == "pwm_1phase" or cfg.iv_model == "linear"
        return linear and cfg.read_asymmetry == 1.0

    def needs_polarities(self, cfg: TileConfig) -> bool:
        return not self.symmetric() or (cfg.encoding == "pwm_4phase"
                                        and cfg.phase_conversion == "separate")

    def polarity_drives(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d₊, d₋) with y = d₊·G₊ − d₋·G₋."""
        d = self._drive(x)
        if self.symmetric():
            return d, d
        return d, -self._drive(-x)

    def polarity_inputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Numpy (d₊, d₋) for the exact IR-drop solve."""
        dp, dn = self.polarity_drives(torch.from_numpy(np.asarray(x, dtype=np.float64)))
        return dp.numpy(), dn.numpy()

    def signal_terms(self, x: torch.Tensor, st: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(input, matrix) pairs whose products sum to the column outputs."""
        if self.identity():
            return [(x, st.w)]
        if self.symmetric():
            return [(self._drive(x), st.w)]
        dp, dn = self.polarity_drives(x)
        return [(dp, st.gp), (-dn, st.gn)]

    def variance_terms(self, x: torch.Tensor, st: Any
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(input², variance map) pairs whose products sum to the read-noise variance."""
        if self.symmetric():
            d = x if self.identity() else self._drive(x)
            return [(d * d, st.var)]
        dp, dn = self.polarity_drives(x)
        return [(dp * dp, st.var_p), (dn * dn, st.var_n)]
