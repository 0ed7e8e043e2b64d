"""A small TF Serving REST client for models exported by `cnnzoo.export`.

TF Serving's REST API (port 8501): `POST /v1/models/<name>[/versions/<n> | /labels/<label>]:predict` with
`{"signature_name": ..., "instances": [...]}`; binary values travel as `{"b64": "<base64>"}`. cnnzoo exports two
signatures: `serving_default` (uint8 images) and `serving_bytes` (encoded JPEG/PNG, sent as b64).
Standard library only (urllib), so the client has no HTTP dependency.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Sequence

import numpy as np

from cnnzoo._checks import check_float, check_int, received

DEFAULT_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serving_bytes"


class ServingError(RuntimeError):
    """TF Serving answered with an error, timed out, or could not be reached.

    Attributes: status (HTTP status or None), url, detail (the server's "error" text or the network reason).
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None, detail: str = ""):
        super().__init__(message)
        self.status = status
        self.url = url
        self.detail = detail


class Client:
    """Call a model on TF Serving's REST API.

    Args:
        url: str, "http://host:8501/v1/models/<name>" (optionally ending in /versions/<n> or /labels/<label>),
            or "http://host:8501" with `model=`.
        model: str, the model name when `url` does not hold it.
        version: int, a fixed model version (default: the newest loaded version).
        label: str, a version label from models.config ("stable", "canary"); exclusive with `version`.
        timeout: float, seconds each request may take in all (connecting, sending, the answer): a deadline, so a
            server that trickles its answer cannot hold the caller longer.

    Example:
        >>> client = Client("http://localhost:8501/v1/models/digits", timeout=5)     # doctest: +SKIP
        >>> client.predict(images_uint8)["class_names"][:, 0]                         # doctest: +SKIP
        >>> client.predict_bytes(open("cat.jpg", "rb").read())["probabilities"]      # doctest: +SKIP
    """

    def __init__(self, url: str, *, model: str | None = None, version: int | None = None,
                 label: str | None = None, timeout: float = 10.0):
        if not isinstance(url, str) or not url:
            raise TypeError(f"`url` must be a string like 'http://localhost:8501/v1/models/NAME'. "
                            f"{received('url', url)}")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"`url` must start with http:// or https:// and name a host. {received('url', url)}")
        parts = [p for p in parsed.path.split("/") if p]
        url_version = url_label = None
        if parts[:2] == ["v1", "models"] and len(parts) >= 3:
            url_model = parts[2]
            rest = parts[3:]
            if rest[:1] == ["versions"] and len(rest) == 2 and rest[1].isdigit():
                url_version = int(rest[1])
            elif rest[:1] == ["labels"] and len(rest) == 2:
                url_label = rest[1]
            elif rest:
                raise ValueError(f"`url` path must be /v1/models/NAME[/versions/N|/labels/LABEL]. "
                                 f"{received('url', url)}")
        elif not parts:
            url_model = None
        else:
            raise ValueError(f"`url` path must be empty or /v1/models/NAME. {received('url', url)}")
        if model is not None and url_model is not None and model != url_model:
            raise ValueError(f"`model` differs from the model in `url` ({url_model!r}). {received('model', model)}")
        self.model = model or url_model
        if not self.model or not isinstance(self.model, str):
            raise ValueError(f"Name the model: pass `model=` or a url ending in /v1/models/NAME. "
                             f"{received('model', model)}")
        version = url_version if version is None else version
        label = url_label if label is None else label
        if version is not None:
            version = check_int("version", version, minimum=1)
        if label is not None and (not isinstance(label, str) or not label or "/" in label):
            raise ValueError(f"`label` must be a version label such as 'stable'. {received('label', label)}")
        if version is not None and label is not None:
            raise ValueError(f"Pass `version` or `label`, not both. Received: version={version!r}, label={label!r}")
        self.version, self.label = version, label
        self.timeout = check_float("timeout", timeout, minimum=0.0, exclusive_minimum=True)
        self.base_url = f"{parsed.scheme}://{parsed.netloc}"

    # -- URLs -------------------------------------------------------------------------------------------
    def model_url(self, *, version: int | None = None, label: str | None = None) -> str:
        """The model's URL, with a version or label when one is chosen (per call, else the client's)."""
        version = self.version if version is None and label is None else version
        label = self.label if label is None and version is None else label
        url = f"{self.base_url}/v1/models/{urllib.parse.quote(self.model)}"
        if version is not None:
            url += f"/versions/{check_int('version', version, minimum=1)}"
        elif label is not None:
            url += f"/labels/{urllib.parse.quote(label)}"
        return url

    # -- requests ---------------------------------------------------------------------------------------
    @staticmethod
    def images_request(images, *, signature: str = DEFAULT_SIGNATURE) -> dict:
        """The `:predict` body for uint8 images (row format: one instance per image)."""
        from cnnzoo.data.adapt import as_rgb_uint8

        return {"signature_name": signature, "instances": as_rgb_uint8(images).tolist()}

    @staticmethod
    def bytes_request(encoded: bytes | Sequence[bytes], *, signature: str = BYTES_SIGNATURE) -> dict:
        """The `:predict` body for encoded images: one `{"b64": ...}` instance per file."""
        if isinstance(encoded, (bytes, bytearray)):
            encoded = [encoded]
        if not isinstance(encoded, (list, tuple)) or not encoded or \
                not all(isinstance(item, (bytes, bytearray)) for item in encoded):
            raise TypeError(f"`encoded` must be bytes or a non-empty list of bytes (JPEG/PNG file contents). "
                            f"{received('encoded', type(encoded).__name__)}")
        return {"signature_name": signature,
                "instances": [{"b64": base64.b64encode(bytes(item)).decode("ascii")} for item in encoded]}

    def predict(self, images, *, signature: str = DEFAULT_SIGNATURE, version: int | None = None,
                label: str | None = None) -> dict[str, np.ndarray]:
        """uint8 images [N, H, W, 3] (any H, W) -> {"probabilities", "class_ids", "class_names"} as arrays."""
        body = self.images_request(images, signature=signature)
        return self._predict(body, version=version, label=label)

    def predict_bytes(self, encoded: bytes | Sequence[bytes], *, signature: str = BYTES_SIGNATURE,
                      version: int | None = None, label: str | None = None) -> dict[str, np.ndarray]:
        """Encoded JPEG/PNG/GIF/BMP file(s) -> the same outputs as `predict`."""
        body = self.bytes_request(encoded, signature=signature)
        return self._predict(body, version=version, label=label)

    def status(self, *, version: int | None = None, label: str | None = None) -> dict:
        """GET the model's version status (TF Serving's `model_version_status`)."""
        return self._call("GET", self.model_url(version=version, label=label))

    def metadata(self, *, version: int | None = None, label: str | None = None) -> dict:
        """GET the model's signature metadata."""
        return self._call("GET", self.model_url(version=version, label=label) + "/metadata")

    def _predict(self, body: dict, *, version, label) -> dict[str, np.ndarray]:
        answer = self._call("POST", self.model_url(version=version, label=label) + ":predict", body)
        return parse_predictions(answer)

    def _call(self, method: str, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        deadline = _Deadline(self.timeout)
        opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            try:
                detail = _error_text(error.read())
            except (OSError, http.client.HTTPException):   # the error body broke off or ran past the deadline
                detail = error.reason if isinstance(error.reason, str) else ""
            raise ServingError(f"TF Serving answered {error.code} for {method} {url}: {detail}",
                               status=error.code, url=url, detail=detail) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets, early close, bad HTTP
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            if deadline.expired or isinstance(reason, (socket.timeout, TimeoutError)):
                raise ServingError(f"TF Serving did not answer {method} {url} within timeout={self.timeout:g} s.",
                                   url=url, detail=str(reason)) from None
            if isinstance(error, urllib.error.URLError):   # connecting failed: refused, no route, unknown host
                raise ServingError(f"Cannot reach TF Serving at {self.base_url} ({reason}); is the server running "
                                   "and the port published (see deploy/README.md)?", url=url,
                                   detail=str(reason)) from None
            detail = f"{type(reason).__name__}: {reason}"
            raise ServingError(f"The connection to TF Serving broke during {method} {url} ({detail}); the server "
                               "closed or reset it before a complete answer.", url=url, detail=detail) from None
        finally:
            deadline.cancel()
        try:
            return json.loads(payload)
        except ValueError:
            raise ServingError(f"TF Serving sent a non-JSON answer to {method} {url}: {payload[:200]!r}",
                               url=url) from None

    def __repr__(self) -> str:
        return f"Client({self.model_url()!r}, timeout={self.timeout:g})"


class _Deadline:
    """Shuts a request's sockets down when `seconds` have passed, whatever the server is doing.

    A socket timeout bounds each read only: a server sending a byte a second would never trip it.
    """

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:   # already closed, or the plain socket a TLS one replaced
        pass


def _watched(connection_class, deadline: _Deadline):
    """An http.client connection class whose sockets (plain, then TLS) the deadline can shut down."""

    class Watched(connection_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            create = self._create_connection

            def create_and_watch(*a, **k):
                sock = create(*a, **k)
                deadline.watch(sock)
                return sock

            self._create_connection = create_and_watch

        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._connection = _watched(http.client.HTTPConnection, deadline)

    def http_open(self, req):
        return self.do_open(self._connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._connection = _watched(http.client.HTTPSConnection, deadline)

    def https_open(self, req):
        extra = {} if getattr(self, "_check_hostname", None) is None else {"check_hostname": self._check_hostname}
        return self.do_open(self._connection, req, context=self._context, **extra)


def parse_predictions(answer: dict) -> dict[str, np.ndarray]:
    """TF Serving's predict answer (row "predictions" or columnar "outputs") -> {output name: array}."""
    return {key: value.astype(np.float32) if key == "probabilities" else value
            for key, value in _columns(answer).items()}


def _columns(answer: dict) -> dict[str, np.ndarray]:
    if "predictions" in answer:
        rows = answer["predictions"]
        if rows and isinstance(rows[0], dict):
            return {key: np.asarray([row[key] for row in rows]) for key in rows[0]}
        return {"probabilities": np.asarray(rows)}
    if "outputs" in answer:
        outputs = answer["outputs"]
        return {k: np.asarray(v) for k, v in outputs.items()} if isinstance(outputs, dict) \
            else {"probabilities": np.asarray(outputs)}
    raise ServingError(f"TF Serving's answer has neither 'predictions' nor 'outputs': {str(answer)[:200]}")


def _error_text(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("error", payload.decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        return payload.decode("utf-8", "replace")[:500]
