"""Packaging shim: the metadata lives in pyproject.toml (PEP 621).

The build also copies every recipe file, ``models/<name>/config.json``, into the package
(``keras_selfevo/recipes/shipped/<name>/config.json``), so an installed package runs the
recipes by name; ``models/`` stays their one source.
"""

import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRecipes(build_py):
    """``build_py`` that also ships the recipe files inside the package."""

    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        for config in sorted(glob.glob(os.path.join(here, "models", "*", "config.json"))):
            name = os.path.basename(os.path.dirname(config))
            target = os.path.join(self.build_lib, "keras_selfevo", "recipes", "shipped", name)
            os.makedirs(target, exist_ok=True)
            shutil.copyfile(config, os.path.join(target, "config.json"))


setup(cmdclass={"build_py": BuildWithRecipes})
