"""The JSON API the page is built on; documented by FastAPI at ``/docs``.

Every endpoint that looks at an image takes it the same way, as multipart form data:
either a file in ``image`` (PNG, JPEG, GIF, BMP, WebP or TIFF, any size up to the limits)
or ``test_index``, the index of an image in the model's test split. Arrays come back as
nested lists of numbers: feature maps (C, H, W), kernels (C_in, k, k), maps (H, W).
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response
from PIL import Image

from ..calibrate import scaled_softmax
from ..unfamiliar import energy, is_unfamiliar
from . import explanations
from .arithmetic import arithmetic_at
from .store import Run, RunStore
from .uploads import UploadError, decode_image

router = APIRouter(prefix="/api")

IMAGE_DOC = "An image file (PNG, JPEG, GIF, BMP, WebP, TIFF). Give this or test_index."
INDEX_DOC = "Index of an image in the model's test split. Give this or image."


# ---------------------------------------------------------------------------- helpers
def _store(request: Request) -> RunStore:
    return request.app.state.store


def _run(request: Request, model_id: str) -> Run:
    try:
        return _store(request).get(model_id)
    except KeyError:
        raise HTTPException(404, f"no model with id {model_id!r}; GET /api/models lists them") from None


def _image(request: Request, run: Run, image: UploadFile | None, test_index: int | None) -> np.ndarray:
    """The request's image as uint8 (H, W, C) for ``run``'s model."""
    if (image is None) == (test_index is None):
        raise HTTPException(400, "give exactly one of 'image' (a file) and 'test_index'")
    if test_index is not None:
        return _test_image(request, run, test_index)
    limits = request.app.state.limits
    data = image.file.read(limits["max_bytes"] + 1)
    try:
        return decode_image(data, image.content_type, run.model.input_shape, **limits,
                            budget=request.app.state.budget)
    except UploadError as exc:
        raise HTTPException(exc.status, exc.message) from None


def _test_image(request: Request, run: Run, index: int) -> np.ndarray:
    test = _store(request).test_set(run)
    if not 0 <= index < len(test):
        raise HTTPException(404, f"test_index {index} is out of range 0..{len(test) - 1}")
    return test.images[index]


def _layer(run: Run, name: str):
    for layer in run.model.spec:
        if layer.name == name:
            return layer
    raise HTTPException(404, f"no layer named {name!r}; layers: {', '.join(l.name for l in run.model.spec)}")


def _arr(a, decimals: int = 5) -> list:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def png_data_url(image: np.ndarray) -> str:
    """uint8 (H, W, C) -> ``data:image/png;base64,...``."""
    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------- models
@router.get("/models", summary="The models being served")
def list_models(request: Request) -> list[dict]:
    """One entry per run folder given to ``seethrough serve``: its id, model name, input shape,
    classes and parameter count. Other endpoints name a model by this id."""
    return [run.summary() for run in _store(request).runs.values()]


@router.get("/models/{model_id}", summary="One model, with its layers")
def get_model(request: Request, model_id: str) -> dict:
    run = _run(request, model_id)
    return {**run.summary(), "layers": run.layers}


@router.get("/models/{model_id}/layers", summary="The model's layers: name, kind, output shape, parameters")
def layers(request: Request, model_id: str) -> dict:
    run = _run(request, model_id)
    h, w, c = run.model.input_shape
    return {"input_shape": [c, h, w], "layers": run.layers}


# ---------------------------------------------------------------------------- predict
@router.post("/models/{model_id}/predict", summary="Class probabilities for an image")
def predict(request: Request, model_id: str, image: UploadFile | None = File(None, description=IMAGE_DOC),
            test_index: int | None = Form(None, description=INDEX_DOC),
            top_k: int = Form(3, ge=1, description="How many of the most likely classes to name.")) -> dict:
    """The model's calibrated probabilities for every class (softmax of the logits divided by the
    run's fitted ``temperature``), the ``top_k`` most likely, whether the image is ``unfamiliar``
    (its energy score above the threshold that marks 5 % of the validation images; null when the
    run has none), and the image as the model sees it (its input size and mode) as a PNG data URL."""
    run = _run(request, model_id)
    x = _image(request, run, image, test_index)
    t0 = time.perf_counter()
    with run.lock:
        z = run.model.logits(x[None])                      # (1, K)
    proba = scaled_softmax(z, run.model.temperature)[0]
    order = np.argsort(-proba)[:top_k]
    names = run.model.class_names
    facts = run.model.meta.get("unfamiliar")
    marked = is_unfamiliar(z, facts)
    out = {"model": run.id, "prediction": names[order[0]], "index": int(order[0]),
           "probabilities": [{"class": n, "probability": float(p)} for n, p in zip(names, proba)],
           "top_k": [int(i) for i in order], "input_png": png_data_url(x),
           "temperature": run.model.temperature,
           "unfamiliar": None if marked is None else {
               "marked": bool(marked[0]), "energy": float(energy(z, facts["temperature"])[0]),
               "threshold": facts["threshold"], "false_alarm_rate": facts["false_alarm_rate"]},
           "seconds": time.perf_counter() - t0}
    if test_index is not None:
        test = _store(request).test_set(run)
        out["label"] = names[int(test.labels[test_index])]
    return out


# ---------------------------------------------------------------------------- inside the network
@router.post("/models/{model_id}/layers/{layer}/feature-maps", summary="A layer's output for an image")
def feature_maps(request: Request, model_id: str, layer: str,
                 image: UploadFile | None = File(None, description=IMAGE_DOC),
                 test_index: int | None = Form(None, description=INDEX_DOC)) -> dict:
    """Every channel of ``layer``'s output: ``maps`` (C, H, W) for image-shaped outputs, or
    ``values`` (F,) after flatten."""
    from .arithmetic import layer_io

    run = _run(request, model_id)
    spec_layer = _layer(run, layer)
    x = _image(request, run, image, test_index)
    with run.lock:
        _, out = layer_io(run.model, x, layer)
    key = "maps" if out.ndim == 3 else "values"
    return {"layer": layer, "kind": spec_layer.kind, "shape": list(out.shape), key: _arr(out, 4),
            "min": float(out.min()), "max": float(out.max())}


@router.get("/models/{model_id}/layers/{layer}/kernels/{channel}", summary="The kernel that makes one channel")
def kernel(request: Request, model_id: str, layer: str, channel: int) -> dict:
    """The weights (C_in, k, k) and bias of output channel ``channel`` of conv ``layer``."""
    run = _run(request, model_id)
    spec_layer = _layer(run, layer)
    if spec_layer.kind != "conv":
        raise HTTPException(400, f"layer {layer!r} is a {spec_layer.kind} layer; kernels belong to conv layers")
    conv = run.model.net.get_submodule(layer)
    if not 0 <= channel < conv.out_channels:
        raise HTTPException(404, f"channel {channel} is out of range 0..{conv.out_channels - 1}")
    w = conv.weight.detach().cpu().numpy()[channel]
    bias = float(conv.bias.detach().cpu()[channel]) if conv.bias is not None else 0.0
    p = spec_layer.params
    return {"layer": layer, "channel": channel, "weights": _arr(w), "bias": bias,
            "k": p["k"], "stride": p["stride"], "pad": p["pad"], "in_channels": int(w.shape[0])}


@router.post("/models/{model_id}/layers/{layer}/arithmetic", summary="The sum behind one value of a conv map")
def arithmetic(request: Request, model_id: str, layer: str,
               channel: int = Form(..., ge=0), y: int = Form(..., ge=0), x: int = Form(..., ge=0),
               image: UploadFile | None = File(None, description=IMAGE_DOC),
               test_index: int | None = Form(None, description=INDEX_DOC)) -> dict:
    """For conv ``layer``, output ``channel`` at row ``y``, column ``x``: the input window
    (C_in, k, k, zero padding included), the kernel, their products, the sum, the bias and
    ``value`` = sum + bias, computed with NumPy; ``torch_value`` is PyTorch's own number."""
    run = _run(request, model_id)
    _layer(run, layer)
    img = _image(request, run, image, test_index)
    with run.lock:
        r = arithmetic_at(run.model, img, layer, channel, y, x)
    return {**r, "window": _arr(r["window"]), "kernel": _arr(r["kernel"]), "products": _arr(r["products"]),
            "layer": layer}


# ---------------------------------------------------------------------------- test images
@router.get("/models/{model_id}/test-images", summary="Images of the model's test split")
def test_images(request: Request, model_id: str, offset: int = Query(0, ge=0),
                limit: int = Query(24, ge=1, le=200)) -> dict:
    """Indices, labels and class names of test images ``offset`` .. ``offset + limit``; the
    pixels of each are at ``GET /api/models/{model_id}/test-images/{index}``."""
    run = _run(request, model_id)
    test = _store(request).test_set(run)
    idx = range(offset, min(offset + limit, len(test)))
    names = test.class_names
    return {"n": len(test), "dataset": test.name, "offset": offset,
            "items": [{"index": i, "label": int(test.labels[i]), "class": names[int(test.labels[i])]} for i in idx]}


@router.get("/models/{model_id}/test-images/{index}", summary="One test image as PNG",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def test_image(request: Request, model_id: str, index: int) -> Response:
    run = _run(request, model_id)
    img = _test_image(request, run, index)
    data = base64.b64decode(png_data_url(img).split(",", 1)[1])
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


# ---------------------------------------------------------------------------- explanations
@router.get("/models/{model_id}/explain", summary="Explanation methods that apply to this model")
def explain_methods(request: Request, model_id: str) -> dict:
    run = _run(request, model_id)
    return {"methods": explanations.methods_for(run.model)}


@router.post("/models/{model_id}/explain", summary="Why the model decides: an attribution map")
def explain(request: Request, model_id: str, method: str = Form(..., description="A name from GET .../explain."),
            target: int | None = Form(None, ge=0, description="Class index to explain; default: the predicted one."),
            faithfulness: bool = Form(True, description="Also score the map (deletion / insertion)."),
            image: UploadFile | None = File(None, description=IMAGE_DOC),
            test_index: int | None = Form(None, description=INDEX_DOC)) -> dict:
    """The map of ``method`` (H, W) at the model's input size for class ``target``, with its
    faithfulness scores. For a linear model, method ``weights`` gives the class's weight map
    and weight x input, whose sum plus the bias is the class's logit."""
    run = _run(request, model_id)
    img = _image(request, run, image, test_index)
    if target is not None and target >= len(run.model.class_names):
        raise HTTPException(400, f"target {target} is out of range 0..{len(run.model.class_names) - 1}")
    t0 = time.perf_counter()
    with run.lock:
        result = explanations.explain(run.model, img, method, target, faithfulness=faithfulness)
    result = {k: (_arr(v) if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    return {"model": run.id, **result, "seconds": time.perf_counter() - t0}

