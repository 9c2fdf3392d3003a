"""The worked examples of docs/extending.md run as written (each in its own interpreter, so
that the plug-ins they register stay out of this session's registries)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(
    encoding="utf-8"), flags=re.S)


def test_the_guide_has_a_drift_law_and_an_adc_model():
    assert len(BLOCKS) == 2
    assert "@DRIFT_LAWS.register" in BLOCKS[0] and "@ADC_MODELS.register" in BLOCKS[1]


@pytest.mark.parametrize("block", BLOCKS, ids=["drift-law", "adc-model"])
def test_worked_example_runs(block, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    if "LinearLoss" in block:
        assert 'model = "linear_loss"' in out and "rate = { value = 1e-09" in out
        assert "[0.9 0.9 0.9 0.9]" in out
    else:
        first, second = out.splitlines()
        assert first == "tensor([0., 1.])"
        assert second.startswith("comparator_offset (threshold_shift = 0.25) ")
        assert 0 < float(second.split()[-1]) < 1  # quantized: near, not equal to X @ W
