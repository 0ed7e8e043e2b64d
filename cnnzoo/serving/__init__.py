"""Client side of deployment: `Client` for TF Serving's REST API (see deploy/ for the server side).

Example:
    >>> client = cnnzoo.serving.Client("http://localhost:8501/v1/models/digits")   # doctest: +SKIP
    >>> client.predict(images)["class_names"]                                       # doctest: +SKIP
"""
from cnnzoo.serving.client import BYTES_SIGNATURE, DEFAULT_SIGNATURE, Client, ServingError, parse_predictions

__all__ = ["Client", "ServingError", "parse_predictions", "DEFAULT_SIGNATURE", "BYTES_SIGNATURE"]
