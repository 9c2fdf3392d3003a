"""Paper-ready outputs (issue 15): figures as PNG and PDF drawn on their own Figure objects,
readable ticks and human legend names, the study configuration in the Markdown and HTML
reports, study export as CSV or Parquet (a clear error without pyarrow), progress bars on
the long calls, and a command line that parses, calls the library and prints."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import memsim
from memsim._figures import human_label, human_time, human_value, new_figure, save_figure

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memsim"

# --- figures ------------------------------------------------------------------------------


def test_no_module_switches_the_matplotlib_backend():
    """Figures are Figure objects: no matplotlib.use and no pyplot (global state) in memsim."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "use" and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id in ("matplotlib", "mpl"):
                offenders.append(f"{path}:{node.lineno} matplotlib.use")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if "pyplot" in module or any("pyplot" in n for n in names):
                    offenders.append(f"{path}:{node.lineno} pyplot import")
    assert not offenders, offenders


def test_save_figure_writes_png_and_pdf_with_truetype_fonts(tmp_path):
    fig = new_figure(3.0, 2.0)
    ax = fig.add_subplot()
    ax.plot([1, 2, 3], [1, 4, 9], label="a curve")
    ax.set_xlabel("time (s)")
    ax.legend()
    png = save_figure(fig, tmp_path / "fig.png")
    assert png == tmp_path / "fig.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert b"/FontFile2" in pdf  # TrueType embedded (Type 42), not Type 3 bitmaps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf", "fig.png"]


def test_human_names_replace_raw_keys():
    assert human_value("time_s", 31557600.0) == "1 year"
    assert human_value("time_s", 86400.0) == "1 day"
    assert human_value("time_s", 3.15576e8) == "10 years"
    assert human_time(3600.0) == "1 h"
    assert human_value("adc_bits", 4) == "4-bit ADC"
    assert human_value("drift_compensation", "global") == "global drift comp."
    assert human_value("training", "hwa") == "HW-aware-trained"
    assert human_label(["adc_bits", "time_s"], {"adc_bits": 6, "time_s": 1.0}) \
        == "6-bit ADC, 1 s"
    assert "=" not in human_label(["noise_scale"], [0.5])
    assert human_value("adc_bits", 4.0) == "4-bit ADC"  # a pandas row holds ints as floats
    assert human_value("time_s", 86400) == "1 day"


def _synthetic_results(energies_j: list[float]) -> pd.DataFrame:
    """Two seeds per ADC resolution, accuracy rising with energy: a study's stored rows."""
    rows = []
    for k, (bits, e) in enumerate(zip((3, 4, 5, 6, 8), energies_j, strict=True)):
        for seed in range(2):
            rows.append({"config_hash": f"h{k}", "seed_index": seed, "adc_bits": bits,
                         "time_s": 86400.0, "energy_j": e * (1 + 0.01 * seed),
                         "accuracy": 0.80 + 0.03 * k + 0.005 * seed})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("energies_j", [[1.0e-9, 1.2e-9, 1.4e-9, 1.7e-9, 2.0e-9],
                                        [1.0e-9, 1.5e-9, 2.2e-9, 3.0e-9, 4.0e-9],
                                        [1e-9, 4e-9, 2e-8, 1e-7, 6e-7]],
                         ids=["factor-2", "factor-4", "factor-600"])
def test_pareto_figure_ticks_and_labels_are_readable(tmp_path, monkeypatch, energies_j):
    """At least three labelled ticks on the energy axis, whatever the span, and every point
    label inside the canvas (issue 15: the Pareto plot had two tick labels and a clipped
    point label)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import memsim.studies.report as report

    drawn = []
    real_save = report.save_figure

    def keep(fig, path, *args, **kwargs):
        drawn.append((Path(path).name, fig))
        return real_save(fig, path, *args, **kwargs)

    monkeypatch.setattr(report, "save_figure", keep)
    out = report.write_report(_synthetic_results(energies_j), study="t", description="test",
                              params=["adc_bits"], out_dir=tmp_path,
                              configuration={"chip": "hermes-64core"})
    fig = dict(drawn)["t-pareto.png"]
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = sorted(ax.get_xlim())
    shown = [t.get_text() for t in ax.get_xticklabels()
             if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert len(shown) >= 3, shown
    canvas = fig.bbox
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == 5  # every point is on the Pareto front here
    for text in labels:
        box = text.get_window_extent(renderer)
        assert canvas.x0 - 0.5 <= box.x0 and box.x1 <= canvas.x1 + 0.5, text.get_text()
        assert canvas.y0 - 0.5 <= box.y0 and box.y1 <= canvas.y1 + 0.5, text.get_text()
        assert "adc_bits" not in text.get_text()  # human names: "4-bit ADC"
    for path in out["figures"].values() if isinstance(out["figures"], dict) else out["figures"]:
        assert Path(path).with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_analog_digital_legend_sits_above_the_bars(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import memsim.studies.report as report

    drawn = {}
    real_save = report.save_figure
    monkeypatch.setattr(report, "save_figure", lambda fig, path, *a, **k: (
        drawn.__setitem__(Path(path).name, fig), real_save(fig, path, *a, **k))[1])
    df = _synthetic_results([1e-9, 2e-9, 3e-9, 4e-9, 5e-9]).drop(columns="accuracy")
    df["digital_gpu_energy_j"] = df["energy_j"] * 30
    df["digital_cpu_energy_j"] = df["energy_j"] * 300
    report.write_report(df, study="t", description="test", params=["adc_bits"],
                        out_dir=tmp_path, configuration={"chip": "hermes-64core"})
    fig = drawn["t-analog-digital.png"]
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    ax = fig.axes[0]
    assert legend.get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1 - 0.5
    assert [t.get_text() for t in legend.get_texts()] == [
        "analog (chip)", "digital GPU-class", "digital CPU-class"]
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["3-bit ADC", "4-bit ADC"]
    assert (tmp_path / "t-analog-digital.pdf").read_bytes()[:5] == b"%PDF-"


def test_drift_fan_of_a_card_with_stuck_devices_draws_a_panel_per_level(tmp_path,
                                                                        monkeypatch):
    import memsim.devices.figures as figures
    from memsim.cards import find_card
    from memsim.devices.study import run_device_study

    card = tmp_path / "pcm-stuck.toml"
    card.write_text(find_card("pcm-hermes-2dev", "devices").read_text() + """
[nonidealities]
stuck_at_gmin_rate = { value = 0.02, unit = "1", source = "test" }
stuck_at_gmax_rate = { value = 0.01, unit = "1", source = "test" }
""")
    drawn = {}
    real_save = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, *a, **k: (
        drawn.__setitem__(Path(path).stem, fig), real_save(fig, path, *a, **k))[1])
    device = memsim.load_device(card)
    study = run_device_study(device, n_devices=500, seed=0)
    paths = figures.write_study_figures(study, device, tmp_path / "figs")
    fan = next(fig for stem, fig in drawn.items() if "fan" in stem)
    visible = [ax for ax in fan.axes if ax.get_visible()]
    assert len(visible) == len(study.samples_["fan"]) > 1
    for path in paths:
        assert path.suffix == ".png" and path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_chip_figures_are_png_and_pdf(tmp_path):
    from memsim.chip import load_digital_config
    from memsim.chip.figures import write_chip_figures
    from memsim.workloads import load_workload

    chip = memsim.load_chip("hermes-64core")
    graph = load_workload("lenet5", np.random.default_rng(0))
    run = chip.simulate(graph, inferences=3)
    gpu = load_digital_config("digital-gpu").estimate(chip.describe(graph))
    paths = write_chip_figures(run, tmp_path, digital=[gpu])
    assert len(paths) == 3
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG"
        assert path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


# --- study reports and export -------------------------------------------------------------

_STUDY = '''
description = "energy per inference of LeNet-5 over ADC resolution (test)"
workload = "lenet5"
chip = "hermes-64core"
tile = "hermes-core"
device = "pcm-hermes-2dev"
evaluator = "accuracy-energy"
seeds = 2
base_seed = 0
metrics = ["energy_j", "latency_s"]

[fixed]
measure_accuracy = false
inferences = 3

[grid]
adc_bits = [4, 8]
'''


@pytest.fixture(scope="module")
def energy_study(tmp_path_factory):
    """A small energy-only study, run once: (spec file, study folder)."""
    from memsim.studies.runner import run_study
    from memsim.studies.spec import load_study

    folder = tmp_path_factory.mktemp("study")
    path = folder / "adc-energy-test.toml"
    path.write_text(_STUDY)
    summary = run_study(load_study(path), out_dir=folder / "out", workers=0, progress=False)
    assert summary.computed == 4 and not summary.failed
    return path, folder / "out"


def test_study_reports_show_the_configuration(energy_study):
    from memsim.studies.report import report_study
    from memsim.studies.spec import load_study
    from memsim.studies.store import ResultStore

    path, out = energy_study
    spec = load_study(path)
    with ResultStore.for_study(out, spec.name, readonly=True) as store:
        rep = report_study(spec, store, out)
    config = rep["configuration"]
    assert config["chip"].startswith("hermes-64core")
    assert config["tile"].startswith("hermes-core")
    assert config["device"].startswith("pcm-hermes-2dev")
    assert "4-bit ADC, 8-bit ADC" in config["swept"]
    assert "inferences = 3 inferences" in config["fixed"]
    assert config["seeds per point"] == "2"
    md = Path(rep["markdown"]).read_text()
    page = Path(rep["html"]).read_text()
    assert "## Configuration" in md and "<h2>Configuration</h2>" in page
    for value in config.values():
        assert value.replace("|", "/") in md
    assert "hermes-64core" in page and "pcm-hermes-2dev" in page


def test_study_export_csv(energy_study, capsys):
    from memsim.cli import main

    path, out = energy_study
    assert main(["study", "export", str(path), "--out", str(out), "--format", "csv"]) == 0
    written = Path(capsys.readouterr().out.split("results:", 1)[1].strip())
    df = pd.read_csv(written)
    assert len(df) == 4  # 2 points x 2 seeds
    assert sorted(df["adc_bits"].unique().tolist()) == [4, 8]
    assert df["energy_j"].gt(0).all() and df["latency_s"].gt(0).all()
    assert {"seed", "seed_index", "memsim_version", "chip", "device"} <= set(df.columns)


def test_study_export_parquet_without_pyarrow_is_a_clear_error(energy_study, monkeypatch,
                                                               capsys, tmp_path):
    from memsim.cli import main
    from memsim.studies.export import export_results

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    target = tmp_path / "results.parquet"
    with pytest.raises(memsim.ConfigError, match=r"pyarrow.*memsim\[parquet\]"):
        export_results(pd.DataFrame({"a": [1]}), target, "parquet")
    assert not target.exists()
    path, out = energy_study
    assert main(["study", "export", str(path), "--out", str(out), "--format", "parquet",
                 "--to", str(target)]) == 2
    err = capsys.readouterr().err
    assert "pyarrow" in err and "Traceback" not in err
    assert not target.exists()


def test_study_export_parquet_with_pyarrow(energy_study, tmp_path):
    pytest.importorskip("pyarrow")
    from memsim.studies.export import export_study
    from memsim.studies.spec import load_study
    from memsim.studies.store import ResultStore

    path, out = energy_study
    spec = load_study(path)
    with ResultStore.for_study(out, spec.name, readonly=True) as store:
        written = export_study(spec, store, tmp_path / "r.parquet", "parquet")
    assert len(pd.read_parquet(written)) == 4


def test_export_rejects_an_unknown_format(tmp_path):
    from memsim.studies.export import export_results

    with pytest.raises(memsim.ConfigError, match="xlsx"):
        export_results(pd.DataFrame({"a": [1]}), tmp_path / "r.xlsx", "xlsx")


# --- progress bars ------------------------------------------------------------------------


def test_progress_switches(monkeypatch):
    from memsim._progress import progress_enabled

    previous = memsim.set_progress(None)
    try:
        monkeypatch.setenv("MEMSIM_PROGRESS", "0")
        assert progress_enabled() is False
        monkeypatch.delenv("MEMSIM_PROGRESS")
        assert progress_enabled() is None  # automatic: tqdm's terminal test
        memsim.set_progress(True)
        assert progress_enabled() is True
        memsim.set_progress(False)
        assert progress_enabled() is False
    finally:
        memsim.set_progress(previous)


def test_long_calls_show_progress_bars(monkeypatch):
    """Programming a converted model and a mapped Graph, a chip run and the accuracy over
    programming seeds each open a bar with the right number of steps."""
    torch = pytest.importorskip("torch")
    import memsim._progress as mp
    import memsim.analog as analog
    import memsim.chip.sim as sim
    import memsim.mapping.network as network
    import memsim.workloads.training as training
    from memsim.workloads import load_workload

    bars: list[tuple[str, int | None, int]] = []

    class Recorder:
        def __init__(self, total, desc, unit="it", **kwargs):
            self.total, self.desc, self.done = total, desc, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            bars.append((self.desc, self.total, self.done))

        def update(self, n=1):
            self.done += n

    for module in (analog, sim, network, training):
        monkeypatch.setattr(module, "progress", Recorder)
    assert mp.progress is not Recorder  # only the call sites are replaced

    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    amodel = memsim.analog(model, device="ideal")
    memsim.program(amodel, seed=0)
    graph = load_workload("lenet5", np.random.default_rng(0))
    net = memsim.map_network(graph, device="ideal")
    net.program(np.random.default_rng(0))
    memsim.load_chip("hermes-64core").simulate(graph, inferences=3, record=False)
    x = np.random.default_rng(1).uniform(0, 1, (8, 16)).astype(np.float32)
    training.analog_accuracy(model, x, np.zeros(8, dtype=np.int64), times=[1.0, 10.0],
                             seeds=2, device="ideal", x_calibrate=x)
    assert bars[0] == ("programming", 2, 2), bars  # the converted model: one per layer
    assert bars[1] == (f"programming {graph.name}", len(net.arrays), len(net.arrays)), bars
    assert ("chip hermes-64core", 3, 3) in bars, bars  # one step per inference
    assert bars[-1] == ("analog accuracy", 4, 4), bars  # seeds x times


# --- the command line ---------------------------------------------------------------------


def test_cli_modules_parse_call_and_print():
    """memsim/cli/ holds no physics: no torch, scipy or numba, and of numpy only a seeded
    generator for the library calls."""
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            assert not {"torch", "scipy", "numba", "simpy"} & set(names), (path, node.lineno)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "np":
                assert node.attr == "random", (path, node.lineno, node.attr)


def test_cli_json_is_the_report(capsys):
    from memsim.cli import main

    assert main(["map", "lenet5", "--json", "--device", "ideal"]) == 0
    data = json.loads(capsys.readouterr().out)
    graph = memsim.workloads.load_workload("lenet5", np.random.default_rng(0))
    rep = memsim.map_network(graph, device="ideal").report()
    assert isinstance(rep, memsim.Report)
    assert data == json.loads(json.dumps(rep))
