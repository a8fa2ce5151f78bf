"""The base of this package's TFDS builders: their data is generated locally, never fetched."""

from __future__ import annotations

import tensorflow_datasets as tfds


class LocalDatasetInfo(tfds.core.DatasetInfo):
    """The ``DatasetInfo`` of a local builder: nothing about it is on TFDS's bucket.

    TFDS asks its bucket for precomputed information whenever a builder is made for a
    ``data_dir`` that does not hold the dataset yet, and makes an empty temporary folder for
    the answer first, which it never removes (one more in the system's temporary directory
    per command run on a fresh ``data_dir``). A local dataset is never there: skip the call.
    """

    def initialize_from_bucket(self) -> None:
        """Nothing to fetch: the information comes from the generation itself."""


class LocalInfo:
    """A mixin for a TFDS builder whose data never comes from TFDS's bucket.

    This package's builders, and TFDS's ``mnist`` read from local files: their ``info`` is a
    :class:`LocalDatasetInfo`. Put it before the TFDS builder class in the bases.
    """

    @property
    def info(self) -> tfds.core.DatasetInfo:
        """TFDS's ``DatasetInfo`` of this builder (made once), as a :class:`LocalDatasetInfo`."""
        info = super().info
        info.__class__ = LocalDatasetInfo  # the same object, without the bucket lookup
        return info


class LocalBuilder(LocalInfo, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A ``GeneratorBasedBuilder`` whose data is generated on this machine.

    TFDS announces every preparation as a download ("Downloading and preparing dataset
    Unknown size ..."); these builders say what they do instead: generate locally, once,
    into ``data_dir``.
    """

    def _log_download_bytes(self) -> None:
        config = f"/{self.builder_config.name}" if self.builder_config else ""
        print(f"Generating {self.name}{config} {self.version} locally (nothing is downloaded) "
              f"into {self.data_dir} (first use only) ...", flush=True)

    def _log_download_done(self) -> None:
        # The line above said it all; TFDS's would call the generation a download.
        pass
