"""Networks onto crossbars: a numpy layer graph, torch import, mapping and inference."""

from memsim.mapping.graph import Graph, Node, im2col
from memsim.mapping.network import Block, LayerMap, MappedNetwork, MatrixMap, map_network

__all__ = ["Block", "Graph", "LayerMap", "MappedNetwork", "MatrixMap", "Node", "im2col",
           "map_network"]
