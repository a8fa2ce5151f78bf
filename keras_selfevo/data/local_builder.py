"""The base of this package's TFDS builders: their data is generated locally, never fetched."""

from __future__ import annotations

import tensorflow_datasets as tfds


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
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
