"""The web API, through FastAPI's TestClient, against PyTorch and the library as oracles."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from seethrough.data import load_splits  # noqa: E402
from seethrough.models import describe  # noqa: E402
from seethrough.trained import TrainedModel  # noqa: E402

LOCAL = "http://127.0.0.1"  # the server refuses other Host headers (DNS rebinding)
# A CNN with a padded conv, a pool, and a strided padded conv: the arithmetic test covers all three.
CNN_SPEC = ["conv(out=4, k=3, pad=1)", "relu", "maxpool(k=2)",
            "conv(out=8, k=3, stride=2, pad=1)", "relu", "flatten", "linear(out=10)"]


def train_web_runs(root):
    """Train logistic regression and a tiny CNN on the bundled digits (a few seconds) into ``root``."""
    from seethrough.train import TrainConfig, fit, new_model

    train = load_splits("digits")["train"]
    runs, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, most so on a busy machine
    try:
        for name, spec, epochs in (("logreg", "logreg", 4), ("cnn", CNN_SPEC, 6)):
            model = new_model(spec, train, seed=0)
            fit(model, train, TrainConfig(epochs=epochs, lr=1e-2, batch_size=128, seed=0, device="cpu"))
            runs[name] = model.save(root / name)
    finally:
        torch.set_num_threads(threads)
    return runs


@pytest.fixture(scope="session")
def web_runs(tmp_path_factory):
    return train_web_runs(tmp_path_factory.mktemp("web-runs"))


@pytest.fixture(scope="module")
def client(web_runs):
    from seethrough.web import create_app

    app = create_app([web_runs["logreg"], web_runs["cnn"]], max_bytes=200_000, max_pixels=1_000_000)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def models(web_runs):
    return {k: TrainedModel.load(v) for k, v in web_runs.items()}


@pytest.fixture(scope="module")
def digits_test():
    return load_splits("digits")["test"]


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def upload(data: bytes, ctype="image/png", name="x.png"):
    return {"image": (name, data, ctype)}


def big_digit(digits_test, i=0) -> np.ndarray:
    """A test digit enlarged to 40x40, as a user's upload would be (any size is accepted)."""
    return np.asarray(Image.fromarray(digits_test.images[i, ..., 0]).resize((40, 40)))


# ---------------------------------------------------------------------------- models and layers
def test_models_are_listed_by_id_never_by_path(client, web_runs):
    r = client.get("/api/models")
    assert r.status_code == 200
    ids = {m["id"]: m for m in r.json()}
    assert set(ids) == {"logreg", "cnn"}
    assert str(web_runs["cnn"].parent) not in r.text
    assert ids["logreg"]["linear_weights"] and not ids["logreg"]["has_conv"]
    assert ids["cnn"]["has_conv"] and ids["cnn"]["class_names"] == [str(i) for i in range(10)]


def test_layers_come_from_the_spec(client, models):
    r = client.get("/api/models/cnn/layers")
    assert r.status_code == 200
    m = models["cnn"]
    assert r.json()["layers"] == describe(m.spec, m.in_chw)
    assert sum(row["params"] for row in r.json()["layers"]) == sum(p.numel() for p in m.net.parameters())


# ---------------------------------------------------------------------------- predict
@pytest.mark.parametrize("name", ["logreg", "cnn"])
def test_predict_upload_matches_the_model(client, models, digits_test, tmp_path, name):
    image = big_digit(digits_test, 3)
    Image.fromarray(image).save(tmp_path / "d.png")
    want = models[name].predict_proba(np.array(models[name].to_input(tmp_path / "d.png"))[None])[0]
    r = client.post(f"/api/models/{name}/predict", files=upload(png_bytes(image)), data={"top_k": "4"})
    assert r.status_code == 200, r.text
    got = np.array([p["probability"] for p in r.json()["probabilities"]])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert r.json()["top_k"] == list(np.argsort(-want)[:4])
    assert r.json()["prediction"] == models[name].class_names[int(want.argmax())]
    assert r.json()["input_png"].startswith("data:image/png;base64,")


def test_predict_test_index_gives_the_label(client, models, digits_test):
    r = client.post("/api/models/cnn/predict", data={"test_index": "7"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == digits_test.class_names[digits_test.labels[7]]
    want = models["cnn"].predict_proba(digits_test.images[7:8])[0]
    np.testing.assert_allclose([p["probability"] for p in r.json()["probabilities"]], want, rtol=1e-5, atol=1e-7)


def test_test_images_are_served_by_index(client, digits_test):
    r = client.get("/api/models/cnn/test-images", params={"offset": 5, "limit": 3})
    assert r.status_code == 200
    assert r.json()["n"] == len(digits_test)
    assert [it["index"] for it in r.json()["items"]] == [5, 6, 7]
    assert [it["label"] for it in r.json()["items"]] == digits_test.labels[5:8].tolist()
    png = client.get("/api/models/cnn/test-images/6")
    assert png.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png.content))), digits_test.images[6, ..., 0])
    assert client.get(f"/api/models/cnn/test-images/{len(digits_test)}").status_code == 404


# ---------------------------------------------------------------------------- inside the network
def test_feature_maps_match_pytorch(client, models, digits_test):
    m, x = models["cnn"], digits_test.images[11]
    with torch.no_grad():
        want = m.net[:4](m.prepare(x[None]))[0].numpy()  # up to conv2, (8, 2, 2)
    r = client.post("/api/models/cnn/layers/conv2/feature-maps", data={"test_index": "11"})
    assert r.status_code == 200, r.text
    assert r.json()["shape"] == list(want.shape)
    np.testing.assert_allclose(r.json()["maps"], want, atol=1e-4)
    flat = client.post("/api/models/cnn/layers/flatten1/feature-maps", data={"test_index": "11"}).json()
    assert flat["shape"] == [32] and len(flat["values"]) == 32


def test_kernel_is_the_layers_weights(client, models):
    r = client.get("/api/models/cnn/layers/conv2/kernels/5")
    assert r.status_code == 200
    conv = models["cnn"].net.conv2
    np.testing.assert_allclose(r.json()["weights"], conv.weight[5].detach().numpy(), atol=1e-5)
    assert r.json()["bias"] == pytest.approx(float(conv.bias[5].detach()))
    assert (r.json()["stride"], r.json()["pad"], r.json()["k"]) == (2, 1, 3)
    assert client.get("/api/models/cnn/layers/relu1/kernels/0").status_code == 400
    assert client.get("/api/models/cnn/layers/conv2/kernels/8").status_code == 404


@pytest.mark.parametrize("layer,channel,y,x", [
    ("conv1", 0, 0, 0),   # corner: the window runs into the zero padding
    ("conv1", 3, 4, 5),   # interior
    ("conv1", 2, 7, 7),   # far corner
    ("conv2", 6, 0, 1),   # stride 2 and padding
    ("conv2", 1, 1, 1),
])
def test_conv_arithmetic_equals_pytorch(client, models, digits_test, layer, channel, y, x):
    m, img = models["cnn"], big_digit(digits_test, 2)
    data = {"channel": str(channel), "y": str(y), "x": str(x)}
    r = client.post(f"/api/models/cnn/layers/{layer}/arithmetic", data=data, files=upload(png_bytes(img)))
    assert r.status_code == 200, r.text
    a = r.json()
    # oracle: PyTorch's own feature map at that position, computed here
    upto = [n for n, _ in m.net.named_children()].index(layer) + 1
    with torch.no_grad():
        want = m.net[:upto](m.prepare(m.to_input(img)[None]))[0, channel, y, x].item()
    assert a["value"] == pytest.approx(want, abs=1e-4)
    products = np.array(a["products"])
    np.testing.assert_allclose(products, np.array(a["window"]) * np.array(a["kernel"]), atol=1e-4)
    assert a["sum"] == pytest.approx(products.sum(), abs=1e-3)
    assert a["value"] == pytest.approx(a["sum"] + a["bias"])
    np.testing.assert_allclose(a["kernel"], getattr(m.net, layer).weight[channel].detach().numpy(), atol=1e-5)


def test_arithmetic_is_only_for_conv_layers_and_inside_the_map(client):
    r = client.post("/api/models/cnn/layers/relu1/arithmetic", data={"channel": 0, "y": 0, "x": 0, "test_index": 0})
    assert r.status_code == 400 and "conv" in r.json()["message"]
    r = client.post("/api/models/cnn/layers/conv1/arithmetic", data={"channel": 0, "y": 8, "x": 0, "test_index": 0})
    assert r.status_code == 400 and "outside" in r.json()["message"]


# ---------------------------------------------------------------------------- explanations
def test_explain_methods_depend_on_the_model(client):
    cnn = {m["name"] for m in client.get("/api/models/cnn/explain").json()["methods"]}
    lr = {m["name"] for m in client.get("/api/models/logreg/explain").json()["methods"]}
    assert "gradcam" in cnn and "weight_map" not in cnn
    assert {"weight_map", "weight_x_input"} <= lr and "gradcam" not in lr


def test_explain_gradcam_is_the_librarys_map(client, models, digits_test):
    from seethrough.explain import explain

    r = client.post("/api/models/cnn/explain", data={"method": "gradcam", "test_index": "4"})
    assert r.status_code == 200, r.text
    want = explain(models["cnn"], digits_test.images[4], "gradcam")
    np.testing.assert_allclose(r.json()["map"], want, atol=1e-4)
    f = r.json()["faithfulness"]
    assert 0 <= f["deletion_auc"] <= 1 and 0 <= f["insertion_auc"] <= 1
    assert len(f["deletion"]) == len(f["fractions"])
    assert r.json()["target"] == int(models["cnn"].predict(digits_test.images[4:5])[0])
    from seethrough.explain.faithfulness import score  # the page shows the library's own score row

    row = score(models["cnn"], digits_test.images[4:5], "gradcam", target=[r.json()["target"]], removals=f["removal"])
    assert f["deletion_auc"] == pytest.approx(row["removals"][f["removal"]]["deletion"])
    assert f["random_insertion_auc"] == pytest.approx(row["removals"][f["removal"]]["random_insertion"])
    assert f["verdict"] == row["randomization"]["verdict"] in ("passes", "fails", "undecided")


def test_weight_x_input_sums_to_the_logit(client, models, digits_test):
    m = models["logreg"]
    r = client.post("/api/models/logreg/explain",
                    data={"method": "weight_x_input", "test_index": "9", "target": "3", "faithfulness": "false"})
    assert r.status_code == 200, r.text
    logit = m.logits(digits_test.images[9:10])[0, 3]
    assert np.sum(r.json()["map"]) + float(m.net.linear1.bias[3].detach()) == pytest.approx(float(logit), abs=1e-3)
    w = client.post("/api/models/logreg/explain",
                    data={"method": "weight_map", "test_index": "9", "target": "3", "faithfulness": "false"}).json()
    # the weight map is the gradient with respect to the pixels: the weight over the standardisation's std
    np.testing.assert_allclose(w["map"], m.net.linear1.weight[3].detach().numpy().reshape(8, 8) / m.preprocess.std[0],
                               atol=1e-5)


def test_explain_refuses_a_method_that_does_not_apply(client):
    r = client.post("/api/models/logreg/explain", data={"method": "gradcam", "test_index": "0"})
    assert r.status_code == 400 and "gradcam" in r.json()["message"]


# ---------------------------------------------------------------------------- safety and errors
def png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims ``width`` x ``height``: a decompression bomb's signature."""
    data = png_bytes(np.zeros((1, 1), np.uint8))
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return data[:16] + bytes(ihdr) + crc + data[33:]


@pytest.mark.parametrize("data,ctype,status,words", [
    (png_claiming(100_000, 100_000), "image/png", 413, "bomb"),
    (png_claiming(2_000, 2_000), "image/png", 413, "pixels"),
    (b"#!/bin/sh\necho hi\n", "image/png", 415, "accepted format"),
    (b"plain text", "text/plain", 415, "not an image type"),
    (b"", "image/png", 400, "empty"),
])
def test_bad_uploads_get_a_json_message_and_the_server_keeps_serving(client, data, ctype, status, words):
    r = client.post("/api/models/cnn/predict", files=upload(data, ctype))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json" and words in r.json()["message"]
    assert client.post("/api/models/cnn/predict", data={"test_index": "0"}).status_code == 200


def test_too_many_bytes_is_413(client):
    noise = np.random.default_rng(0).integers(0, 255, (800, 400), dtype=np.uint8)
    data = png_bytes(noise)  # noise does not compress: ~320 kB, over the test app's 200 kB limit
    assert len(data) > 200_000
    r = client.post("/api/models/cnn/predict", files=upload(data))
    assert r.status_code == 413 and "limit" in r.json()["message"]


def test_a_damaged_image_is_400(client, digits_test):
    data = png_bytes(big_digit(digits_test))
    r = client.post("/api/models/cnn/predict", files=upload(data[:len(data) // 2]))
    assert r.status_code == 400 and "damaged" in r.json()["message"]


@pytest.mark.parametrize("method,url,kwargs,status", [
    ("get", "/api/models/nope", {}, 404),
    ("get", "/api/models/..%2F..%2Fetc", {}, 404),
    ("get", "/api/models/cnn/layers/nope/kernels/0", {}, 404),
    ("post", "/api/models/cnn/predict", {}, 400),  # neither image nor test_index
    ("post", "/api/models/cnn/predict", {"data": {"test_index": "0"}, "files": upload(b"x")}, 400),  # both
    ("post", "/api/models/cnn/predict", {"data": {"test_index": "99999"}}, 404),
    ("post", "/api/models/cnn/predict", {"data": {"test_index": "seven"}}, 422),
    ("post", "/api/models/cnn/layers/conv1/arithmetic", {"data": {"channel": "-1", "y": 0, "x": 0}}, 422),
    ("get", "/api/nothing-here", {}, 404),
])
def test_errors_are_json_with_a_message(client, method, url, kwargs, status):
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in r.text


def test_a_bug_is_a_500_json_without_traceback(client, monkeypatch):
    from seethrough.web.store import RunStore

    def broken(self, run_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(RunStore, "get", broken)
    r = client.get("/api/models/cnn")
    assert r.status_code == 500 and r.json()["message"].startswith("internal error (RuntimeError)")
    assert "secret" not in r.text and "Traceback" not in r.text


def test_page_and_openapi_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "seethrough" in page.text
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/models", "/api/models/{model_id}/predict", "/api/models/{model_id}/explain",
              "/api/models/{model_id}/layers", "/api/models/{model_id}/layers/{layer}/feature-maps"):
        assert p in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # Swagger UI is served from here


def test_serve_binds_loopback_by_default(web_runs, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from seethrough.cli import cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setattr("seethrough.web.budget.map_large_blocks", lambda: True)  # not in the test process
    r = CliRunner().invoke(cli, ["serve", str(web_runs["logreg"]), "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert [m["id"] for m in TestClient(seen["app"], base_url=LOCAL).get("/api/models").json()] == ["logreg"]


def test_a_run_whose_data_is_not_here_still_predicts(tmp_path, digits_test):
    from seethrough.trained import Preprocess
    from seethrough.web import create_app

    model = TrainedModel(["flatten", "linear(out=10)"], (8, 8, 1), [str(i) for i in range(10)],
                         Preprocess.unit(1), meta={"model": "logreg", "dataset": "mnist"})
    with TestClient(create_app([model.save(tmp_path / "elsewhere")]), base_url=LOCAL) as c:
        r = c.get("/api/models/elsewhere/test-images")
        assert r.status_code == 400 and "mnist" in r.json()["message"]
        r = c.post("/api/models/elsewhere/predict", files=upload(png_bytes(big_digit(digits_test))))
        assert r.status_code == 200
        assert c.post("/api/models/elsewhere/predict", data={"test_index": "0"}).status_code == 400
