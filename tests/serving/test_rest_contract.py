"""Contract without a server: REST request JSON -> TF Serving's decoding -> the exported signatures."""
import base64
import io
import json

import numpy as np
import tensorflow as tf
from PIL import Image

from cnnzoo.serving import Client


def _encode(image, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_b64_request_gives_the_same_classes_as_the_uint8_signature(served_models, digit_images, rest):
    loaded = tf.saved_model.load(str(served_models / "digits" / "1"))
    images = digit_images[10:16]
    files = [_encode(im, "JPEG", quality=90) for im in images[:3]] + [_encode(im, "PNG") for im in images[3:]]
    wire = json.dumps(Client.bytes_request(files))             # what goes over HTTP
    body = json.loads(wire)
    assert body["signature_name"] == "serving_bytes"
    assert body["instances"][0].keys() == {"b64"} and base64.b64decode(body["instances"][0]["b64"]) == files[0]
    signature = loaded.signatures[body["signature_name"]]
    answer = rest["encode"](signature(**rest["decode"](body, signature)))
    # The uint8 signature fed the pixels those files hold.
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
    expected = loaded.signatures["serving_default"](images=pixels)
    got_ids = np.array([row["class_ids"] for row in answer["predictions"]])
    np.testing.assert_array_equal(got_ids, expected["class_ids"].numpy())
    got_names = [row["class_names"] for row in answer["predictions"]]
    assert got_names == [[n.decode() for n in row] for row in expected["class_names"].numpy()]
    np.testing.assert_allclose([row["probabilities"] for row in answer["predictions"]][3:],
                               expected["probabilities"].numpy()[3:], atol=1e-6)     # PNG is lossless


def test_instances_request_of_pixels_matches_a_direct_call(served_models, digit_images, rest):
    loaded = tf.saved_model.load(str(served_models / "digits" / "1"))
    body = json.loads(json.dumps(Client.images_request(digit_images[:4])))
    assert body["signature_name"] == "serving_default" and np.asarray(body["instances"]).shape == (4, 32, 32, 3)
    signature = loaded.signatures["serving_default"]
    inputs = rest["decode"](body, signature)
    assert inputs["images"].dtype == tf.uint8
    answer = rest["encode"](signature(**inputs))
    direct = signature(images=digit_images[:4])
    np.testing.assert_allclose([row["probabilities"] for row in answer["predictions"]],
                               direct["probabilities"].numpy(), atol=0)
