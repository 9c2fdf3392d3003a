"""Networks onto crossbars: a numpy layer graph, torch import, mapping and inference."""

from memsim.mapping.description import (
    Block as ArrayBlock,
)
from memsim.mapping.description import (
    LayerDesc,
    NetworkDescription,
    NodeDesc,
    as_description,
    cut_matrix,
    describe_graph,
    pack_groups,
)
from memsim.mapping.graph import Graph, Node, im2col
from memsim.mapping.network import MappedNetwork, map_network

__all__ = [
    "ArrayBlock",
    "Graph",
    "LayerDesc",
    "MappedNetwork",
    "NetworkDescription",
    "Node",
    "NodeDesc",
    "as_description",
    "cut_matrix",
    "describe_graph",
    "im2col",
    "map_network",
    "pack_groups",
]
