"""The explanation methods, each a short :class:`CamMethod` subclass registered by name.

Most are thin adapters over tf-keras-vis. Every CAM is asked for its raw map
(``expand_cam=False, normalize_cam=False``): resizing and scaling happen once, in
``bt_core.explain.api.explain``. ``seek_penultimate_conv_layer=False``
always: tf-keras-vis' default silently swaps a non-Conv layer such as ResNet's
``conv5_block3_out`` for the Conv before it (before batch norm and the residual add).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.saliency import Saliency
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.scores import CategoricalScore

from bt_core.explain.method import CamMethod
from bt_core.explain.registry import register_method
from bt_core.explain.views import CompiledPart


def _score(classes: np.ndarray) -> CategoricalScore:
    return CategoricalScore([int(c) for c in classes])


class _TfKerasVisCam(CamMethod):
    """A tf-keras-vis CAM class run on the cached view for the layer."""

    visualizer_class: ClassVar[type]

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        model, self.penultimate_layer = cache.cam_model(layer, compiled)
        self.visualizer = self.visualizer_class(model)

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        cam = self.visualizer(
            _score(classes),
            x,
            penultimate_layer=self.penultimate_layer,
            seek_penultimate_conv_layer=False,
            expand_cam=False,
            normalize_cam=False,
            **options,
        )
        return np.asarray(cam)


@register_method
class GradCam(_TfKerasVisCam):
    name = "gradcam"
    visualizer_class = Gradcam


@register_method
class GradCamPlusPlus(_TfKerasVisCam):
    name = "gradcam++"
    visualizer_class = GradcamPlusPlus


@register_method
class LayerCam(_TfKerasVisCam):
    name = "layercam"
    visualizer_class = Layercam


@register_method
class ScoreCam(_TfKerasVisCam):
    """Score-CAM: one masked forward pass per channel of the layer (2048 for ResNet50).

    tf-keras-vis holds all masked copies at once: about 4 x channels x H x W x 3 float32
    per image (~5 GB for ResNet50 at 224 px), hence one image per call.
    """

    name = "scorecam"
    visualizer_class = Scorecam
    batch_size = 1
    options = {"max_N": None, "predict_batch_size": 32}

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        max_n = options["max_N"]
        channels = self.cache.channels(self.layer)
        # tf-keras-vis rejects max_N above the channel count; that case is full Score-CAM.
        max_n = None if max_n is None or max_n >= channels else int(max_n)
        return super().compute(x, classes, max_N=max_n, batch_size=options["predict_batch_size"])


@register_method
class FasterScoreCam(CamMethod):
    """Faster Score-CAM (Wang et al. 2020): Score-CAM on each image's ``max_N`` channels of
    largest spatial spread, batched.

    The algorithm of tf-keras-vis' ``Scorecam(max_N=...)``, run here because tf-keras-vis
    takes the union of all images' top channels in a batch (changing every map, and
    costing images x channels forward passes), so it must run one image per call, each
    with ``model.predict``'s overhead: about 0.25 s per image even for a tiny CNN. Here
    each image keeps its own channels and a whole batch's masked copies go through the
    compiled model at once. For one image the two agree (tests/test_explain.py).
    Steps: channel maps of ``layer``; per image its ``max_N`` channels by spatial standard
    deviation; each upsampled (bilinear) and min-max scaled to ``[0, 1]`` as a mask of the
    input; the softmax score of the target class for each masked input is that channel's
    weight; the map is ReLU(sum of weight x channel map).
    """

    name = "faster_scorecam"
    batch_size = 16
    options = {"max_N": 10, "predict_batch_size": 64}

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        view, part = cache.cam_model(layer, True)
        if isinstance(part, CompiledPart):
            # The traced parts of the Grad-CAM view: after a Grad-CAM (or warm_up) of this
            # layer, nothing new is traced for the first Faster Score-CAM.
            head = view.get_layer("head")
            self.features = part.forward
            self.logits = lambda x: head.forward(part.forward(x))
        else:  # a layer the head does not follow alone (inside a residual block)
            self.features = cache.feature_function(layer)
            self.logits = cache.whole().forward

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        activations = self.features(tf.constant(x)).numpy()  # (n, h, w, C)
        n, height, width, channels = activations.shape
        top = channels if options["max_N"] is None else max(1, min(int(options["max_N"]), channels))
        spread = activations.reshape(n, -1, channels).std(axis=1)  # (n, C)
        chosen = np.argsort(-spread, axis=1, kind="stable")[:, :top]  # (n, k)
        picked = np.take_along_axis(activations, chosen[:, None, None, :], axis=3)  # (n, h, w, k)
        upsampled = tf.image.resize(picked, x.shape[1:3], method="bilinear").numpy()
        low = upsampled.min(axis=(1, 2), keepdims=True)
        high = upsampled.max(axis=(1, 2), keepdims=True)
        masks = (upsampled - low) / (high - low + 1e-7)  # (n, H, W, k)
        # (n, k, H, W, C_in): every image times each of its k masks.
        masked = x[:, None] * np.moveaxis(masks, -1, 1)[..., None]
        masked = masked.reshape(n * top, *x.shape[1:]).astype(np.float32)
        step = int(options["predict_batch_size"])
        logits = np.concatenate(
            [self.logits(tf.constant(masked[i : i + step])).numpy() for i in range(0, len(masked), step)]
        )
        probabilities = tf.nn.softmax(logits.astype(np.float64), axis=-1).numpy()
        weights = probabilities.reshape(n, top, -1)[np.arange(n), :, classes]  # (n, k)
        cam = np.einsum("nhwk,nk->nhw", picked, weights)
        return np.maximum(cam, 0.0)


@register_method
class SmoothGrad(CamMethod):
    """SmoothGrad saliency: |d score / d input| averaged over noisy copies, max over channels.

    ``noise`` is relative to each image's value range. tf-keras-vis draws the noise from
    NumPy's global generator: with a ``seed`` it is seeded for every call (one image per
    call by default, so a map depends only on its image and seed) and restored after.
    """

    name = "smoothgrad"
    uses_layer = False
    batch_size = 1
    options = {"samples": 20, "noise": 0.2, "seed": 0}

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        self.visualizer = Saliency(cache.saliency_model(compiled))

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        seed = options["seed"]
        state = np.random.get_state() if seed is not None else None
        try:
            if seed is not None:
                np.random.seed(seed)
            saliency = self.visualizer(
                _score(classes),
                x,
                smooth_samples=int(options["samples"]),
                smooth_noise=float(options["noise"]),
                normalize_map=False,
            )
        finally:
            if state is not None:
                np.random.set_state(state)
        return np.asarray(saliency)
