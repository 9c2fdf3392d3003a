"""The one time grid: how long after programming memsim reads a device, tile or network.

A year is the Julian year, 365.25 days = 31 557 600 s (IAU; the year of the drift studies
of Joshi et al., Nat. Commun. 11, 2473, 2020, Fig. 4, from 1 s to 1 year and beyond). Every
table and figure of memsim that reports "1 day" or "1 year" reads its time from here, so the
same label means the same number of seconds everywhere; the shipped study files
(``studies/*.toml``) use only points of :data:`TIME_GRID` (a test checks it).

"1 month" is 2.63e6 s (30.44 days, rounded to three digits; YEAR/12 would be 2.6298e6 s):
kept at the value the drift studies have always used, so that their results compare.
"""

from __future__ import annotations

from memsim.errors import ConfigError

__all__ = ["DAY", "HOUR", "MONTH", "TIME_GRID", "YEAR", "time_points"]

HOUR = 3600.0
DAY = 86400.0
YEAR = 365.25 * DAY  # Julian year: 31 557 600 s
MONTH = 2.63e6  # about YEAR/12, rounded (module docstring)

#: (label, seconds after programming) from 1 s to 10 years.
TIME_GRID: tuple[tuple[str, float], ...] = (
    ("1 s", 1.0),
    ("1 h", HOUR),
    ("1 day", DAY),
    ("1 month", MONTH),
    ("1 year", YEAR),
    ("10 years", 10 * YEAR),
)


def time_points(*labels: str) -> tuple[tuple[str, float], ...]:
    """The points of :data:`TIME_GRID` with these labels (all of it with none), in grid
    order; a :class:`ConfigError` names an unknown label."""
    known = dict(TIME_GRID)
    unknown = [x for x in labels if x not in known]
    if unknown:
        raise ConfigError(f"time labels {unknown} are not on the time grid; known: "
                          f"{', '.join(known)}")
    return tuple(p for p in TIME_GRID if not labels or p[0] in labels)
