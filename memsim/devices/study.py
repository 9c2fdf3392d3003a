"""Device studies: Monte-Carlo statistics of one device card, as a table and figures.

A study programs ``n_devices`` devices at each target level with one seeded generator and
measures, from the samples (not from the formulas):

- programming error: mean and σ of G_prog − G_T at 5 target levels (with the model's σ
  where the model has one, and the standard error of the measured σ);
- drift factor G_drift(t)/G_prog (drift or relaxation only): median and 1 %/99 % quantiles
  at 1 s, 1 h, 1 day, 1 year and 10 years, for devices programmed at the middle level;
- relative read noise at the same times: σ of (G_read − G_drift)/G_drift, where G_read and
  G_drift share their drift draw (same seed) and differ only by read noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memsim.devices.base import Device
from memsim.timegrid import time_points

__all__ = ["STUDY_LEVELS", "STUDY_TIMES", "DeviceStudy", "fan_times", "run_device_study"]

STUDY_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fractions of [g_min, g_max]
FIGURE_LEVELS = tuple(np.round(np.linspace(0.0625, 0.9375, 8), 4))  # 8 levels, mid-bins
STUDY_TIMES = time_points("1 s", "1 h", "1 day", "1 year", "10 years")
REFERENCE_LEVEL = 0.5


def level_to_g(device: Device, fraction: float) -> float:
    """The conductance at ``fraction`` of the way from g_min to g_max (S)."""
    return device.g_min_S + fraction * (device.g_max_S - device.g_min_S)


def fan_times(n: int = 41) -> np.ndarray:
    """Log-spaced times from 1 s to 10 years (s)."""
    return np.geomspace(1.0, STUDY_TIMES[-1][1], n)


@dataclass
class DeviceStudy:
    """Results of :func:`run_device_study`; ``samples_`` keeps what the figures draw."""

    device: str
    description: str
    n_devices: int
    seed: int
    g_min_uS: float
    g_max_uS: float
    reference_level_uS: float
    programming: list[dict[str, float]]
    drift: list[dict[str, Any]]
    samples_: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "description": self.description,
            "n_devices_per_level": self.n_devices,
            "seed": self.seed,
            "g_min_uS": self.g_min_uS,
            "g_max_uS": self.g_max_uS,
            "reference_level_uS": self.reference_level_uS,
            "programming": self.programming,
            "drift": self.drift,
        }


def _model_sigma_uS(device: Device, g_S: float) -> float | None:
    sigma = getattr(device, "sigma_prog_S", None)
    if sigma is None or device.nonideal.any:
        return None  # non-idealities change the spread: no closed form to compare with
    return float(sigma(np.array([g_S]))[0] * getattr(device, "programming_scale", 1.0) * 1e6)


def run_device_study(
    device: Device,
    *,
    n_devices: int = 20000,
    seed: int = 0,
    fan_levels: tuple[float, ...] = FIGURE_LEVELS,
    n_fan_times: int = 41,
    figures: bool = True,
    progress: Any = None,
) -> DeviceStudy:
    """Program and read ``n_devices`` devices per level; return measured statistics.

    ``progress`` is called with the number of finished steps (for a progress bar).
    """
    if n_devices < 100:
        raise ValueError(f"n_devices = {n_devices} is too small for 1 %/99 % quantiles; use >= 100")
    tick = progress or (lambda n=1: None)
    seq = np.random.SeedSequence(seed)
    s_prog, s_drift, s_fig = seq.spawn(3)
    rng = np.random.default_rng(s_prog)

    programming = []
    pulses, energy = [], []
    for frac in STUDY_LEVELS:
        g_t = level_to_g(device, frac)
        state = device.program(np.full(n_devices, g_t), rng)
        if "pulses" in state.extra:  # program-and-verify cost, pooled over the levels
            pulses.append(np.asarray(state.extra["pulses"]))
            energy.append(np.asarray(state.extra["energy_j"]))
        err = state.g_prog_S - g_t
        sd = float(err.std(ddof=1))
        programming.append({
            "level": frac,
            "g_target_uS": g_t * 1e6,
            "mean_error_uS": float(err.mean() * 1e6),
            "sigma_uS": sd * 1e6,
            "sigma_stderr_uS": sd / np.sqrt(2 * (n_devices - 1)) * 1e6,
            "sigma_model_uS": _model_sigma_uS(device, g_t),
        })
        tick(1)

    # Drift and read noise at the reference level, from one programmed population.
    g_ref = level_to_g(device, REFERENCE_LEVEL)
    rng = np.random.default_rng(s_drift)
    state = device.program(np.full(n_devices, g_ref), rng)
    quiet = device.with_noise(read=0.0, programming=1.0, drift_spread=1.0)
    drift = []
    for k, (label, t) in enumerate(STUDY_TIMES):
        seed_t = np.random.SeedSequence([seed, 7, k])
        g_drift = quiet.read(state, t, np.random.default_rng(seed_t))
        g_read = device.read(state, t, np.random.default_rng(seed_t))
        factor = g_drift / np.where(state.g_prog_S > 0, state.g_prog_S, np.nan)
        ok = np.isfinite(factor)
        rel = (g_read - g_drift) / np.where(g_drift > 0, g_drift, np.nan)
        drift.append({
            "time": label,
            "t_s": t,
            "drift_factor_median": float(np.median(factor[ok])),
            "drift_factor_p01": float(np.quantile(factor[ok], 0.01)),
            "drift_factor_p99": float(np.quantile(factor[ok], 0.99)),
            "read_noise_rel": float(np.nanstd(rel, ddof=1)),
        })
        tick(1)

    study = DeviceStudy(
        device=device.name,
        description=device.description,
        n_devices=n_devices,
        seed=seed,
        g_min_uS=device.g_min_S * 1e6,
        g_max_uS=device.g_max_S * 1e6,
        reference_level_uS=g_ref * 1e6,
        programming=programming,
        drift=drift,
    )
    if figures:
        rng = np.random.default_rng(s_fig)
        n_fig = min(n_devices, 5000)
        times = fan_times(n_fan_times)
        hist, fan = {}, {}
        for frac in fan_levels:
            g_t = level_to_g(device, frac)
            st = device.program(np.full(n_fig, g_t), rng)
            hist[g_t] = st.g_prog_S
            reads = np.stack([device.read(st, t, rng) for t in times])
            fan[g_t] = np.quantile(reads, [0.01, 0.5, 0.99], axis=1)
            tick(1)
        study.samples_ = {"programmed": hist, "fan_times_s": times, "fan": fan}
        if pulses:
            study.samples_["pulses"] = np.concatenate(pulses)
            study.samples_["energy_j"] = np.concatenate(energy)
    return study


def study_steps(figures: bool, fan_levels: int = len(FIGURE_LEVELS)) -> int:
    """How many progress ticks :func:`run_device_study` makes."""
    return len(STUDY_LEVELS) + len(STUDY_TIMES) + (fan_levels if figures else 0)
