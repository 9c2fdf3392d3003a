"""A drift law in one file: exponential loss of the programmed conductance (retention).

A phenomenological retention law: the programmed conductance decays exponentially towards a
retained fraction f, with a device-to-device spread of the time constant that is log-normal::

    G(t) = G_prog · (f + (1 − f) · exp(−t / τ_i)),    ln τ_i = ln τ + σ_lnτ · ξ_i,

with ξ_i ~ N(0, 1) drawn once per device at programming (``state.extra["drift_tau_s"]``).
``StatisticalDevice.with_noise(drift_spread=s)`` scales σ_lnτ. memsim ships no device card
with this law and cites no fit for it: τ, σ_lnτ and f are the card's, each with its source.

It is the example of adding a drift law: this one class, registered with
``@DRIFT_LAWS.register``, and the card field that chooses it::

    [drift]
    model = "exponential_decay"
    tau = { value = 1e6, unit = "s", source = "..." }
    tau_sigma = { value = 0.5, unit = "1", source = "..." }
    retained = { value = 0.8, unit = "1", source = "..." }

(memsim imports ``memsim/devices/drift_*.py`` with :mod:`memsim.devices.statistical`; a law
of your own lives in any module you import before loading the card.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from memsim.cards import card_field
from memsim.devices.statistical import DRIFT_LAWS, DriftLaw

__all__ = ["ExponentialDecay"]


@DRIFT_LAWS.register
@dataclass(frozen=True, kw_only=True)
class ExponentialDecay(DriftLaw):
    """G(t) = G_prog (f + (1 − f) exp(−t/τ_i)), log-normal τ_i (module docstring)."""

    name: ClassVar[str] = "exponential_decay"
    state_keys: ClassVar[tuple[str, ...]] = ("drift_tau_s",)

    tau_s: float = card_field("drift", "tau", dimension="time", lo=0.0, hi=1e10, lo_open=True,
                              example=1e6, help="median time constant τ of the decay")
    tau_sigma: float = card_field("drift", lo=0.0, hi=5.0, example=0.5,
                                  help="σ of ln τ between devices")
    retained: float = card_field("drift", lo=0.0, hi=1.0, example=0.8,
                                 help="fraction f of the programmed conductance kept for ever")

    def program(self, g_target_S, g_max_S, rng, spread_scale):
        sigma = self.tau_sigma * spread_scale
        if sigma == 0.0:
            return {"drift_tau_s": np.full(np.shape(g_target_S), self.tau_s)}
        return {"drift_tau_s": self.tau_s * np.exp(sigma * rng.standard_normal(
            np.shape(g_target_S)))}

    def drifted(self, state, t, g_max_S, spread_scale):
        kept = self.retained + (1.0 - self.retained) * np.exp(-t / state.extra["drift_tau_s"])
        return state.g_prog_S * kept

    def parameters(self):
        return [("decay τ", f"{self.tau_s:g} s (σ ln τ = {self.tau_sigma:g})", ""),
                ("retained fraction", f"{self.retained:g}", "")]
