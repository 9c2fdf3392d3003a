"""The memsim command line: device studies as a table, as JSON and as figures."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from memsim.cli import main


def test_device_json_table(capsys, tmp_path):
    assert main(["device", "pcm-hermes-2dev", "--json", "--devices", "2000",
                 "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["device"] == "pcm-hermes-2dev"
    assert [p["level"] for p in data["programming"]] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert [r["time"] for r in data["drift"]] == ["1 s", "1 h", "1 day", "1 year", "10 years"]
    for p in data["programming"]:
        # measured σ agrees with the model's σ within 5 standard errors
        assert abs(p["sigma_uS"] - p["sigma_model_uS"]) < 5 * p["sigma_stderr_uS"]
    medians = [r["drift_factor_median"] for r in data["drift"]]
    assert all(a > b for a, b in itertools.pairwise(medians))  # PCM drifts down
    for r in data["drift"]:
        assert r["drift_factor_p01"] < r["drift_factor_median"] < r["drift_factor_p99"]
        assert 0 < r["read_noise_rel"] < 0.2
    for path in data["figures"]:
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(data["figures"]) == 2


def test_device_text_table(capsys):
    assert main(["device", "ideal", "--devices", "500", "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "Programming error" in out and "10 years" in out
    # the ideal device: zero error, drift factor exactly 1, no read noise
    assert "0.0000 ± 0.0000" in out
    assert "1.0000 – 1.0000" in out and "0.000 %" in out


def test_device_list(capsys):
    assert main(["device", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"pcm-generic", "pcm-hermes-1dev", "pcm-hermes-2dev", "rram-cmo", "rram-neurram",
            "ideal"} <= set(names)


def test_unknown_device_is_a_clear_error(capsys):
    assert main(["device", "pcm-genric", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "unknown devices card 'pcm-genric'" in err


def test_too_few_devices(capsys):
    assert main(["device", "ideal", "--devices", "10", "--no-figures"]) == 2
    assert "n_devices = 10 is too small" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-m", "memsim", "--version"], ["-m", "memsim", "device",
                                                                    "--help"]])
def test_python_dash_m(argv):
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True)
    assert "memsim" in out.stdout


def test_map_report(capsys):
    pytest.importorskip("torch", reason="the digits models are trained with torch")
    assert main(["map", "digits-cnn", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [layer["name"] for layer in rep["layers"]] == ["conv1", "conv2", "fc"]
    assert [layer["matrices"] for layer in rep["layers"]] == [[[9, 8]], [[72, 16]], [[64, 10]]]
    assert rep["total_tiles"] == 3 and rep["total_weights"] == 9 * 8 + 72 * 16 + 64 * 10
    assert main(["map", "digits-mlp"]) == 0
    out = capsys.readouterr().out
    assert "64x100" in out and "runs digitally: flatten0 (flatten), relu0 (relu)" in out


def test_tile_cli_json(capsys):
    assert main(["tile", "generic-256", "--device", "ideal", "--json", "--batch", "16"]) == 0
    data = json.loads(capsys.readouterr().out)
    errs = {(r["drift_compensation"], r["time"]): r["relative_error"] for r in data["accuracy"]}
    assert len(errs) == 9
    assert all(e < 0.05 for e in errs.values())  # ideal device: only 8-bit converters
    assert data["parameters"]["adc_bits"] == "8"
