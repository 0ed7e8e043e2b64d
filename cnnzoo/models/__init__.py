"""The zoo's families; importing this package registers every model.

`cnnzoo.models.efficientnet` is both the EfficientNet module and, called, the any-phi builder.

Example:
    >>> model = cnnzoo.models.efficientnet(phi=2.5, num_classes=5)
"""
from cnnzoo.models import efficientnet, mobilenet, resnet, vgg  # noqa: F401

__all__ = ["efficientnet", "mobilenet", "resnet", "vgg"]
