import json

import pytest


@pytest.fixture
def write_recipe(tmp_path):
    """``write(config, **changes)``: a recipe folder whose config.json is ``config`` changed."""

    def write(config: dict, **changes) -> str:
        folder = tmp_path / "recipe"
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text(json.dumps({**config, **changes}))
        return str(folder)

    return write
