r"""Export for serving: SavedModels in TF Serving's layout, verified in a fresh process.

``export_for_serving(model, "serving/mnist_cnn")`` writes ``serving/mnist_cnn/<version>/``
(``saved_model.pb`` + ``variables/``) with the signatures the model declares
(``model.serving_signatures()``; see :mod:`keras_selfevo.export.signatures` for plain Keras
models). :func:`serving_request` answers a TF Serving REST ``predict`` body as the server
would. To serve for real::

    docker run -p 8501:8501 -e MODEL_NAME=mnist_cnn \
        -v "$PWD/serving/mnist_cnn:/models/mnist_cnn" tensorflow/serving
    curl -d '{"instances": [...]}' http://localhost:8501/v1/models/mnist_cnn:predict
"""

from keras_selfevo.export import signatures
from keras_selfevo.export.rest import serving_request
from keras_selfevo.export.saved_model import (
    TOLERANCE,
    ExportReport,
    describe_signatures,
    export_for_serving,
    run_in_fresh_process,
)
from keras_selfevo.export.signatures import named_outputs, sample_inputs, serving_signatures

__all__ = [
    "ExportReport",
    "TOLERANCE",
    "describe_signatures",
    "export_for_serving",
    "named_outputs",
    "run_in_fresh_process",
    "sample_inputs",
    "serving_request",
    "serving_signatures",
    "signatures",
]
