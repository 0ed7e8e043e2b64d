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
# `model_info` builds a model once at its default input size and counts parameters and multiply-adds (conv,
# depthwise, grouped and dense). The figures match the published ones (ResNet-50 v1.5 4.09 G, ResNet-18 1.81 G,
# VGG-16 15.47 G, MobileNetV2 0.30 G, EfficientNet-B0 0.39 G) and, family by family, keras.applications' models.
# `cnnzoo.models.figures` has them for every model without building any (`cnnzoo list --long` prints it).

# %%
import pandas as pd
from cnnzoo.models.figures import family_table, zoo_table

families = pd.DataFrame([{"family": r["family"], "models": r["models"],
                          "params (M)": f"{r['params'][0] / 1e6:.1f}-{r['params'][1] / 1e6:.1f}",
                          "MACs (G)": f"{r['macs'][0] / 1e9:.2f}-{r['macs'][1] / 1e9:.2f}",
                          "size": r["default_input_size"][1], "paper": r["paper"]} for r in family_table()])
families.set_index("family")

# %%
print(cnnzoo.model_info("densenet121"))   # built and counted: the same figures as the table
names = ["mobilenet_v3_small", "mobilenet_v1_050", "mobilenet_v2", "efficientnet_b0", "efficientnet_v2_b0",
         "nasnet_mobile", "densenet121", "resnet18", "resnet50", "resnet50_v2", "resnext50_32x4d", "inception_v3",
         "xception", "convnext_tiny", "efficientnet_v2_s", "inception_resnet_v2", "vgg16"]
rows = {r["name"]: r for r in zoo_table()}
table = pd.DataFrame([{"model": n, "family": rows[n]["family"], "params (M)": rows[n]["params"] / 1e6,
                       "MACs (G)": rows[n]["macs"] / 1e9, "input": rows[n]["default_input_size"]} for n in names])
table = table.set_index("model")
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
# Every family follows the same contract. Residual families take `drop_path_rate` (stochastic depth: Dropout
# layers that only act in training), and each ImageNet weight set names the preprocessing it was trained with.

# %%
for name in ("mobilenet_v3_small", "convnext_tiny", "inception_v3", "nasnet_mobile"):
    entry = cnnzoo.registry.get_entry(name)
    size = max(64, entry.min_input_size)
    m = cnnzoo.create_model(name, num_classes=10, input_shape=(size, size, 3))
    print(f"{name:20s} {entry.family:14s} {m.count_params():>12,} params at {size} px; "
          f"ImageNet weights expect {entry.imagenet.preprocessing}")
deep = cnnzoo.create_model("resnext50_32x4d", num_classes=10, input_shape=(64, 64, 3), drop_path_rate=0.1)
print(sum(l.name.endswith("_drop") for l in deep.layers), "stochastic-depth layers in resnext50_32x4d")

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
