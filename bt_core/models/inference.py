"""A model's outputs on many inputs, in batches of ``predict_on_batch``: no tf.data pipeline
(whose map op logs a C++ error line per call once TensorFlow's op determinism is on) and no
single allocation for a long list of large images."""

from __future__ import annotations

from typing import Any

import numpy as np

PREDICT_BATCH = 64  # inputs per model call


def predict_in_batches(model: Any, inputs: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """``model``'s outputs on ``inputs`` (already preprocessed), batch by batch."""
    if not len(inputs):
        return np.asarray(model.predict(inputs, verbose=0))
    return np.concatenate([np.asarray(model.predict_on_batch(inputs[start:start + batch_size]))
                           for start in range(0, len(inputs), batch_size)])
