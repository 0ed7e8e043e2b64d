"""Shared helpers for the tuning tests: a tiny generated dataset and a fixed space."""
import numpy as np

from cnnzoo.data import from_arrays

# Everything but the learning rate fixed (batch_size: override it to match the data): a search over
# these spaces compares learning rates only.
FIXED_RECIPE = {"dropout": 0.0, "weight_decay": 1e-4, "label_smoothing": 0.0, "augment": "none", "batch_size": 12}


def color_data(n: int = 240, *, size: int = 32, batch_size: int = 8, seed: int = 0):
    """Three classes of noisy images tinted red, green or blue: learnable in one epoch at a sane rate."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    tints = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])
    x = np.clip(tints[y][:, None, None, :] + rng.normal(0, 40, (n, size, size, 3)), 0, 255).astype("uint8")
    return from_arrays(x, y, class_names=["red", "green", "blue"], batch_size=batch_size, validation_split=0.25,
                       seed=seed)
