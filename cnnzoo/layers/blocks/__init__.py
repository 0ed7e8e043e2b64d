"""The zoo's building blocks, one class per idea; every family builds from these.

Blocks are frozen dataclasses (a block *is* its spec) that add flat, deterministically named Keras layers to a
functional graph when called on a tensor: `Bottleneck(64, strides=2)(x, name="conv3_block1")`. SE, activation,
groups and stochastic depth are injected as fields, not subclassed. Where a block lives:

- `core`: ConvBNAct, SqueezeExcite, BasicBlock, Bottleneck (ResNeXt with `groups`), PreActBottleneck (ResNet v2),
  InvertedResidual (MobileNetV2 / EfficientNet MBConv), `drop_path` (stochastic depth), `Conv2D` (grouped convs
  that export);
- `dense`: DenseLayer, Transition (DenseNet);  `inception`: InceptionConv, Branch, InceptionModule,
  InceptionResNetBlock;  `xception`: XceptionBlock;  `mobilenet_v1`: DepthwiseSeparable;
- `mobilenet_v3`: InvertedResidualV3, SqueezeExciteV3, hard_sigmoid;  `efficientnet_v2`: FusedMBConv, MBConvV2;
- `convnext`: ConvNeXtBlock, LayerScale, gelu;  `nasnet`: NASNetCell, SeparableConvBlock, AdjustBlock, the cell
  specs, SamePadding2D.

Example:
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = ConvBNAct(16, 3, strides=2)(inputs, name="stem")
    >>> x = BasicBlock(16, se_ratio=0.25)(x, name="conv2_block1")
"""
from cnnzoo.layers.blocks.core import (CONV_INIT, BasicBlock, Bottleneck, Conv2D, ConvBNAct, InvertedResidual,
                                       PreActBottleneck, SqueezeExcite, _check_bn, correct_pad, drop_path,
                                       drop_path_rates)
from cnnzoo.layers.blocks.convnext import ConvNeXtBlock, LayerScale, gelu
from cnnzoo.layers.blocks.dense import DenseLayer, Transition
from cnnzoo.layers.blocks.efficientnet_v2 import FusedMBConv, MBConvV2
from cnnzoo.layers.blocks.inception import Branch, InceptionConv, InceptionModule, InceptionResNetBlock
from cnnzoo.layers.blocks.mobilenet_v1 import DepthwiseSeparable
from cnnzoo.layers.blocks.mobilenet_v3 import InvertedResidualV3, SqueezeExciteV3, hard_sigmoid
from cnnzoo.layers.blocks.nasnet import AdjustBlock, CellSpec, NASNetCell, SamePadding2D, SeparableConvBlock
from cnnzoo.layers.blocks.xception import XceptionBlock

__all__ = ["CONV_INIT", "BasicBlock", "Bottleneck", "Conv2D", "ConvBNAct", "InvertedResidual", "PreActBottleneck",
           "SqueezeExcite", "correct_pad", "drop_path", "drop_path_rates", "ConvNeXtBlock", "LayerScale", "gelu",
           "DenseLayer", "Transition", "FusedMBConv", "MBConvV2", "Branch", "InceptionConv", "InceptionModule",
           "InceptionResNetBlock", "DepthwiseSeparable", "InvertedResidualV3", "SqueezeExciteV3", "hard_sigmoid",
           "AdjustBlock", "CellSpec", "NASNetCell", "SamePadding2D", "SeparableConvBlock", "XceptionBlock"]
