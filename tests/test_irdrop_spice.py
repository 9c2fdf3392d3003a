"""IR drop against an independent circuit simulator: ngspice netlists of the crossbar.

The netlists are written here, element by element, from the circuit definitions in the
docstring of memsim.crossbar.irdrop: row wires driven by ideal sources through r_row
segments, cells as resistors 1/G, column wires of r_col segments ending in a 0 V source (the
virtual ground) whose branch current is the column output. "separate": two arrays, the G−
rows driven at −V (their column currents add); "shared": the G+ and G− row wires of a row
(driven at +V and −V) meet one column wire. ngspice's operating point of a linear network
is a direct sparse LU solve, so it is an exact reference up to rounding (printed with 16
digits). Debian's ``ngspice`` package; the tests skip, saying why, where it is absent
(.ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from memsim.crossbar import irdrop

NGSPICE = shutil.which("ngspice")
pytestmark = pytest.mark.skipif(
    NGSPICE is None, reason="ngspice is not installed (apt-get install ngspice; .ci/run does)")


def netlist(g_pos: np.ndarray, g_neg: np.ndarray, v: np.ndarray, r_row: float, r_col: float,
            topology: str) -> str:
    """A SPICE netlist of one input vector through a differential crossbar (r_row, r_col > 0)."""
    rows, cols = g_pos.shape
    lines = [f"* {rows}x{cols} differential crossbar, {topology} bit lines", ".options noacct"]

    def rows_of(layer: str, g: np.ndarray, sign: float, col: str) -> None:
        for i in range(rows):
            lines.append(f"V{layer}{i} {layer}s{i} 0 DC {sign * v[i]:.17g}")
            lines.append(f"R{layer}d{i} {layer}s{i} {layer}{i}_0 {r_row:.17g}")
            for j in range(cols - 1):
                lines.append(f"R{layer}{i}_{j} {layer}{i}_{j} {layer}{i}_{j + 1} {r_row:.17g}")
            for j in range(cols):
                if g[i, j] > 0:
                    lines.append(f"R{layer}c{i}_{j} {layer}{i}_{j} {col}{i}_{j} "
                                 f"{1.0 / g[i, j]:.17g}")

    def column_wires(col: str) -> None:
        for j in range(cols):
            for i in range(rows - 1):
                lines.append(f"R{col}{i}_{j} {col}{i}_{j} {col}{i + 1}_{j} {r_col:.17g}")
            lines.append(f"R{col}b{j} {col}{rows - 1}_{j} {col}o{j} {r_col:.17g}")
            lines.append(f"V{col}o{j} {col}o{j} 0 DC 0")  # the virtual ground; I = its current

    if topology == "shared":
        rows_of("p", g_pos, 1.0, "w")
        rows_of("n", g_neg, -1.0, "w")
        column_wires("w")
    else:
        rows_of("p", g_pos, 1.0, "w")
        rows_of("n", g_neg, -1.0, "x")
        column_wires("w")
        column_wires("x")
    lines += [".control", "set numdgt=15", "op", "print all", ".endc", ".end"]
    return "\n".join(lines) + "\n"


def spice_currents(g_pos, g_neg, v, r_row, r_col, topology, path: Path) -> np.ndarray:
    path.write_text(netlist(g_pos, g_neg, v, r_row, r_col, topology))
    run = subprocess.run([NGSPICE, "-b", str(path)], capture_output=True, text=True,
                         timeout=600, check=False)
    found = {m.group(1): float(m.group(2)) for m in
             re.finditer(r"^(v[wx]o\d+)#branch\s*=\s*(\S+)", run.stdout, re.M)}
    cols = g_pos.shape[1]
    if len(found) < cols:
        raise AssertionError(f"ngspice gave no column currents:\n{run.stdout[-2000:]}"
                             f"\n{run.stderr[-2000:]}")
    out = np.array([found[f"vwo{j}"] for j in range(cols)])
    if topology == "separate":
        out = out + np.array([found[f"vxo{j}"] for j in range(cols)])
    return out


def cells(pattern: str, n: int, g_max: float, rng: np.random.Generator):
    if pattern == "random":  # one device of a pair at 0 S, as in the HERMES mapping
        w = rng.uniform(-1, 1, (n, n))
        return g_max * np.maximum(w, 0), g_max * np.maximum(-w, 0)
    return rng.uniform(0, g_max, (n, n)), rng.uniform(0, g_max, (n, n))


@pytest.mark.parametrize("n", [8, 16, 32])
@pytest.mark.parametrize("topology", irdrop.TOPOLOGIES)
@pytest.mark.parametrize("pattern, g_max, r_row, r_col", [
    ("random", 20.7e-6, 1.0, 1.0),  # HERMES PCM g_max (2 devices per polarity), 1 Ω
    ("dense", 1e-3, 2.0, 5.0),      # a strong effect (ε up to 5), unequal wires
])
def test_exact_solve_matches_ngspice(n, topology, pattern, g_max, r_row, r_col, tmp_path):
    rng = np.random.default_rng(n)
    g_pos, g_neg = cells(pattern, n, g_max, rng)
    v = rng.uniform(-0.2, 0.2, n)
    want = spice_currents(g_pos, g_neg, v, r_row, r_col, topology, tmp_path / "x.cir")
    got = irdrop.solve_differential(g_pos, g_neg, v, r_row, r_col, topology)
    ideal = v @ (g_pos - g_neg)
    scale = np.linalg.norm(want)
    assert np.linalg.norm(got - want) < 1e-9 * scale
    # and the IR-drop part itself (I − ideal) to 1e-6 of its size
    effect = np.linalg.norm(want - ideal)
    assert effect > 1e-4 * scale  # the wires matter
    assert np.linalg.norm(got - want) < 1e-6 * effect


def test_the_other_topology_is_measurably_wrong(tmp_path):
    """Against the shared-bit-line netlist, the separate-array solve (memsim's only model
    before) misses a large part of the IR drop; the shared solve does not."""
    rng = np.random.default_rng(32)
    g_pos, g_neg = cells("random", 32, 20.7e-6, rng)
    v = rng.uniform(-0.2, 0.2, 32)
    spice = spice_currents(g_pos, g_neg, v, 1.0, 1.0, "shared", tmp_path / "s.cir")
    effect = np.linalg.norm(spice - v @ (g_pos - g_neg))
    err_separate = np.linalg.norm(
        irdrop.solve_differential(g_pos, g_neg, v, 1.0, 1.0, "separate") - spice)
    err_shared = np.linalg.norm(
        irdrop.solve_differential(g_pos, g_neg, v, 1.0, 1.0, "shared") - spice)
    print(f"\n32x32 1 ohm shared netlist: IR effect {effect / np.linalg.norm(spice):.2e}, "
          f"separate solve err {err_separate / np.linalg.norm(spice):.2e}, "
          f"shared solve err {err_shared / np.linalg.norm(spice):.2e}")
    assert err_separate > 0.2 * effect
    assert err_shared < 1e-6 * effect
