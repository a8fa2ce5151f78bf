"""The package's private helpers: argument checks, files, processes, plots, Keras internals."""
