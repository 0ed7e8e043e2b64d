"""`cnnzoo.serving.Client` against the TF Serving REST stand-in running real exported SavedModels."""
import io
import socket

import numpy as np
import pytest
from PIL import Image

import cnnzoo
from cnnzoo.export import load_runner
from cnnzoo.serving import Client, ServingError


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predict_sends_instances_and_returns_the_signature_outputs(stand_in, served_models, digit_images):
    client = cnnzoo.serving.Client(f"{stand_in.url}/v1/models/digits", timeout=30)
    images = digit_images[:5]
    got = client.predict(images)
    expected = load_runner(served_models / "digits" / "2").outputs(images)      # newest version by default
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-6)
    assert got["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"])
    assert got["class_names"].tolist() == [[n.decode() for n in row] for row in expected["class_names"]]
    assert stand_in.requests[-1] == ("POST", "/v1/models/digits:predict")


def test_predict_bytes_sends_b64_to_serving_bytes(stand_in, digit_images):
    client = Client(stand_in.url, model="digits", timeout=30)
    images = digit_images[5:8]
    from_bytes = client.predict_bytes([_png(image) for image in images])
    from_pixels = client.predict(images)
    np.testing.assert_allclose(from_bytes["probabilities"], from_pixels["probabilities"], atol=1e-6)
    single = client.predict_bytes(_png(images[0]))
    assert single["class_ids"].shape == (1, 2)


def test_version_and_label_select_the_served_version(stand_in, served_models, digit_images):
    image = digit_images[:2]
    v1 = load_runner(served_models / "digits" / "1").predict(image)
    v2 = load_runner(served_models / "digits" / "2").predict(image)
    assert np.abs(v1 - v2).max() > 1e-3                        # the two versions are different models
    url = f"{stand_in.url}/v1/models/digits"
    np.testing.assert_allclose(Client(url, version=1).predict(image)["probabilities"], v1, atol=1e-6)
    np.testing.assert_allclose(Client(url, label="canary").predict(image)["probabilities"], v2, atol=1e-6)
    np.testing.assert_allclose(Client(url + "/labels/stable").predict(image)["probabilities"], v1, atol=1e-6)
    np.testing.assert_allclose(Client(url).predict(image, version=1)["probabilities"], v1, atol=1e-6)
    assert ("POST", "/v1/models/digits/labels/canary:predict") in stand_in.requests
    assert ("POST", "/v1/models/digits/versions/1:predict") in stand_in.requests


def test_status_and_metadata(stand_in):
    client = Client(f"{stand_in.url}/v1/models/digits")
    assert client.status()["model_version_status"][0]["version"] == "2"
    assert client.status(version=1)["model_version_status"][0]["state"] == "AVAILABLE"
    signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"] == ["images"]
    assert signatures["serving_bytes"]["inputs"] == ["image_bytes"]


def test_server_errors_become_serving_errors_with_the_servers_text(stand_in, digit_images):
    with pytest.raises(ServingError, match="404.*Servable not found") as info:
        Client(f"{stand_in.url}/v1/models/nope").predict(digit_images[:1])
    assert info.value.status == 404
    with pytest.raises(ServingError, match="Specific\\(digits, 7\\)"):
        Client(f"{stand_in.url}/v1/models/digits", version=7).predict(digit_images[:1])
    with pytest.raises(ServingError, match="(?s)400.*Unknown image file format") as info:
        Client(f"{stand_in.url}/v1/models/digits").predict_bytes(b"definitely not a jpeg")
    assert info.value.status == 400 and "image" in info.value.detail


def test_timeouts_and_unreachable_servers_are_clear(stand_in, digit_images):
    stand_in.delay = 1.0
    try:
        with pytest.raises(ServingError, match="within timeout=0.2 s"):
            Client(f"{stand_in.url}/v1/models/digits", timeout=0.2).predict(digit_images[:1])
    finally:
        stand_in.delay = 0.0
    with socket.socket() as probe:                             # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServingError, match="Cannot reach TF Serving at http://127.0.0.1"):
        Client(f"http://127.0.0.1:{port}/v1/models/digits", timeout=5).predict(digit_images[:1])


def test_client_checks_its_arguments(digit_images):
    cases = [
        (dict(url="localhost:8501/v1/models/x"), ValueError, "url="),
        (dict(url="http://localhost:8501"), ValueError, "model=None"),
        (dict(url="http://h:8501/v1/models/x", version=1, label="stable"), ValueError, "label='stable'"),
        (dict(url="http://h:8501/v1/models/x", version=0), ValueError, "version=0"),
        (dict(url="http://h:8501/v1/models/x", timeout=0), ValueError, "timeout=0"),
        (dict(url="http://h:8501/v1/models/x", model="y"), ValueError, "model='y'"),
        (dict(url="http://h:8501/v2/things"), ValueError, "url="),
    ]
    for kwargs, error, text in cases:
        with pytest.raises(error, match="Received") as info:
            Client(**kwargs)
        assert text in str(info.value), kwargs
    client = Client("http://h:8501/v1/models/x")
    with pytest.raises(TypeError, match="uint8"):
        client.predict(digit_images[:1].astype(np.float32))
    with pytest.raises(TypeError, match="encoded"):
        client.predict_bytes("not bytes")
    assert client.model_url(label="canary") == "http://h:8501/v1/models/x/labels/canary"
