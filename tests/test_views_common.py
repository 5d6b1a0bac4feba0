"""bt_dashboard.views.common: the names and readers every view shares (no Streamlit)."""

import numpy as np

from bt_dashboard.views import common as view


def test_image_positions_find_ids_in_the_archive():
    positions = view.image_positions(np.array(["a", "b", "c"]), ["c", "a", "zz"])
    assert positions.tolist() == [2, 0, -1]
