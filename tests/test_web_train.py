"""The page's data set and trainings through the API (FastAPI's TestClient), and the queue alone.

Oracles: Pillow's own decoding of what was uploaded, the files on disk, the library's
TrainedModel loading the run folder the server wrote (and its zip), and a queue driven by
a work function whose steps the test controls.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from shapes import shape_pngs  # noqa: E402

from seethrough.web import create_app  # noqa: E402
from seethrough.web.jobs import Cancelled, JobQueue  # noqa: E402
from seethrough.web.workspace import Limits  # noqa: E402


def files(pngs, ctype="image/png"):
    return [("images", (f"{i}.png", d, ctype)) for i, d in enumerate(pngs)]


def wait_for(client, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = next(j for j in client.get("/api/trainings").json() if j["id"] == job_id)
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    pytest.fail(f"training {job_id} did not finish in {timeout} s")


@pytest.fixture
def client(tmp_path):
    app = create_app([], workspace=tmp_path / "ws", limits=Limits(images_per_class=30, queued_trainings=2))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def test_class_names_are_checked(client):
    for bad in ("", "../up", ".hidden", "a/b", "train", "Test", "x" * 41, "tab\there", "-dash"):
        r = client.post("/api/workspace/classes", data={"name": bad})
        assert r.status_code == 400, bad
    assert client.post("/api/workspace/classes", data={"name": "red car"}).json() == {"name": "red car"}
    assert client.post("/api/workspace/classes", data={"name": "Red Car"}).status_code == 400  # exists already
    assert [c["name"] for c in client.get("/api/workspace").json()["classes"]] == ["red car"]


def test_images_are_stored_under_server_names_and_read_back(client, tmp_path):
    client.post("/api/workspace/classes", data={"name": "circle"})
    pngs = shape_pngs(3)["circle"]
    big = io.BytesIO()
    Image.new("RGB", (1000, 500), (10, 200, 30)).save(big, format="JPEG")
    r = client.post("/api/workspace/classes/circle/images",
                    files=files(pngs) + [("images", ("../../x.png", b"not an image", "image/png")),
                                         ("images", ("big.jpg", big.getvalue(), "image/jpeg"))])
    assert r.status_code == 200
    added = r.json()["added"]
    assert len(added) == 4 and len(r.json()["skipped"]) == 1
    stored = sorted(p.name for p in (tmp_path / "ws" / "dataset" / "circle").iterdir())
    assert stored == sorted(f"{i}.png" for i in added)
    # read back: the same pixels as Pillow decodes from the upload; a large one shrunk to 256 a side
    back = Image.open(io.BytesIO(client.get(f"/api/workspace/classes/circle/images/{added[0]}").content))
    np.testing.assert_array_equal(np.asarray(back), np.asarray(Image.open(io.BytesIO(pngs[0]))))
    assert Image.open(io.BytesIO(client.get(f"/api/workspace/classes/circle/images/{added[3]}").content)).size == (256, 128)
    # ids and classes are looked up, never joined
    assert client.get("/api/workspace/classes/circle/images/..%2F..%2Fmodel").status_code == 404
    assert client.get("/api/workspace/classes/nope/images/" + "0" * 32).status_code == 404
    assert client.delete(f"/api/workspace/classes/circle/images/{added[1]}").status_code == 200
    assert client.get("/api/workspace").json()["classes"][0]["count"] == 3
    assert client.delete("/api/workspace/classes/circle").status_code == 200
    assert client.get("/api/workspace").json()["classes"] == []


def test_a_zip_is_read_without_its_names_and_a_bomb_is_refused(client, tmp_path):
    client.post("/api/workspace/classes", data={"name": "square"})
    pngs = shape_pngs(4)["square"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i, d in enumerate(pngs):
            zf.writestr(f"../../../escape-{i}.png" if i % 2 else f"/abs/{i}.png", d)
        zf.writestr("readme.txt", "hello")
        zf.writestr("folder/", "")
    r = client.post("/api/workspace/classes/square/zip", files={"archive": ("a.zip", archive.getvalue())})
    assert r.status_code == 200 and len(r.json()["added"]) == 4
    assert "not images" in r.json()["skipped"][0]
    assert not list(tmp_path.rglob("escape-*")) and not list(tmp_path.rglob("abs"))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", pngs[0])
        zf.writestr("b.png", b"\0" * (12 * 1024 * 1024))  # 12 MB of zeros in a few kB
    r = client.post("/api/workspace/classes/square/zip", files={"archive": ("b.zip", bomb.getvalue())})
    assert r.status_code == 413 and r.json()["limit"] == "upload_bytes"
    assert client.post("/api/workspace/classes/square/zip", files={"archive": ("c.zip", b"PK nonsense")}).status_code == 400
    assert client.get("/api/workspace").json()["classes"][0]["count"] == 4  # nothing lost, nothing added


def test_each_limit_is_named_and_nothing_stored_is_lost(tmp_path):
    limits = Limits(images_per_class=5, classes=2, upload_bytes=60_000, workspace_bytes=30_000, pixels=5000,
                    queued_trainings=0)
    app = create_app([], workspace=tmp_path / "ws", limits=limits)
    pngs = shape_pngs(6)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for name in ("circle", "square"):
            assert c.post("/api/workspace/classes", data={"name": name}).status_code == 200
        r = c.post("/api/workspace/classes", data={"name": "triangle"})
        assert (r.status_code, r.json()["limit"]) == (409, "classes")
        assert c.post("/api/workspace/classes/circle/images", files=files(pngs["circle"][:4])).status_code == 200
        r = c.post("/api/workspace/classes/circle/images", files=files(pngs["circle"][4:6]))
        assert (r.status_code, r.json()["limit"]) == (413, "images_per_class")
        big = io.BytesIO()
        Image.new("L", (100, 100)).save(big, format="PNG")
        r = c.post("/api/workspace/classes/square/images", files=files([big.getvalue()]))
        assert (r.status_code, r.json()["limit"]) == (413, "pixels")
        r = c.post("/api/workspace/classes/square/images", files=files([b"x" * 70_000]))
        assert (r.status_code, r.json()["limit"]) == (413, "upload_bytes")
        noise = io.BytesIO()  # random pixels: a PNG that does not compress, to fill the workspace
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 60, 3), np.uint8)).save(noise, format="PNG")
        r = c.post("/api/workspace/classes/square/images", files=files([noise.getvalue()] * 3))
        assert (r.status_code, r.json()["limit"]) == (413, "workspace_bytes")
        assert c.post("/api/workspace/classes/square/images", files=files(pngs["square"][:4])).status_code == 200
        r = c.post("/api/trainings", data={"model": "logreg", "epochs": 1, "size": 16})
        assert (r.status_code, r.json()["limit"]) == (429, "queued_trainings")
        counts = {k["name"]: k["count"] for k in c.get("/api/workspace").json()["classes"]}
        assert counts == {"circle": 4, "square": 4}


def test_a_training_request_is_checked_before_it_waits(client):
    assert client.post("/api/trainings", data={"model": "logreg", "epochs": 2, "size": 16}).status_code == 400  # no data
    client.post("/api/workspace/classes", data={"name": "a"})
    client.post("/api/workspace/classes", data={"name": "b"})
    client.post("/api/workspace/classes/a/images", files=files(shape_pngs(4)["circle"]))
    client.post("/api/workspace/classes/b/images", files=files(shape_pngs(2)["square"]))
    r = client.post("/api/trainings", data={"model": "logreg", "epochs": 2, "size": 16})
    assert r.status_code == 400 and "b (2)" in r.json()["message"]
    for field, value in (("model", "vgg"), ("epochs", 0), ("size", 17)):
        data = {"model": "logreg", "epochs": 2, "size": 16, field: value}
        assert client.post("/api/trainings", data=data).status_code == 400, field


def test_a_page_training_is_an_ordinary_run(client, tmp_path):
    from seethrough.trained import TrainedModel

    shapes = shape_pngs(10, side=32)
    for name in ("circle", "square", "triangle"):
        client.post("/api/workspace/classes", data={"name": name})
        client.post(f"/api/workspace/classes/{name}/images", files=files(shapes[name]))
    job = client.post("/api/trainings", data={"model": "logreg", "epochs": 3, "size": 16}).json()
    assert job["status"] in ("queued", "running") and job["position"] in (0, 1)
    done = wait_for(client, job["id"])
    assert done["status"] == "done", done["message"]
    assert [r["epoch"] for r in done["history"]] == [1, 2, 3]
    (run_id,) = done["runs"]
    # in the model list at once, with every view working on it
    assert run_id in [m["id"] for m in client.get("/api/models").json()]
    pred = client.post(f"/api/models/{run_id}/predict", data={"test_index": 0}).json()
    assert pred["prediction"] in ("circle", "square", "triangle")
    assert client.post(f"/api/models/{run_id}/explain", data={"test_index": 0, "method": "weight_x_input",
                                                                 "faithfulness": "false"}).status_code == 200
    assert client.get(f"/api/models/{run_id}/test-images").json()["n"] == 6  # 20 % of each class held out
    run_dir = tmp_path / "ws" / "runs" / run_id
    for name in ("model.json", "model.safetensors", "metrics.jsonl", "evaluation.json", "confusion.png"):
        assert (run_dir / name).is_file(), name
    # its zip unpacks to a run folder that the library loads and that predicts the same
    z = client.get(f"/api/models/{run_id}/zip")
    assert z.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(z.content)).extractall(tmp_path / "unzipped")
    copy, model = TrainedModel.load(tmp_path / "unzipped" / run_id), TrainedModel.load(run_dir)
    x = np.stack([model.to_input(Image.open(io.BytesIO(d))) for d in shapes["circle"][:4]])
    np.testing.assert_allclose(copy.predict_proba(x), model.predict_proba(x), atol=1e-6)
    # a later change of the data set leaves the run's own copy alone
    client.delete("/api/workspace/classes/circle")
    assert len(list((run_dir / "data" / "circle").iterdir())) == 10


def test_the_cli_reads_a_page_run_and_serve_opens_the_workspace(client, tmp_path):
    from click.testing import CliRunner

    from seethrough.cli import cli

    shapes = shape_pngs(6, side=24)
    for name in ("circle", "square"):
        client.post("/api/workspace/classes", data={"name": name})
        client.post(f"/api/workspace/classes/{name}/images", files=files(shapes[name]))
    done = wait_for(client, client.post("/api/trainings", data={"model": "logreg", "epochs": 2, "size": 16}).json()["id"])
    run_dir = tmp_path / "ws" / "runs" / done["runs"][0]
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    # a new server on the same workspace, with no run folders named, serves the run
    app = create_app([], workspace=tmp_path / "ws")
    assert [r.folder for r in app.state.store.runs.values()] == [run_dir]


def test_the_event_stream_sends_the_trainings(client):
    with client.stream("GET", "/api/trainings/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                break
    assert lines[0] == "event: trainings" and lines[1] == "data: []"


def test_the_queue_runs_one_at_a_time_and_cancels():
    started, release = [], threading.Event()

    def work(job):
        started.append(job.id)
        while not release.wait(0.01):
            if job.stop.is_set():
                raise Cancelled()
        queue.add_row(job, {"epoch": 1})

    queue = JobQueue(work, max_queued=2)
    a = queue.submit("train", {}, epochs=1)
    while queue.get(a.id).status != "running":
        time.sleep(0.01)
    b, c = queue.submit("train", {}, epochs=1), queue.submit("train", {}, epochs=1)
    assert [queue.position(j) for j in (a, b, c)] == [0, 1, 2]
    with pytest.raises(Exception, match="queued_trainings"):
        queue.submit("train", {}, epochs=1)
    queue.cancel(b.id)
    assert b.status == "cancelled" and queue.position(c) == 1
    queue.cancel(a.id)  # the running one: its stop event
    deadline = time.monotonic() + 10
    while queue.get(c.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert a.status == "cancelled" and c.status == "running" and started == [a.id, c.id]
    release.set()
    while queue.get(c.id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.status == "done" and c.history == [{"epoch": 1}]
    queue.close()


def test_an_empty_workspace_trains_the_demos_digit_models(client, monkeypatch):
    from seethrough.web import training

    monkeypatch.setattr(training, "DEMO_EPOCHS", 1)  # the same job, one epoch a model: quick on a busy CPU
    ws = client.get("/api/workspace").json()
    assert ws["runs"] == 0 and client.get("/api/models").json() == []
    done = wait_for(client, client.post("/api/trainings", data={"demo": "true"}).json()["id"], timeout=300)
    assert done["status"] == "done", done["message"]
    assert done["runs"] == ["digits-logreg", "digits-smallcnn"]
    assert len(done["history"]) == done["epochs"]
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert set(models) == {"digits-logreg", "digits-smallcnn"}
    for run_id in models:  # their test split is the bundled digits': the page's test images work
        assert client.get(f"/api/models/{run_id}/test-images").json()["n"] == 450


def test_a_page_training_starts_from_the_bundled_network_or_a_served_run(client):
    import json

    shapes = shape_pngs(8, side=32)
    for name in ("circle", "square"):
        client.post("/api/workspace/classes", data={"name": name})
        client.post(f"/api/workspace/classes/{name}/images", files=files(shapes[name]))
    offered = [m["name"] for m in client.get("/api/workspace").json()["models"]]
    assert "cifar10" in offered and "cifar10-head" in offered
    assert client.post("/api/trainings", data={"model": "run:nothing", "epochs": 1, "size": 32}).status_code == 400
    first = wait_for(client, client.post("/api/trainings", data={"model": "cifar10-head", "epochs": 1,
                                                                  "size": 32}).json()["id"])
    assert first["status"] == "done", first["message"]
    (run_id,) = first["runs"]
    folder = client.app.state.store.get(run_id).folder
    info = json.loads((folder / "model.json").read_text())
    assert info["init_from"]["source"] == "cifar10" and info["frozen"]  # the copied layers stayed fixed
    assert f"run:{run_id}" in [m["name"] for m in client.get("/api/workspace").json()["models"]]
    second = wait_for(client, client.post("/api/trainings", data={"model": f"run:{run_id}", "epochs": 1,
                                                                   "size": 32}).json()["id"])
    assert second["status"] == "done", second["message"]
    info = json.loads((client.app.state.store.get(second["runs"][0]).folder / "model.json").read_text())
    assert info["init_from"]["source"] == str(folder.resolve())
