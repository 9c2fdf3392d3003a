"""Sphinx configuration of memsim's documentation.

Build: ``pip install -e ".[docs]"`` then ``sphinx-build -W --keep-going -b html docs
docs/_build/html`` (warnings are errors, as in CI). Pages are Markdown (MyST) and the API
reference comes from the docstrings (autodoc, autosummary).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("MEMSIM_PROGRESS", "0")

from _pages import write_card_fields, write_card_pages, write_cli_page  # noqa: E402

import memsim  # noqa: E402

project = "memsim"
author = "memsim developers"
copyright = "memsim developers"
release = version = memsim.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# cards.md (the field reference generated from memsim's card schema) is included by
# reference/cards.md, not a page of its own; _generated holds pages written at build time.
exclude_patterns = ["_build", "cards.md", "_generated/*.md", "**/.ipynb_checkpoints"]
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # an included generated page may skip heading levels

autosummary_generate = True
# each object documented once, on the page of the module that defines it (re-exports such as
# memsim.Device are listed on the API page and link there)
autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"memsim {release}"
html_static_path: list[str] = []
html_theme_options = {"description": "analog in-memory computing, from device to chip",
                      "fixed_sidebar": True}

write_card_pages(ROOT, HERE / "_generated")
write_cli_page(HERE / "_generated")
write_card_fields(HERE, HERE / "_generated")


#: Modules whose docstrings are still plain text rather than reStructuredText (|x| for an
#: absolute value, indented attribute lists without a section header). They are shown as
#: written, preformatted, so that warnings stay errors for every other docstring. A module
#: leaves this list when its docstrings parse cleanly; none is left (memsim.crossbar and
#: memsim.devices were the last). A prefix ("memsim.crossbar.engine") covers a module and
#: everything in it.
PLAIN_TEXT_MODULES: tuple[str, ...] = ()


def _plain_text(app, what, name, obj, options, lines) -> None:
    if not name.startswith(PLAIN_TEXT_MODULES) or not lines:
        return
    end = lines.index("") if "" in lines else len(lines)
    summary = [re.sub(r"(?<=\w)_(?=\W|$)", r"\\_",
                      line.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
                      .replace("`", "'")) for line in lines[:end]]
    rest = lines[end + 1:]
    lines[:] = summary + (["", "::", ""] + ["    " + line for line in rest] if rest else [])


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _plain_text, priority=100)
