# %% [markdown]
# # 02 · CNN fundamentals with the worked examples of our design notes
# Padding modes, pooling families, convolution arithmetic and receptive fields, each checked against the
# notes' worked examples, then real feature maps of a zoo model.

# %%
#SETUP
import string
import keras
from cnnzoo.layers import (Padding2D, MixedPooling2D, StochasticPooling2D, LpPooling2D, SpatialPyramidPooling2D,
                           AdaptiveAveragePooling2D, AdaptiveMaxPooling2D, conv_output_size, receptive_field)

# %% [markdown]
# ## Padding modes on the A..P map

# %%
letters = string.ascii_uppercase[:16]
grid = np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1)
for mode in ("zero", "reflect", "replicate", "circular"):
    padded = np.asarray(Padding2D(1, mode)(grid))[0, :, :, 0]
    print(mode)
    print("\n".join(" ".join("0" if v == 0 else letters[int(v) - 1] for v in row) for row in padded), "\n")

# %% [markdown]
# ## Pooling families on the notes' 4x4 feature map
# Max pooling gives [[8.2, 7.4], [5.1, 9.3]] and average pooling [[3.475, 3.075], [3.275, 4.5]]; mixed pooling
# blends the two, Lp pooling moves from sum (p=1) towards max (large p), stochastic pooling samples in training
# and takes the probability-weighted mean at inference.

# %%
fmap = np.array([[3.1, 0.5, 2.3, 1.7], [8.2, 2.1, 7.4, 0.9], [1.8, 5.1, 4.0, 3.5], [3.7, 2.5, 9.3, 1.2]],
                "float32")[None, :, :, None]
show = lambda layer: np.round(np.asarray(layer(fmap), "float64")[0, :, :, 0], 3)
print("max       ", show(keras.layers.MaxPooling2D(2)).tolist())
print("average   ", show(keras.layers.AveragePooling2D(2)).tolist())
print("mixed 0.5 ", show(MixedPooling2D(2, alpha=0.5)).tolist())
print("L2        ", show(LpPooling2D(2, p=2)).tolist())
print("L16       ", show(LpPooling2D(2, p=16)).tolist())
print("stochastic", show(StochasticPooling2D(2)).tolist(), "(inference: expectation)")

# %% [markdown]
# ## Adaptive and pyramid pooling
# Adaptive pooling fixes the output grid: windows start at floor(i*H/Ho) and end at ceil((i+1)*H/Ho). From 15
# to 7, output row 3 pools rows 6..8 and output row 6 rows 12..14. A spatial pyramid (1, 2, 4) turns any map
# into 21*C numbers.

# %%
rows = np.arange(15, dtype="float32").reshape(1, 15, 1, 1) * np.ones((1, 15, 15, 1), "float32")
print(np.asarray(AdaptiveAveragePooling2D(7)(rows))[0, :, 0, 0])   # mean row index of each window
print(np.asarray(AdaptiveMaxPooling2D(7)(rows))[0, :, 0, 0])       # last row of each window
for size in (9, 13, 32):
    print(size, SpatialPyramidPooling2D((1, 2, 4))(np.ones((1, size, size, 8), "float32")).shape)

# %% [markdown]
# ## Convolution arithmetic
# out = floor((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1.

# %%
import pandas as pd

table = pd.DataFrame([{"padding": p, "stride": s, "output": conv_output_size(32, 3, stride=s, padding=p)}
                      for p, s in [(0, 1), (1, 1), (0, 2), (1, 2), (2, 1), (1, 3)]])
print(table.to_string(index=False))
print("7x7 input, 3x3 kernel, stride 1 / 2:", conv_output_size(7, 3, 1), conv_output_size(7, 3, 2))
stack = keras.Sequential([keras.Input((32, 32, 3))] + [keras.layers.Conv2D(4, 3) for _ in range(5)])
print("five stacked 3x3 convs see", receptive_field(stack), "pixels")

# %% [markdown]
# ## The RGB worked example: one output value of a 3x3x3 convolution
# Red contributes 71, green 24 and blue -33: the output is 62.

# %%
red = [[120, 150, 130], [100, 140, 160], [110, 120, 150]]
green = [[50, 70, 90], [60, 80, 100], [70, 90, 110]]
blue = [[30, 20, 40], [50, 40, 30], [60, 50, 40]]
k_red = [[0.1, 0.2, 0.1], [0.0, 0.3, 0.0], [-0.1, 0.0, -0.1]]
k_green = [[-0.1, 0.0, -0.1], [0.2, 0.3, 0.2], [-0.1, 0.0, -0.1]]
k_blue = [[-0.2, -0.1, -0.2], [-0.1, 0.4, -0.1], [-0.2, -0.1, -0.2]]
patch = np.stack([red, green, blue], -1)[None].astype("float32")
conv = keras.layers.Conv2D(1, 3, use_bias=False)
conv.build(patch.shape)
conv.kernel.assign(np.stack([k_red, k_green, k_blue], -1)[..., None].astype("float32"))
float(conv(patch)[0, 0, 0, 0])

# %% [markdown]
# ## Feature maps of a zoo model on a real photo
# scikit-image ships sample photos; the first stage of a (randomly initialized) ResNet-18 already responds to
# edges and colour. With ImageNet weights (`weights="imagenet"` when online) the maps become sharper.

# %%
from skimage import data as skdata

image = keras.ops.image.resize(skdata.astronaut()[None].astype("float32"), (128, 128))
model = cnnzoo.create_model("resnet18", include_top=False, pooling=None, input_shape=(128, 128, 3))
stage1 = keras.Model(model.input, model.get_layer("conv2_block2_out").output)
maps = np.asarray(stage1(image))[0]
fig, axes = plt.subplots(2, 8, figsize=(14, 4))
axes[0, 0].imshow(np.asarray(image[0]).astype("uint8"))
for i, ax in enumerate(axes.flat):
    if i:
        ax.imshow(maps[:, :, i], cmap="viridis")
    ax.axis("off")
plt.tight_layout()
