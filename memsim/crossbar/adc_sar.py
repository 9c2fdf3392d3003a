"""A successive-approximation (SAR) ADC with capacitor mismatch: differential non-linearity.

A charge-redistribution SAR converter (McCreary and Gray, IEEE JSSC 10(6), 371, 1975)
compares its input, bit by bit from the most significant, with the voltage of a binary
weighted capacitor array: bit i switches 2^i unit capacitors. Mismatch of independent unit
capacitors of relative spread σ_u (Pelgrom et al., IEEE JSSC 24(5), 1433, 1989: σ falls as
1/√area) gives bit i the weight, in LSB, ::

    w_i = 2^i + σ_u · √(2^i) · ξ_i,      ξ_i ~ N(0, 1), drawn once per converter,

so code widths differ from 1 LSB (differential non-linearity, largest at the major carry
transitions) while the transfer stays monotonic: at every bit decision the codes above the
threshold exceed those below. With the input u in LSB and
the thresholds offset by −2^(b−1) (offset binary)::

    acc = −2^(b−1);  for i = b−1 … 0:  if u >= acc + w_i: acc += w_i, bit i = 1
    code = Σ bits·2^i − 2^(b−1)

Inputs beyond the ideal full scale (u < −2^(b−1) or u >= 2^(b−1)) get floor(u), outside
the code range: the engine clips them and counts them as saturated, as for every model.
With σ_u = 0 the model equals the ``floor`` model (comparator thresholds at whole LSBs).
The engine draws the weights of every converter (one per column of each row tile) when a
tile is programmed.

Card (``[adc]`` of a tile card)::

    mode = "sar"
    cap_mismatch = { value = 0.01, unit = "1", source = "..." }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from memsim.cards import card_field
from memsim.crossbar.adc import ADC_MODELS, ADCModel

__all__ = ["SAR"]


@ADC_MODELS.register
@dataclass(frozen=True)
class SAR(ADCModel):
    """A SAR converter whose bit weights carry unit-capacitor mismatch (module docstring)."""

    name: ClassVar[str] = "sar"
    ideal: ClassVar[str] = "floor"

    cap_mismatch: float = card_field(
        "adc", dimension="dimensionless", lo=0.0, hi=0.5, default=0.0, required=False,
        example=0.01,
        help="σ of the relative mismatch of one unit capacitor of a SAR ADC's capacitor array "
             "(mode = \"sar\"); bit i has 2^i units")

    def draw(self, shape, bits, rng):
        if bits is None:
            return {}
        ideal = 2.0 ** np.arange(bits)  # LSB weights of bits 0 … b−1
        xi = rng.standard_normal((*shape, bits)) if self.cap_mismatch else 0.0
        return {"weights": ideal + self.cap_mismatch * np.sqrt(ideal) * xi
                * np.ones((*shape, bits))}

    def code(self, u, bits, state):
        half = 2.0 ** (bits - 1)
        w = state.get("weights")
        # thresholds in u's own units (offset −2^(b−1)): u + 2^(b−1) would round away the
        # fraction of a u just below a whole LSB, and σ_u = 0 would no longer be floor(u)
        acc = torch.full_like(u, -half)
        code = torch.zeros_like(u)
        for i in range(bits - 1, -1, -1):
            trial = acc + (w[..., i] if w is not None else 2.0 ** i)
            take = u >= trial
            acc = torch.where(take, trial, acc)
            code = code + take.to(u.dtype) * 2.0 ** i
        inside = (u >= -half) & (u < half)
        return torch.where(inside, code - half, torch.floor(u))
