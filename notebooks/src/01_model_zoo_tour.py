# %% [markdown]
# # 01 · A tour of the model zoo
# One registry holds every architecture: list it, inspect a model's cost before you build it, build it with
# keras.applications' contract, and see where the parameters and multiply-adds go.

# %%
#SETUP
print(len(cnnzoo.list_models()), "models")
cnnzoo.list_models()

# %% [markdown]
# `list_models` takes an fnmatch pattern and sorts naturally (`resnet18` before `resnet101`).

# %%
cnnzoo.list_models("resnet*"), cnnzoo.list_models("mobilenet_v2_*")

# %% [markdown]
# ## What a model costs
# `model_info` builds the model once at its default input size and counts parameters and multiply-adds
# (conv, depthwise and dense). The figures match the published ones: ResNet-50 v1.5 4.09 G, ResNet-18 1.81 G,
# VGG-16 15.47 G, MobileNetV2 0.30 G, EfficientNet-B0 0.39 G.

# %%
import pandas as pd

names = (["resnet18", "mobilenet_v2_035", "mobilenet_v2", "efficientnet_b0", "se_resnet18"] if QUICK else
         ["vgg11", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet50_v1_5", "resnet101",
          "se_resnet18", "se_resnet50", "mobilenet_v2_035", "mobilenet_v2", "mobilenet_v2_140",
          "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"])
rows = []
for name in names:
    info = cnnzoo.model_info(name)
    rows.append({"model": name, "family": info.family, "params (M)": info.params / 1e6,
                 "MACs (G)": info.macs / 1e9, "input": info.default_input_size})
table = pd.DataFrame(rows).set_index("model")
table.round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
table["params (M)"].plot.barh(ax=axes[0], title="parameters (millions)")
table["MACs (G)"].plot.barh(ax=axes[1], title="multiply-adds at the default size (G)", logx=True)
plt.tight_layout()

# %% [markdown]
# ## Building a model
# Every model takes raw 0..255 pixels: its first layer is a `Preprocessing` layer that normalizes them the way
# the weights expect. `include_top=False` gives features, at any input size.

# %%
model = cnnzoo.create_model("se_resnet18", num_classes=10, input_shape=(64, 64, 3))
print(model.layers[1].get_config()["mode"], model.output_shape)
print(cnnzoo.profile(model))
backbone = cnnzoo.create_model("efficientnet_b0", include_top=False, pooling=None, input_shape=(None, None, 3))
[backbone(np.zeros((1, s, s, 3), "float32")).shape for s in (64, 96, 128)]

# %% [markdown]
# ## Compound scaling
# EfficientNet scales depth by alpha**phi, width by beta**phi and resolution by gamma**phi. B0-B7 use the
# published coefficients; `cnnzoo.models.efficientnet(phi)` computes them for any phi.

# %%
from cnnzoo.scaling import compound_coefficients

for phi in (0, 0.5, 1, 2, 3):
    depth, width, resolution = compound_coefficients(phi)
    print(f"phi={phi}: depth x{depth:.2f}, width x{width:.2f}, {resolution} px")
small = cnnzoo.models.efficientnet(0.5, num_classes=5, input_shape=(64, 64, 3))
print(small.name, f"{small.count_params():,} params")

# %% [markdown]
# ## Fine-tuning groups
# Each architecture registers how its layers split into groups (stem, stages, head), so fine-tuning can freeze
# and unfreeze by meaning rather than by layer index.

# %%
groups = cnnzoo.registry.finetune_groups(model)
{name: len(layers) for name, layers in groups.items()}
