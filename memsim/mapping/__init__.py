"""Networks onto crossbars: a numpy layer graph, torch import, mapping and inference."""

from memsim.mapping.description import (
    Block as ArrayBlock,
)
from memsim.mapping.description import (
    LayerDesc,
    NetworkDescription,
    NodeDesc,
    cut_matrix,
    describe_graph,
    pack_groups,
)
from memsim.mapping.graph import Graph, Node, im2col
from memsim.mapping.network import Block, LayerMap, MappedNetwork, MatrixMap, map_network

__all__ = [
    "ArrayBlock",
    "Block",
    "Graph",
    "LayerDesc",
    "LayerMap",
    "MappedNetwork",
    "MatrixMap",
    "NetworkDescription",
    "Node",
    "NodeDesc",
    "cut_matrix",
    "describe_graph",
    "im2col",
    "map_network",
    "pack_groups",
]
