"""Hostile input, as a new user would try it: every bad value gets memsim's own error naming it.

Two kinds of tests: the cases the issue lists, one by one (each failed on the code before
this module), and generated invalid inputs (hypothesis, derandomised so CI is stable) for
cards, study files, CLI options and arrays. The property is the same everywhere: a bad input
raises a :class:`memsim.MemsimError` (or, for the CLI, one line on stderr with an exit code
!= 0) whose message names the field, key or option; no other exception type escapes.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import threading
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memsim
from memsim.cli import build_parser, main
from memsim.errors import MemsimError
from memsim.mapping.graph import Graph
from memsim.studies.evaluate import PARAMS, evaluate_point
from memsim.studies.runner import check_study
from memsim.studies.spec import StudySpec, load_study

ROOT = Path(__file__).resolve().parent.parent
HYPO = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# --- a small TOML writer (cards and study files are generated) -----------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else _value(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict[str, Any]) -> str:
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{_key(k)}]")
            lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items()]
    text = "\n".join(lines) + "\n"
    assert tomllib.loads(text) is not None
    return text


def read_doc(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def leaf_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += leaf_paths(v, (*prefix, k))
    return out


def mutated(doc: dict, path: tuple, value: Any) -> dict:
    doc = json.loads(json.dumps(doc))  # deep copy
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


hostile = st.one_of(
    st.text(max_size=6), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e30, -1e-30, "none", "", "1", "uS", "true", "nan"]),
    st.lists(st.integers(-5, 5), max_size=3),
    st.fixed_dictionaries({"value": st.one_of(st.floats(allow_nan=True), st.text(max_size=3)),
                           "unit": st.sampled_from(["uS", "S", "s", "1", "furlong", ""]),
                           "source": st.sampled_from(["x", ""])}),
)


def assert_names(exc: BaseException, path: tuple) -> None:
    """The message names the changed key (or the table that holds it)."""
    msg = str(exc)
    named = [str(k) for k in (path[1:] or path)]  # the field, or a key inside it
    assert any(k in msg for k in named), (path, msg)


# --- cards ---------------------------------------------------------------------------------------

def _load_tile(path):
    from memsim.crossbar import load_tile_config

    return load_tile_config(path)


def _load_chip(path):
    from memsim.chip import load_chip

    return load_chip(path)


def _load_digital(path):
    from memsim.chip import load_digital_config

    return load_digital_config(path)


CARDS = {
    "device": (ROOT / "devices" / "pcm-hermes-2dev.toml", memsim.load_device),
    "device-rram": (ROOT / "devices" / "rram-cmo.toml", memsim.load_device),
    "device-vteam": (ROOT / "devices" / "vteam.toml", memsim.load_device),
    "tile": (ROOT / "crossbars" / "hermes-core.toml", _load_tile),
    "chip": (ROOT / "crossbars" / "hermes-64core.toml", _load_chip),
    "digital": (ROOT / "crossbars" / "digital-gpu.toml", _load_digital),
}


@pytest.mark.parametrize("kind", sorted(CARDS))
@HYPO
@given(data=st.data())
def test_generated_bad_cards(kind, data, tmp_path):
    source, load = CARDS[kind]
    doc = read_doc(source)
    path = data.draw(st.sampled_from(leaf_paths(doc)), label="field")
    value = data.draw(hostile, label="value")
    card = tmp_path / f"hostile-{kind}.toml"
    card.write_text(to_toml(mutated(doc, path, value)))
    try:
        load(card)
    except MemsimError as exc:
        assert_names(exc, path)
    # (a value that happens to be valid loads: nothing to check)


@pytest.mark.parametrize("kind", sorted(CARDS))
@HYPO
@given(data=st.data())
def test_generated_unknown_fields(kind, data, tmp_path):
    source, load = CARDS[kind]
    doc = read_doc(source)
    tables = [p for p in leaf_paths(doc) if isinstance(doc.get(p[0]), dict) and len(p) == 1]
    table = data.draw(st.sampled_from(tables))
    name = data.draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True))
    if name in doc[table[0]]:
        return
    card = tmp_path / f"unknown-{kind}.toml"
    card.write_text(to_toml(mutated(doc, (*table, name), {"value": 1.0, "unit": "1",
                                                          "source": "x"})))
    with pytest.raises(MemsimError) as err:
        load(card)
    assert name in str(err.value)


def test_conductance_unit_slip_is_refused(tmp_path):
    """g_max = 0.9 S (meant 0.9 µS... or 9 µS): far above any memristive device."""
    doc = read_doc(ROOT / "devices" / "pcm-generic.toml")
    doc["conductance"]["g_max"] = {"value": 0.9, "unit": "S", "source": "typo"}
    card = tmp_path / "slip.toml"
    card.write_text(to_toml(doc))
    with pytest.raises(memsim.CardError, match="implausibly large") as err:
        memsim.load_device(card)
    assert "conductance.g_max" in str(err.value) and "10 mS" in str(err.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary", b"[card\n", b""])
def test_unreadable_card_files(tmp_path, content):
    card = tmp_path / "odd.toml"
    card.write_bytes(content)
    with pytest.raises(memsim.CardError) as err:
        memsim.load_device(card)
    assert "odd" in str(err.value)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(memsim.CardError, match="not a file"):
        memsim.load_device(folder)
    for name in ("", "a\x00b", 5, None):
        with pytest.raises(memsim.CardError):
            memsim.load_device(name)


# --- study files ---------------------------------------------------------------------------------

BASE = {"workload": "digits-mlp", "chip": "hermes-64core", "tile": "hermes-core",
        "device": "pcm-hermes-2dev", "evaluator": "accuracy-energy", "seeds": 1,
        "base_seed": 1, "metrics": ["accuracy", "energy_j"]}


def study(tmp_path: Path, *, grid: dict | None = None, fixed: dict | None = None,
          **top: Any) -> Path:
    doc = {**BASE, **top}
    doc = {k: v for k, v in doc.items() if v is not None}
    doc["grid"] = grid or {"adc_bits": [4, 8]}
    if fixed:
        doc["fixed"] = fixed
    path = tmp_path / "hostile-study.toml"
    path.write_text(to_toml(doc))
    return path


@pytest.mark.parametrize("kwargs, needle", [
    ({"fixed": {"measure_accuracy": "false"}}, "measure_accuracy"),
    ({"fixed": {"test_samples": -5}}, "test_samples"),
    ({"fixed": {"test_samples": 100000}}, "test_samples"),
    ({"grid": {"time_s": [1, 1.0]}}, "the same value"),
    ({"metrics": ["acuracy"]}, "did you mean 'accuracy'"),
    ({"fixed": {"adc_bitz": 4}}, "did you mean 'adc_bits'"),
    ({"fixed": {"noise_scale": 1e6}}, "noise_scale"),
    ({"device": "pcm-genric"}, "pcm-genric"),
    ({"tile": "hermes-64core"}, "is a chip card, not a tile card"),
    ({"grid": {"adc_bits": [4.0, 8]}}, "adc_bits"),
    ({"grid": {"adc_bits": [4, 30]}}, "adc_bits"),
    ({"fixed": {"measure_accuracy": False}}, "'accuracy' is not a metric"),
    ({"grid": {"measure_accuracy": [True, False]}}, "does not return 'accuracy'"),
    ({"metrics": ["acuracy"]}, "'acuracy' is not a metric"),
    ({"device": None}, "needs 'device'"),
    ({"fixed": {"batch": 64}}, "'batch' is not a parameter"),
    ({"fixed": {"training": "hwa"}, "workload": "lenet5"}, "training = 'hwa'"),
    ({"fixed": {"digital": ["digital-gpu", "hermes-core"]}}, "not a digital card"),
    ({"fixed": {"time_s": -1.0}}, "time_s"),
    ({"fixed": {"encoding": "pwm_2phase"}}, "encoding"),
    ({"fixed": {"rows": 0}}, "rows"),
])
def test_study_values_are_typed_at_load_time(tmp_path, kwargs, needle):
    """Each is refused when the study is loaded, before any point runs, naming the file."""
    path = study(tmp_path, **kwargs)
    with pytest.raises(memsim.StudyError) as err:
        load_study(path)
    assert needle in str(err.value) and "hostile-study.toml" in str(err.value)


def test_valid_study_values_are_kept_as_written(tmp_path):
    spec = load_study(study(tmp_path, grid={"adc_bits": [4, "none"], "time_s": [1, 86400.0]},
                            fixed={"measure_accuracy": True, "test_samples": 100}))
    assert spec.grid["adc_bits"] == (4, "none") and spec.fixed["test_samples"] == 100
    assert [type(v) for v in spec.grid["time_s"]] == [int, float]  # not converted


def test_evaluate_point_checks_a_config_given_directly():
    config = {k: v for k, v in BASE.items() if k in ("workload", "chip", "tile", "device")}
    with pytest.raises(memsim.StudyError, match="measure_accuracy"):
        evaluate_point({**config, "measure_accuracy": "false"}, 1)
    with pytest.raises(memsim.StudyError, match="test_samples"):
        evaluate_point({**config, "test_samples": -5}, 1)


def test_no_accuracy_is_a_null_with_a_reason():
    from memsim.studies.runner import NoValue

    m = evaluate_point({"workload": "lenet5", "chip": "hermes-64core", "tile": "hermes-core",
                        "device": "pcm-hermes-2dev", "inferences": 2}, 1)
    assert isinstance(m["accuracy"], NoValue) and "random weights" in m["accuracy"].reason
    assert m["energy_j"] > 0


def _ok_for(p, v) -> bool:
    """Independent statement of what each declared kind accepts."""
    if p.kind == "bool":
        return isinstance(v, bool)
    if p.kind in ("int", "real"):
        if p.none and v == "none":
            return True
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if p.kind == "int" and not isinstance(v, int):
            return False
        return math.isfinite(v) and (p.lo is None or v >= p.lo) and (p.hi is None or v <= p.hi) \
            and not (p.lo_open and v == p.lo)
    if p.kind == "choice":
        return v in p.choices
    return True  # card names: checked against the card files


@HYPO
@given(key=st.sampled_from(sorted(k for k, p in PARAMS.items() if p.kind not in
                                  ("card", "cards"))),
       value=st.one_of(hostile.filter(lambda v: not isinstance(v, dict)),
                       st.sampled_from(["plain", "hwa", "global", "pwm_4phase", "error"])))
def test_generated_study_values(key, value, tmp_path):
    p = PARAMS[key]
    spec_data = {**BASE, "grid": {"time_s": [1.0]}, "fixed": {key: value}}
    if key == "time_s":
        spec_data["grid"] = {"adc_bits": [8]}
    try:
        spec = StudySpec.from_dict(spec_data, source="gen.toml", default_name="gen")
        check_study(spec, "accuracy-energy")
    except memsim.StudyError as exc:
        assert key in str(exc) and "gen.toml" in str(exc), str(exc)
        return
    assert _ok_for(p, value), (key, value)  # accepted: exactly what the declaration allows
    assert spec.fixed[key] == value or (value != value)  # kept as written, not converted


# --- CLI options ---------------------------------------------------------------------------------

OPTIONS = [
    (["tile", "generic-256"], "--batch", 1),
    (["tile", "generic-256"], "--seed", 0),
    (["device", "ideal"], "--devices", 1),
    (["device", "ideal"], "--seed", 0),
    (["demo"], "--seeds", 1),
    (["drift"], "--seeds", 1),
    (["drift"], "--seed", 0),
    (["map", "lenet5"], "--seed", 0),
    (["study", "run", "drift"], "--workers", 0),
    (["study", "run", "drift"], "--connect-timeout", 1e-9),
]


@HYPO
@given(case=st.sampled_from(OPTIONS),
       value=st.one_of(st.integers(-10**6, 0), st.floats(allow_nan=True), st.text(max_size=5)))
def test_generated_bad_options_name_the_option(case, value):
    argv, option, lowest = case
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        number = float(text)
    except ValueError:
        number = None
    valid_int = re.fullmatch(r"[+-]?\d+", text.strip()) is not None
    if number is not None and math.isfinite(number) and number >= lowest and (
            valid_int or option == "--connect-timeout"):
        return  # a valid value: not this test's business
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*argv, f"{option}={text}"])
    assert exit_.value.code == 2
    assert f"argument {option}" in err.getvalue()


@pytest.mark.parametrize("argv, needle", [
    (["tile", "generic-256", "--batch", "0"], "--batch"),
    (["tile", "generic-256", "--batch", "-1"], "--batch"),
    (["tile", "generic-256", "--seed", "-1"], "--seed"),
    (["demo", "--seeds", "0"], "--seeds"),
    (["drift", "--training", "plain,hw"], "--training"),
    (["drift", "--compensation", ""], "--compensation"),
])
def test_bad_options_of_the_issue(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"argument {needle}" in capsys.readouterr().err


def test_tile_defaults_work_and_list_shows_tiles_only(capsys):
    assert main(["tile", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert set(names) == {"generic-256", "hermes-core", "isaac-xbar"}
    for name in names:  # every tile works with its default device
        assert main(["tile", name, "--batch", "8", "--json"]) == 0, name
        data = json.loads(capsys.readouterr().out)
        assert all(np.isfinite(r["relative_error"]) for r in data["accuracy"])


def test_map_and_drift_pick_or_check_devices_that_fit_the_tile(capsys):
    assert main(["map", "lenet5", "--tile", "generic-256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "pcm-hermes-1dev"
    # drift with a device that does not fit: refused at once, before any device runs
    assert main(["drift", "--tile", "generic-256", "--devices", "pcm-generic,pcm-hermes-2dev",
                 "--quick", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "--devices: pcm-hermes-2dev does not fit tile 'generic-256'" in err


@HYPO
@given(argv=st.one_of(
    st.tuples(st.just("tile"), st.text(min_size=1, max_size=12)),
    st.tuples(st.just("map"), st.text(min_size=1, max_size=12)),
    st.tuples(st.just("study"), st.sampled_from(["show", "report"]),
              st.text(min_size=1, max_size=12)),
    st.tuples(st.just("chip"), st.just("--network"), st.text(min_size=1, max_size=12),
              st.just("--no-figures"))))
def test_generated_names_never_give_a_traceback(argv, tmp_path_factory):
    argv = [a for a in argv]
    if any(a.startswith("-") and a not in ("--network", "--no-figures") for a in argv):
        return  # would be read as an option
    if argv[0] == "study":
        argv += ["--out", str(tmp_path_factory.mktemp("o"))]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: a usage error
            code = exc.code
    assert "Traceback" not in err.getvalue()
    assert "internal error" not in err.getvalue(), err.getvalue()
    assert code in (0, 2), (argv, err.getvalue())


def test_errors_are_one_line_and_debug_shows_the_traceback(capsys, tmp_path):
    assert main(["device", "pcm-genric", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["--debug", "device", "pcm-genric", "--no-figures"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    assert main(["device", "pcm-genric", "--no-figures", "--debug"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    # the chip command (memsim.cli.chip) goes through the same handler
    assert main(["chip", "--network", "no-such-net", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memsim: error: ") and "Traceback" not in err


def test_unwritable_out_is_refused_before_the_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for argv in (["device", "ideal", "--devices", "200"], ["demo"],
                 ["study", "run", "drift", "--quick", "--workers", "0"]):
        code = main([*argv, "--out", str(blocker / "sub")])
        err = capsys.readouterr().err
        assert code == 2, err
        assert str(blocker / "sub") in err and "--out" in err and "Traceback" not in err


def test_internal_errors_and_ctrl_c(monkeypatch, capsys, tmp_path):
    import memsim.cli.tile as tile_command

    def boom(args):
        raise TypeError("unexpected")

    monkeypatch.setattr(tile_command, "run", boom)
    assert main(["tile", "x"]) == 1
    err = capsys.readouterr().err
    assert "internal error: TypeError: unexpected" in err and "--debug" in err
    assert "Traceback" not in err

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tile_command, "run", interrupted)
    assert main(["tile", "x"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_while_a_report_is_written_keeps_the_old_one(tmp_path, monkeypatch):
    """The report is published atomically: Ctrl-C in the middle leaves the previous file."""
    from memsim._io import atomic_write_text

    target = tmp_path / "study.md"
    atomic_write_text(target, "old report\n")

    def interrupted_write(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new report\n")
    monkeypatch.undo()
    assert target.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["study.md"]  # no stray temporary file


# --- arrays and layers ---------------------------------------------------------------------------

def tiny_graph() -> Graph:
    rng = np.random.default_rng(0)
    g = Graph((1, 6, 6), "tiny")
    h = g.conv2d(g.input, rng.standard_normal((2, 1, 3, 3)), np.zeros(2), padding=1,
                 name="conv")
    h = g.flatten(g.maxpool2d(g.relu(h), 2))
    g.set_output(g.linear(h, rng.standard_normal((3, 18)), name="fc"))
    return g


def test_complex_and_object_arrays_are_refused():
    dev = memsim.load_device("pcm-generic")
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error instead
        with pytest.raises(memsim.InputError, match="complex"):
            dev.program(np.array([1e-6 + 1e-7j, 2e-6]), rng)
        with pytest.raises(memsim.InputError, match="complex"):
            tiny_graph().forward(np.ones((2, 1, 6, 6)) * (1 + 1j))
    with pytest.raises(memsim.InputError, match="Python objects"):
        dev.program(np.array([1e-6, "x"], dtype=object), rng)
    with pytest.raises(memsim.InputError, match="not an array of numbers"):
        dev.program([[1e-6, 2e-6], [3e-6]], rng)
    with pytest.raises(memsim.InputError, match="text"):
        tiny_graph().forward(np.full((1, 1, 6, 6), "a"))
    with pytest.raises(memsim.InputError, match="one sample"):
        tiny_graph().forward(np.ones((1, 6, 6)))
    with pytest.raises(memsim.ConfigError, match="t = "):
        dev.read(dev.program(np.array([1e-6]), rng), t=1j, rng=rng)


def test_empty_batch_gives_an_empty_output():
    g = tiny_graph()
    assert g.forward(np.empty((0, 1, 6, 6))).shape == (0, 3)
    net = memsim.map_network(g, tile="generic-256", device="ideal")
    net.program(np.random.default_rng(0))
    out = net.forward(np.empty((0, 1, 6, 6)), 1.0, np.random.default_rng(1))
    assert out.shape == (0, 3)


@pytest.mark.parametrize("build, needle", [
    (lambda g, w: g.conv2d(g.input, w, groups=0), "groups"),
    (lambda g, w: g.conv2d(g.input, w, groups=2.0), "groups"),
    (lambda g, w: g.conv2d(g.input, w, stride=0), "stride"),
    (lambda g, w: g.conv2d(g.input, w, padding=-1), "padding"),
    (lambda g, w: g.conv2d(g.input, w, dilation=0), "dilation"),
    (lambda g, w: g.conv2d(g.input, w, stride=(1, 0)), "stride"),
    (lambda g, w: g.conv2d(g.input, w, bias=np.zeros(3)), "bias"),
    (lambda g, w: g.conv2d(g.input, w[:, :, :, :0]), "non-empty"),
    (lambda g, w: g.conv1d(g.input, w[:, :, 0], groups=-1), "groups"),
    (lambda g, w: g.maxpool2d(g.input, 0), "kernel"),
    (lambda g, w: g.maxpool2d(g.input, 2, stride=0), "stride"),
    (lambda g, w: g.avgpool2d(g.input, 2, padding=2), "padding"),
    (lambda g, w: g.batchnorm(g.input, np.zeros(1), -np.ones(1)), "negative"),
    (lambda g, w: g.batchnorm(g.input, np.zeros(1), np.ones(1), eps=0.0), "eps"),
    (lambda g, w: g.linear(g.input, np.ones((2, 3)) * 1j), "complex"),
    (lambda g, w: g.linear(g.input, np.ones(3)), "2-D"),
    (lambda g, w: g.linear(g.input, np.ones((2, 3)), np.ones(3)), "bias"),
    (lambda g, w: g.lstm(g.input, np.ones((8, 3)), np.ones((8, 3))), "LSTM"),
    (lambda g, w: g.linear("nope", np.ones((2, 3))), "nope"),
    (lambda g, w: g.set_output("nope"), "nope"),
    (lambda g, w: g.activation(g.input, "swish"), "swish"),
])
def test_layer_hyper_parameters_are_checked_when_built(build, needle):
    g = Graph((1, 6, 6), "net")
    w = np.ones((2, 1, 3, 3))
    with pytest.raises(MemsimError, match=re.escape(needle)):
        build(g, w)


@pytest.mark.parametrize("shape", [(0,), (2.5,), (-1, 3), (), "abc", (True,)])
def test_bad_input_shapes(shape):
    with pytest.raises(memsim.ConfigError):
        Graph(shape)


def test_nan_made_inside_the_network_is_named():
    """noise_scale = 1e6: the NaN comes from a layer, not from the input."""
    g = tiny_graph()
    with pytest.raises(memsim.NumericalError, match=r"layer 'conv' \(conv2d\) produced"):
        g.forward(np.ones((2, 1, 6, 6)), matmul=lambda n, k, a: np.full((a.shape[0], 2),
                                                                           np.nan))
    from memsim.workloads.digits import digits_model, load_digits_split

    pytest.importorskip("torch", reason="the digits models are trained with torch")
    dev = memsim.load_device("pcm-hermes-2dev").with_noise(programming=1e6, drift_spread=1e6,
                                                           read=1e6)
    net = memsim.map_network(digits_model("mlp"), tile="hermes-core", device=dev)
    x = load_digits_split()[2][:20]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow in the tile
        net.program(np.random.default_rng(0))
        with pytest.raises(memsim.NumericalError, match="fc1") as err:
            net.forward(x, 1.0, np.random.default_rng(1))
    assert "input contains" not in str(err.value)  # the layer that made it is named


@HYPO
@given(dtype=st.sampled_from(["complex128", "complex64", "object", "U3", "datetime64[s]"]),
       shape=st.tuples(st.integers(0, 3), st.integers(1, 4)))
def test_generated_bad_arrays(dtype, shape):
    dev = memsim.load_device("ideal")
    a = np.zeros(shape, dtype=dtype)
    with pytest.raises(memsim.InputError) as err:
        dev.program(a, np.random.default_rng(0))
    assert "g_target" in str(err.value)
    g = Graph((shape[1],), "flat")
    g.set_output(g.linear(g.input, np.ones((2, shape[1])), name="fc"))
    with pytest.raises(memsim.InputError) as err:
        g.forward(a)
    assert "input" in str(err.value)


# --- the model cache -----------------------------------------------------------------------------

def test_two_writers_of_one_cached_model(tmp_path, monkeypatch):
    """Two processes training on a cold cache at once: each writes its own temporary file,
    the published file is always one whole model (before: one shared temporary name, so a
    half-written file was published, or the second rename failed)."""
    from memsim.workloads import digits

    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path))
    real_savez = np.savez
    halfway = threading.Barrier(2, timeout=10)
    payload = {}

    def fake_train(model, x, y, **kwargs):
        return payload[threading.get_ident()]

    def slow_savez(file, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        fh = open(file, "wb") if isinstance(file, str | Path) else file
        fh.write(data[: len(data) // 2])
        fh.flush()
        halfway.wait()  # both writers are in the middle of their file
        fh.write(data[len(data) // 2:])
        if fh is not file:
            fh.close()

    monkeypatch.setattr(digits, "train", fake_train)
    monkeypatch.setattr(digits.np, "savez", slow_savez)
    shapes = {"fc1.weight": (100, 64), "fc1.bias": (100,), "fc2.weight": (10, 100),
              "fc2.bias": (10,)}
    errors = []

    def writer(fill: float) -> None:
        payload[threading.get_ident()] = {k: np.full(s, fill) for k, s in shapes.items()}
        try:
            digits.digits_model("mlp", retrain=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (cached,) = tmp_path.glob("digits-mlp-*.npz")
    with np.load(cached) as f:
        fills = {float(np.unique(f[k])[0]) for k in f.files}
        assert len(fills) == 1 and all(np.unique(f[k]).size == 1 for k in f.files)
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no temporary left
