"""Window geometry against brute-force references built loop by loop."""

import itertools

import numpy as np
import pytest
from keras import ops

from swin_gao_lib.model.windows import (
    MASK_VALUE,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


@pytest.mark.parametrize("h,w,m", [(8, 8, 2), (16, 16, 4), (6, 9, 3), (4, 4, 4)])
def test_partition_reverse_round_trip(h, w, m):
    x = np.random.default_rng(0).random((2, h, w, 5)).astype("float32")
    windows = window_partition(ops.convert_to_tensor(x), m)
    assert tuple(windows.shape) == (2 * (h // m) * (w // m), m, m, 5)
    back = ops.convert_to_numpy(window_reverse(windows, m, h, w))
    np.testing.assert_array_equal(back, x)


def test_partition_order_is_row_major_windows():
    # Window k of image b holds pixels (r, c) with r // m, c // m = divmod(k, W/m).
    h = w = 4
    m = 2
    x = np.arange(h * w, dtype="float32").reshape(1, h, w, 1)
    windows = ops.convert_to_numpy(window_partition(ops.convert_to_tensor(x), m))
    for k in range(4):
        wr, wc = divmod(k, w // m)
        expected = x[0, wr * m:(wr + 1) * m, wc * m:(wc + 1) * m, 0]
        np.testing.assert_array_equal(windows[k, :, :, 0], expected)


@pytest.mark.parametrize("m", [1, 2, 3, 7])
def test_relative_position_index_brute_force(m):
    idx = relative_position_index(m)
    tokens = list(itertools.product(range(m), range(m)))  # row-major (y, x)
    for i, (yi, xi) in enumerate(tokens):
        for j, (yj, xj) in enumerate(tokens):
            assert idx[i, j] == (yi - yj + m - 1) * (2 * m - 1) + (xi - xj + m - 1)
    assert idx.min() == 0 and idx.max() == (2 * m - 1) ** 2 - 1


def brute_force_mask(h, w, m, s):
    """After rolling by -s, two tokens of a window may attend iff their displacement did not
    change by wrapping round the border."""
    nw = (h // m) * (w // m)
    mask = np.zeros((nw, m * m, m * m), dtype="float32")
    for k in range(nw):
        wr, wc = divmod(k, w // m)
        cells = [(wr * m + a, wc * m + b) for a in range(m) for b in range(m)]
        # original pixel of rolled position (r, c) is ((r + s) % h, (c + s) % w)
        orig = [((r + s) % h, (c + s) % w) for r, c in cells]
        for i in range(m * m):
            for j in range(m * m):
                same = (orig[i][0] - orig[j][0] == cells[i][0] - cells[j][0]
                        and orig[i][1] - orig[j][1] == cells[i][1] - cells[j][1])
                mask[k, i, j] = 0.0 if same else MASK_VALUE
    return mask


@pytest.mark.parametrize("h,w,m,s", [(4, 4, 2, 1), (8, 8, 4, 2), (16, 16, 2, 1), (6, 9, 3, 1),
                                     (8, 8, 4, 1), (8, 8, 4, 3)])
def test_shifted_window_mask_brute_force(h, w, m, s):
    mask = brute_force_mask(h, w, m, s)
    np.testing.assert_array_equal(shifted_window_mask(h, w, m, s), mask)
    assert not mask[0].any() and (mask[-1] == MASK_VALUE).any()  # only edge windows mix regions
