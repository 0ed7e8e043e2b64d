"""deploy/: models.config parses as TF Serving's ModelServerConfig and fits the exported directory layout."""
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from cnnzoo.serving import Client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _config():
    return text_format.Parse((DEPLOY / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())


def test_models_config_serves_several_models_and_versions():
    configs = {c.name: c for c in _config().model_config_list.config}
    assert set(configs) == {"digits", "flowers"}
    digits = configs["digits"]
    assert digits.base_path == "/models/digits" and digits.model_platform == "tensorflow"
    assert list(digits.model_version_policy.specific.versions) == [1, 2]
    assert dict(digits.version_labels) == {"stable": 1, "canary": 2}
    assert configs["flowers"].model_version_policy.latest.num_versions == 1


def test_config_routes_to_an_exported_tree(served_models, digit_images, rest):
    """Resolve models.config's digits entry against a cnnzoo export tree and serve it per the config."""
    digits = {c.name: c for c in _config().model_config_list.config}["digits"]
    base = served_models / Path(digits.base_path).relative_to("/models")
    versions = {v: base / str(v) for v in digits.model_version_policy.specific.versions}
    assert all((path / "saved_model.pb").is_file() for path in versions.values())
    with rest["StandIn"]({"digits": versions}, labels={"digits": dict(digits.version_labels)}) as server:
        client = Client(f"{server.url}/v1/models/digits", label="stable")
        assert client.predict(digit_images[:2])["probabilities"].shape == (2, 10)


def test_compose_and_dockerfile_point_tf_serving_at_the_config():
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert "image: tensorflow/serving" in compose and '"8501:8501"' in compose
    assert "./models:/models" in compose and "./models.config:/config/models.config" in compose
    assert "--model_config_file=/config/models.config" in compose
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM tensorflow/serving" in dockerfile and "--model_config_file=/models/models.config" in dockerfile
    assert "COPY models.config /models/models.config" in dockerfile
    readme = (DEPLOY / "README.md").read_text()
    assert "serving_bytes" in readme and "b64" in readme and "docker compose" in readme
    assert "--enable_model_warmup=true" in compose and "--enable_model_warmup=true" in dockerfile
