"""The documentation's code runs: every ``python`` block of the getting-started and outputs
pages and of each tutorial (docs/tutorials/*.md), in order, in one namespace per page, in
a fresh folder. Each ``bash`` block line that starts with ``memsim `` runs through the
command line's ``main``; ``console`` blocks are shown, not run (commands longer than a test
allows)."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [DOCS / "getting-started.md", DOCS / "reference" / "outputs.md",
         *sorted((DOCS / "tutorials").glob("*.md"))]
_BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)

#: Seconds each page may take on a 2-core machine with a warm model cache (CI trains the
#: digits models once, in whichever test needs them first).
BUDGET_S = 120.0


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of every fenced python or bash block, in page order."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(page.read_text())]


def test_every_tutorial_page_has_code():
    names = {p.stem for p in PAGES}
    assert {"device-researcher", "ml-researcher", "chip-architect"} <= names
    for page in PAGES:
        assert any(lang == "python" for lang, _ in blocks(page)), page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
@pytest.mark.filterwarnings("error::memsim.errors.CalibrationWarning")  # pages show good use
def test_page_runs(page, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from memsim.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMSIM_PROGRESS", "0")
    namespace: dict = {"__name__": f"tutorial_{page.stem.replace('-', '_')}"}
    t0 = time.perf_counter()
    for k, (lang, code) in enumerate(blocks(page)):
        if lang == "python":
            exec(compile(code, f"{page.name}[block {k}]", "exec"), namespace)
            continue
        for line in code.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("memsim "):
                assert main([*shlex.split(line)[1:], "--quiet"]) == 0, (page.name, line)
    capsys.readouterr()
    assert time.perf_counter() - t0 < BUDGET_S
