"""Layers and blocks: the zoo's building blocks, the in-model preprocessing, and the convolution toolbox.

Example:
    >>> from cnnzoo.layers import Bottleneck, Preprocessing
"""
from cnnzoo.layers.blocks import (BasicBlock, Bottleneck, ConvBNAct, ConvNeXtBlock, DenseLayer, DepthwiseSeparable,
                                  FusedMBConv, InceptionModule, InceptionResNetBlock, InvertedResidual,
                                  InvertedResidualV3, NASNetCell, PreActBottleneck, SqueezeExcite, Transition,
                                  XceptionBlock)
from cnnzoo.layers.preprocessing import Preprocessing
from cnnzoo.layers.arithmetic import conv_output_size
from cnnzoo.layers.padding import Padding2D
from cnnzoo.layers.pooling import (GLOBAL_POOLINGS, AdaptiveAveragePooling2D, AdaptiveMaxPooling2D, GlobalLpPooling2D,
                                   GlobalMixedPooling2D, LpPooling2D, MixedPooling2D, SpatialPyramidPooling2D,
                                   StochasticPooling2D)
from cnnzoo.layers.pyramid import FeaturePyramid
from cnnzoo.layers.receptive import receptive_field
from cnnzoo.layers.resize import ResizeLike

__all__ = ["BasicBlock", "Bottleneck", "ConvBNAct", "InvertedResidual", "SqueezeExcite", "PreActBottleneck",
           "DenseLayer", "Transition", "InceptionModule", "InceptionResNetBlock", "XceptionBlock",
           "DepthwiseSeparable", "InvertedResidualV3", "FusedMBConv", "ConvNeXtBlock", "NASNetCell", "Preprocessing",
           "conv_output_size", "receptive_field", "Padding2D", "MixedPooling2D", "StochasticPooling2D",
           "LpPooling2D", "AdaptiveAveragePooling2D", "AdaptiveMaxPooling2D", "SpatialPyramidPooling2D",
           "GlobalMixedPooling2D", "GlobalLpPooling2D", "GLOBAL_POOLINGS", "FeaturePyramid", "ResizeLike"]
