"""One time grid: every table, figure and shipped study reads "1 year" as the same seconds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from memsim.devices.study import STUDY_TIMES
from memsim.errors import ConfigError
from memsim.studies.demo import TIMES as DEMO_TIMES
from memsim.studies.drift import DRIFT_TIMES
from memsim.timegrid import DAY, TIME_GRID, YEAR, time_points

ROOT = Path(__file__).resolve().parent.parent


def _times(node, out: list[float]) -> list[float]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "time_s":
                out += value if isinstance(value, list) else [value]
            else:
                _times(value, out)
    return out


def test_a_year_is_the_julian_year_everywhere():
    assert YEAR == 365.25 * 86400.0 == 31557600.0 and DAY == 86400.0
    grid = dict(TIME_GRID)
    for table in (STUDY_TIMES, DRIFT_TIMES, DEMO_TIMES):
        assert all(grid[label] == t for label, t in table)
    assert grid["10 years"] == 10 * YEAR


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_studies_use_the_time_grid(path):
    times = _times(tomllib.loads(path.read_text(encoding="utf-8")), [])
    on_grid = {t for _, t in TIME_GRID}
    assert [t for t in times if float(t) not in on_grid] == []


def test_time_points_in_grid_order_and_unknown_labels_named():
    assert time_points("1 year", "1 s") == (("1 s", 1.0), ("1 year", YEAR))
    assert time_points() == TIME_GRID
    with pytest.raises(ConfigError, match=r"time labels \['1 week'\] are not on the time grid"):
        time_points("1 week")
