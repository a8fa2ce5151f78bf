"""MkDocs hooks: the site is the repository's own Markdown, at the repository's own paths.

``mkdocs.yml`` points at ``docs/``, but the pages live where a reader of the repository finds
them: the README (the home page), ``docs/guides``, the model cards in ``models/``, the
benchmarks' README and the notebooks in ``tutorials/``. :func:`on_files` therefore rebuilds
the file list from the repository with every file at its path relative to the root, so the
relative links that work on GitHub work on the site unchanged (and ``mkdocs build --strict``
fails on any that is broken). Two kinds of pages are written from the code instead of by hand:
the API reference (one page a subpackage, rendered by mkdocstrings from the docstrings) and
the guide to the recipes' keys (from the commands' field tables, the ones ``keras-selfevo
recipes NAME`` prints).
"""

from __future__ import annotations

import json
import os

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Folders whose pages and pictures are on the site, and the kinds of files taken from them.
SOURCES = {"docs": (".md", ".png"), "models": (".md", ".png"),
           "benchmarks": (".md", ".png"), "tutorials": (".md", ".ipynb")}

# The API reference: one page a subpackage, in the order a reader meets them.
API = ("training", "losses", "layers", "meta", "zoo", "evolve", "data", "export",
       "distribute", "testing", "recipes")


def _repository_files() -> list[str]:
    paths = ["README.md"]
    for folder, kinds in SOURCES.items():
        for directory, subdirs, files in os.walk(os.path.join(ROOT, folder)):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "_")))
            paths += [os.path.relpath(os.path.join(directory, name), ROOT)
                      for name in sorted(files) if name.endswith(kinds)]
    return paths


def _api_page(name: str) -> str:
    return (f"# `keras_selfevo.{name}`\n\n::: keras_selfevo.{name}\n"
            "    options:\n      show_submodules: false\n")


def _recipes_page() -> str:
    """Every recipe, and every key of each command's recipe files with its default."""
    from keras_selfevo.recipes import catalog, evolve, meta_train, train

    lines = ["# Recipes and their keys", "",
             "A recipe is a folder `models/<name>/` with a `config.json`; the three commands "
             "that run recipes (`train`, `evolve`, `meta-train`) read it over the defaults "
             "below, apply `--set KEY=VALUE` and reject unknown keys, wrong types and values "
             "out of range before any work is done. `keras-selfevo recipes NAME` prints the "
             "same table with the recipe's own values. This page is generated from the "
             "commands' field tables.", "", "## The recipes", "",
             "| Recipe | Command | Purpose |", "| --- | --- | --- |"]
    for name in catalog.names():
        row = catalog.summary(name)
        card = os.path.join("models", name, "README.md")
        shown = (f"[`{name}`](../../{card})" if os.path.exists(os.path.join(ROOT, card))
                 else f"`{name}`")
        lines.append(f"| {shown} | `{row['command']}` | {row['purpose']} |")
    for command, fields in (("train", train.FIELDS), ("evolve", evolve.FIELDS),
                            ("meta-train", meta_train.FIELDS)):
        lines += ["", f"## Keys of `{command}` recipes", "",
                  "| Key | Default | Values | Meaning |", "| --- | --- | --- | --- |"]
        for key, field in fields.items():
            default = json.dumps(field.default, ensure_ascii=False).replace("|", "\\|")
            lines.append(f"| `{key}` | `{default}` | {_cell(field.description)} | "
                         f"{_cell(field.meaning)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@event_priority(100)  # before the plugins (mkdocs-jupyter picks the notebooks from this list)
def on_files(files: Files, config) -> Files:
    """The repository's pages at their repository paths, plus the generated pages."""
    site = Files([])
    for path in _repository_files():
        site.append(File(path, src_dir=ROOT, dest_dir=config["site_dir"],
                         use_directory_urls=config["use_directory_urls"]))
    for name in API:
        site.append(File.generated(config, f"docs/api/{name}.md", content=_api_page(name)))
    site.append(File.generated(config, "docs/guides/recipes.md", content=_recipes_page()))
    # The theme's own assets (stylesheets, scripts, icons); docs/ is already in.
    docs_dir = os.path.join(os.path.abspath(config["docs_dir"]), "")
    for file in files:
        if not (file.abs_src_path or "").startswith(docs_dir):
            site.append(file)
    return site
