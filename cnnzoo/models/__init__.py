"""The zoo's families; importing this package registers every model, and it is the zoo's API.

The registry (`cnnzoo.registry`) only stores and looks up entries and imports no family; this package imports
the families (each registers its names) and then hands out the registry's functions, so a lookup through here
(or through `cnnzoo.create_model`, `cnnzoo.list_models`, `cnnzoo.registry`) always sees every model.
`cnnzoo.models.efficientnet` is both the EfficientNet module and, called, the any-phi builder.

Example:
    >>> model = cnnzoo.models.efficientnet(phi=2.5, num_classes=5)
"""
from cnnzoo.models import (convnext, densenet, efficientnet, efficientnet_v2, inception, mobilenet,  # noqa: F401
                           mobilenet_v1, mobilenet_v3, nasnet, resnet, vgg, xception)
from cnnzoo.models.segmentation import create_segmenter  # noqa: E402
import cnnzoo.registry as registry  # noqa: E402
from cnnzoo.registry import (create_model, finetune_groups, get_entry, list_models, model_info,  # noqa: E402
                             register_model)

__all__ = ["convnext", "densenet", "efficientnet", "efficientnet_v2", "inception", "mobilenet", "mobilenet_v1",
           "mobilenet_v3", "nasnet", "resnet", "vgg", "xception", "registry", "create_model", "finetune_groups",
           "get_entry", "list_models", "model_info", "register_model", "create_segmenter"]
