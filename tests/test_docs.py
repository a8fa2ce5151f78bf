"""The documentation: the site builds strictly, and no page restates a figure wrongly.

Every measured figure lives in one place, the model card or ``benchmarks/README.md`` that
also gives the command that measured it. A README or guide may quote one, but only beside a
link to that source, and only as the source states it: a figure here is a number with a
decimal point outside code (settings are written as code, versions are named as versions).
"""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The pages that quote figures; the cards and benchmarks/README.md are the sources.
PAGES = ["README.md", "models/README.md", *sorted(
    os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                      recursive=True))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`]*`", re.S)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
VERSION = re.compile(r"\b(?:Python|Apache|TensorFlow|Keras|version|v)\s*\d+(?:\.\d+)+")
FIGURE = re.compile(r"(?<![\d.])\d+\.\d+(?!\d|\.\d)")
HEADING = re.compile(r"^#{1,6} ", re.M)


def _units(text: str) -> list[tuple[str, str]]:
    """(unit, its section) pairs: paragraphs, and table rows one by one."""
    units = []
    for section in HEADING.split(FENCE.sub("", text)):
        for block in re.split(r"\n\s*\n", section):
            lines = block.strip().splitlines()
            if lines and all(line.lstrip().startswith("|") for line in lines):
                units += [(line, section) for line in lines]
            elif lines:
                units.append((block, section))
    return units


def _sources(unit: str, page: str) -> list[str]:
    folder = os.path.dirname(os.path.join(ROOT, page))
    return [os.path.normpath(os.path.join(folder, target)) for target in LINK.findall(unit)
            if target.endswith(".md") and not target.startswith(("http:", "https:"))]


def _figures(unit: str) -> list[str]:
    prose = VERSION.sub("", CODE.sub("", LINK.sub("]", unit)))
    return FIGURE.findall(prose)


def _stated_in(figure: str, path: str) -> bool:
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as handle:
        return re.search(rf"(?<![\d.]){re.escape(figure)}(?!\d|\.\d)", handle.read()) is not None


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_a_page_quotes_is_its_source_figure(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
        text = handle.read()
    wrong = []
    for unit, section in _units(text):
        figures = _figures(unit)
        if not figures:
            continue
        sources = _sources(unit, page) or _sources(section, page)
        for figure in figures:
            if not any(_stated_in(figure, source) for source in sources):
                shown = [os.path.relpath(source, ROOT) for source in sources] or "no source"
                wrong.append(f"{figure} ({shown}): {' '.join(unit.split())[:160]}")
    assert not wrong, f"{page} states figures its linked sources do not:\n" + "\n".join(wrong)


def test_the_check_sees_a_figure_that_differs_from_its_source(tmp_path):
    card = tmp_path / "card.md"
    card.write_text("| accuracy | 0.9594 |\n")
    assert _stated_in("0.9594", str(card)) and not _stated_in("0.959", str(card))
    unit = "Accuracy 0.959 ([card](card.md)); settings are code: `alpha=0.5`, Python 3.11."
    assert _figures(unit) == ["0.959"]


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: no broken link, no missing API reference, no bad docstring."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for page in ("index.html", "docs/api/training/index.html", "docs/guides/recipes/index.html",
                 "models/mnist_cnn/index.html", "tutorials/01_self_evolving_model/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    reference = (tmp_path / "site" / "docs" / "api" / "training" / "index.html").read_text()
    assert 'id="keras_selfevo.training.SelfEvolvingModel"' in reference
