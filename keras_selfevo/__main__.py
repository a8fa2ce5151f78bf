"""``python -m keras_selfevo``: the ``keras-selfevo`` command, for environments without it."""

from keras_selfevo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
