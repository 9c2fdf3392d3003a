"""The mapped-network description the chip consumes: block cuts, group packing, shapes."""

from __future__ import annotations

import numpy as np
import pytest

import memsim
from memsim.mapping.description import cut_matrix, describe_graph, pack_groups


def test_hermes_resnet9_deep_layer_cuts_at_channel_boundaries():
    # Le Gallo 2023: Conv5-7 are 2016x224 and sit on 8 cores of 252 rows (28 ch x 3x3).
    blocks = cut_matrix((2016, 224), 256, 256, row_unit=9)
    assert len(blocks) == 8
    assert {b.shape for b in blocks} == {(252, 224)}
    assert [b.r0 for b in blocks] == [252 * k for k in range(8)]
    assert len(cut_matrix((1008, 112), 256, 256, row_unit=9)) == 4
    assert len(cut_matrix((27, 56), 256, 256, row_unit=9)) == 1


def test_cut_covers_matrix_exactly_once():
    blocks = cut_matrix((700, 600), 256, 256, row_unit=9)
    cover = np.zeros((700, 600), dtype=int)
    for b in blocks:
        assert b.r1 - b.r0 <= 256 and b.c1 - b.c0 <= 256
        cover[b.r0:b.r1, b.c0:b.c1] += 1
    assert np.all(cover == 1)
    assert len({b.array for b in blocks}) == len(blocks)


def test_depthwise_groups_pack_block_diagonally():
    # 96 depthwise 3x3 channels: 9x1 per group, 28 per 256x256 array -> 4 arrays, not 96
    blocks = pack_groups(96, (9, 1), 256, 256, row_unit=9)
    assert len({b.array for b in blocks}) == 4
    for a in range(4):
        mine = [b for b in blocks if b.array == a]
        rows = [(b.row_offset, b.row_offset + 9) for b in mine]
        cols = [(b.col_offset, b.col_offset + 1) for b in mine]
        assert all(r1 <= 256 for _, r1 in rows) and all(c1 <= 256 for _, c1 in cols)
        assert len(set(rows)) == len(mine) and len(set(cols)) == len(mine)  # no overlap


def test_describe_graph_of_a_cnn():
    rng = np.random.default_rng(0)
    g = memsim.Graph((3, 8, 8), "tiny")
    h = g.conv2d(g.input, rng.standard_normal((40, 3, 3, 3)), padding=1, name="c1")
    h = g.relu(h)
    h = g.conv2d(h, rng.standard_normal((40, 1, 3, 3)), padding=1, groups=40, name="dw")
    h = g.flatten(g.global_avgpool(h))
    g.set_output(g.linear(h, rng.standard_normal((10, 40)), name="fc"))
    cfg = memsim.TileConfig(rows=64, cols=64)
    d = describe_graph(g, cfg)
    assert [la.name for la in d.layers] == ["c1", "dw", "fc"]
    c1, dw, fc = d.layers
    assert c1.mvms_per_inference == 64 and c1.arrays == 1 and c1.weights == 27 * 40
    assert dw.arrays == 6  # 7 groups of 9 rows fit 64 rows: ceil(40 / 7)
    assert fc.mvms_per_inference == 1
    assert d.output == "fc" and d.shapes["fc"] == (10,)
    rep = d.report()
    assert rep["total_tiles"] == 1 + 6 + 1
    assert rep["total_weights"] == 27 * 40 + 9 * 40 + 400
    assert {x["op"] for x in rep["digital"]} >= {"relu", "global_avgpool", "flatten"}


def test_empty_matrix_is_refused():
    with pytest.raises(memsim.ConfigError, match="no weights"):
        cut_matrix((0, 5), 256, 256)
