"""Layers with hand-written forward and feedback; see base.py for the protocol."""
from .base import Layer
from .batchnorm import BatchNorm
from .conv2d import Conv2D
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .locally_connected2d import LocallyConnected2D
from .maxpool2d import MaxPool2D
from .output import Output
from .relu import ReLU

__all__ = ["Layer", "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten",
           "LocallyConnected2D", "MaxPool2D", "Output", "ReLU"]
