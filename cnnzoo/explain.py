"""`cnnzoo.explain`: Grad-CAM heatmaps (implemented in `cnnzoo.evaluate.explain`, next to the other diagnostics).

Example:
    >>> from cnnzoo.explain import grad_cam, overlay
    >>> heatmap = grad_cam(model, image)            # doctest: +SKIP
"""
from cnnzoo.evaluate.explain import grad_cam, last_conv_layer, overlay

__all__ = ["grad_cam", "overlay", "last_conv_layer"]
