"""Shipped studies at their quick size, the study CLI, and memsim demo."""

from __future__ import annotations

import json

import pytest

from memsim.cli import main
from memsim.studies.spec import load_study

pytest.importorskip("torch", reason="the digits models are trained with torch")
STUDIES = ["drift", "adc-bits", "phases", "analog-digital", "kan", "transformer", "mnist"]


@pytest.mark.parametrize("name", STUDIES)
def test_shipped_study_quick(name, tmp_path, capsys):
    spec = load_study(name)
    assert spec.evaluator == "accuracy-energy"
    assert main(["study", "run", name, "--quick", "--workers", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0 failed, 0 remaining" in out
    n_points = len(spec.points(quick=True))
    assert f"{n_points} points" in out
    assert (tmp_path / f"{name}-quick.html").read_text().startswith("<!doctype html>")
    md = (tmp_path / f"{name}-quick.md").read_text()
    assert "| " in md and "Results" in md
    # a second run resumes: nothing left to compute
    assert main(["study", "run", name, "--quick", "--workers", "0", "--out", str(tmp_path)]) == 0
    assert f"{n_points} already done, 0 computed now" in capsys.readouterr().out
    assert main(["study", "show", name, "--quick", "--json", "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == n_points // spec.quick.get("seeds", spec.seeds)
    for metric in spec.metrics:
        assert all(isinstance(r[metric], float) for r in rows)
    if name == "analog-digital":  # issue 14 item 6: ResNet-50 and AlexNet at ImageNet shapes
        by = {r["workload"]: r for r in rows}
        assert {"resnet50", "alexnet-torchvision"} <= set(by)
        for metric in spec.metrics:  # 4.1 G multiply-adds against 0.71 G, on every engine
            assert 0 < by["alexnet-torchvision"][metric] < by["resnet50"][metric]
    if name == "mnist":  # measured 94-97.5 % on 200 images; 0.85 is > 4 binomial s.e. below
        assert all(r["accuracy"] > 0.85 for r in rows)


def test_adc_bits_quick_pareto_and_trend(tmp_path, capsys):
    assert main(["study", "run", "adc-bits", "--quick", "--workers", "0",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["study", "show", "adc-bits", "--quick", "--json", "--out", str(tmp_path)]) == 0
    rows = sorted(json.loads(capsys.readouterr().out), key=lambda r: r["adc_bits"])
    energy = [r["energy_j"] for r in rows]
    assert energy == sorted(energy)  # more ADC bits cost more energy (card table)
    assert rows[-1]["accuracy"] > rows[0]["accuracy"]  # and buy accuracy
    assert (tmp_path / "adc-bits-quick-pareto.png").exists()
    from memsim.crossbar import load_tile_config

    stated = load_tile_config("hermes-core").assumptions()  # report and show say which physics
    assert stated in (tmp_path / "adc-bits-quick.md").read_text()
    assert main(["study", "show", "adc-bits", "--quick", "--out", str(tmp_path)]) == 0
    assert f"converter assumptions: {stated}" in capsys.readouterr().out


def test_show_before_run_is_a_clear_error(tmp_path, capsys):
    assert main(["study", "show", "phases", "--out", str(tmp_path)]) == 2
    assert "has no results" in capsys.readouterr().err


def test_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seeds", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    acc = r["accuracy"]
    assert list(acc) == ["1 s", "1 day", "1 year"]
    assert acc["1 s"]["mean"] > 0.9
    assert r["chip_run"]["energy_j"] > 0 and r["chip_run"]["latency_s"] > 0
    assert r["digital"]["digital-gpu"]["energy_j"] > r["chip_run"]["energy_j"]
    assert (tmp_path / "demo-adc-bits-pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_array_size_can_be_swept():
    """Smaller arrays split the layers into more tiles: more partial sums, more energy."""
    from memsim.studies.evaluate import evaluate_point

    base = {"workload": "digits-mlp", "chip": "hermes-64core", "tile": "hermes-core",
            "device": "pcm-hermes-2dev", "time_s": 1.0, "test_samples": 100}
    small = evaluate_point({**base, "rows": 32, "cols": 32}, 1)
    large = evaluate_point({**base, "rows": 256, "cols": 256}, 1)
    assert small["energy_j"] > large["energy_j"]
    assert small["latency_s"] > large["latency_s"]
    assert 0.8 < small["accuracy"] <= 1 and 0.8 < large["accuracy"] <= 1
