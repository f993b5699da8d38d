"""Agreement and segmentation metrics."""

import numpy as np

from fetalhc.metrics import roc_auc


def test_roc_auc():

    assert roc_auc(np.array([0, 0, 1, 1], bool), np.array([1.0, 2.0, 3.0, 4.0])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1], bool), np.array([4.0, 3.0, 2.0, 1.0])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1], bool), np.array([1.0, 1.0, 2.0, 2.0])) == 0.5
    assert roc_auc(np.array([1, 1], bool), np.array([1.0, 2.0])) is None

