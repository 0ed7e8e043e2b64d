# %% [markdown]
# # 06 · Export and serving
# One call writes every format with resizing and normalization inside, checks each against the Keras model,
# and records the figures in a model card. Then a TF Serving REST request built with `cnnzoo.serving`.

# %%
#SETUP
import json, tempfile
from pathlib import Path
from cnnzoo.data.bundled import digits_rgb

x, y, names = digits_rgb(32)
data = cnnzoo.data.from_arrays(x, y, class_names=names, image_size=(32, 32), batch_size=32, seed=0)
model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
model = cnnzoo.train.fit(model, data, epochs=1 if QUICK else 4, learning_rate=3e-3, schedule="one_cycle",
                         verbose=0).model
print("held-out accuracy", round(cnnzoo.evaluate(model, data).accuracy, 4))

# %%
out = Path(tempfile.mkdtemp()) / "digits"
formats = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "onnx")
report = cnnzoo.export(model, out, formats=formats, representative_data=data)
print(report.summary())

# %% [markdown]
# ## Parity, size and latency per format

# %%
import pandas as pd

rows = []
for fmt in formats:
    p = report.parity.get(fmt, {})
    rows.append({"format": fmt, "MB": report.sizes[fmt] / 1e6, "max abs diff": p.get("max_abs_diff"),
                 "top-1 agreement": p.get("top1_agreement"), "batch-1 ms": report.latency.get(fmt, {}).get("p50_ms")})
table = pd.DataFrame(rows).set_index("format")
table

# %%
ax = table["batch-1 ms"].plot.barh(title="batch-1 latency on this machine (ms)")

# %% [markdown]
# ## The model card

# %%
card = json.loads((report.directory / "model_card.json").read_text())
{k: card[k] for k in list(card)[:8]}

# %% [markdown]
# ## A TF Serving REST request
# TF Serving's REST API takes `{"instances": [{"b64": ...}]}` for the bytes signature. Here we build that
# request with `cnnzoo.serving` and, since no server runs in this notebook, feed it to the SavedModel the way
# TF Serving would decode it. Against a running server: `Client(url).predict_bytes([png_bytes])`.

# %%
import base64, io
from PIL import Image
from cnnzoo.export.runners import load_runner

buffer = io.BytesIO()
Image.fromarray(x[0]).save(buffer, format="PNG")
request = {"signature_name": "serving_bytes", "instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]}
print(json.dumps(request)[:120], "...")
runner = load_runner(report.directory)
decoded = [base64.b64decode(i["b64"]) for i in request["instances"]]
outputs = runner.predict_bytes(decoded)
print("true label", names[y[0]], "-> predicted", outputs["class_names"][0][:3])
