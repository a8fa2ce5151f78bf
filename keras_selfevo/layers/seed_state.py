"""Keep a layer's random-generator state in its saved weights."""

from __future__ import annotations

_KEY = "seed_state"


class SavesSeedState:
    """Mixin for layers with a ``seed_generator`` and no other variables.

    Keras does not save a ``SeedGenerator``'s state with the weights, so a model reloaded
    (or restored by ``BackupAndRestore``) would replay the random stream from its start.
    With this mixin the state is saved and restored, and a resumed run draws what an
    uninterrupted one would.
    """

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        store[_KEY] = self.seed_generator.state

    def load_own_variables(self, store) -> None:
        if _KEY in store.keys():
            self.seed_generator.state.assign(store[_KEY])
