"""The explanation methods, each a short :class:`CamMethod` subclass registered by name.

On the compiled path (the default) every method runs on the traced parts of the model's
views (``bt_core.explain.views``): the gradient CAMs on the layer's activations and one
traced head gradient, the Score-CAMs on traced forward passes of masked copies, SmoothGrad
on one traced input gradient of all noisy copies. ``compiled=False`` runs tf-keras-vis
eagerly: the reference each compiled method is tested against (tests/test_explain.py).
Every method returns its raw map; resizing and scaling happen once, in
``bt_core.explain.api.explain``. tf-keras-vis is always called with
``seek_penultimate_conv_layer=False``: its default silently swaps a non-Conv layer such as
ResNet's ``conv5_block3_out`` for the Conv before it (before batch norm and the residual add).
"""

from __future__ import annotations

from abc import abstractmethod
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


def _one_hot(classes: np.ndarray, part: CompiledPart) -> tf.Tensor:
    """Each image's class as the upstream gradient of ``part``'s output: its class score."""
    return tf.one_hot(np.asarray(classes, np.int64), int(part.part.outputs[0].shape[-1]), dtype=tf.float32)


def _tf_keras_vis_cam(visualizer, penultimate_layer, x: np.ndarray, classes: np.ndarray, **options) -> np.ndarray:
    cam = visualizer(
        _score(classes),
        x,
        penultimate_layer=penultimate_layer,
        seek_penultimate_conv_layer=False,
        expand_cam=False,
        normalize_cam=False,
        **options,
    )
    return np.asarray(cam)


# --------------------------------------------------------------------------- gradient CAMs


class _GradientCam(CamMethod):
    """A CAM from the layer's activations ``A`` and the gradients ``G`` of each image's class
    score with respect to them (:meth:`combine`).

    Compiled: ``A`` from the traced feature part of the Grad-CAM view, ``G`` from the traced
    head gradient (the head's forward and backward pass only), so Grad-CAM, Grad-CAM++ and
    LayerCAM share what ``warm_up`` traced. Otherwise (``compiled=False``, or a layer the
    head does not follow alone) tf-keras-vis' ``visualizer_class`` on the model's view.
    """

    visualizer_class: ClassVar[type]

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        view, part = cache.cam_model(layer, compiled)
        self.traced = compiled and isinstance(part, CompiledPart)
        if self.traced:
            self.features, self.head = part.forward, view.get_layer("head")
        else:
            self.visualizer, self.penultimate_layer = self.visualizer_class(view), part

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        if not self.traced:
            return _tf_keras_vis_cam(self.visualizer, self.penultimate_layer, x, classes, **options)
        activations = self.features(tf.constant(x))
        gradients = self.head.gradient(activations, _one_hot(classes, self.head)).numpy()
        cam = self.combine(activations.numpy().astype(np.float64), gradients.astype(np.float64))
        return np.maximum(cam, 0.0).astype(np.float32)

    @staticmethod
    @abstractmethod
    def combine(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        """The map ``(n, h, w)`` (before ReLU) from ``A`` and ``G``, both ``(n, h, w, C)``."""


@register_method
class GradCam(_GradientCam):
    """Grad-CAM: channels weighted by their mean gradient."""

    name = "gradcam"
    visualizer_class = Gradcam

    @staticmethod
    def combine(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        weights = gradients.mean(axis=(1, 2), keepdims=True)
        return (activations * weights).sum(axis=-1)


@register_method
class GradCamPlusPlus(_GradientCam):
    """Grad-CAM++ (Chattopadhyay et al. 2018), as tf-keras-vis computes it, from the same
    single gradient pass as Grad-CAM.

    For an exponential output ``exp(S)`` the second and third derivatives are ``exp(S)``
    times the powers ``G**2`` and ``G**3`` of the first, so nothing beyond ``G`` is needed.
    tf-keras-vis' ``exp(S)`` factor is left out: it cancels in the alphas and scales the
    map by a positive constant per image, which the min-max scaling removes (and it
    overflows float32 for a logit above 88).
    """

    name = "gradcam++"
    visualizer_class = GradcamPlusPlus

    @staticmethod
    def combine(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        squared, cubed = gradients**2, gradients**3
        total = activations.sum(axis=(1, 2), keepdims=True)
        denominator = 2.0 * squared + cubed * total
        # Where the gradient is zero the alpha is zero (tf-keras-vis adds 1 to the denominator).
        usable = (squared != 0.0) & (denominator != 0.0)
        alphas = np.where(usable, squared / np.where(usable, denominator, 1.0), 0.0)
        norm = alphas.sum(axis=(1, 2), keepdims=True)
        alphas = alphas / np.where(norm != 0.0, norm, 1.0)
        weights = (np.maximum(gradients, 0.0) * alphas).sum(axis=(1, 2), keepdims=True)
        return (activations * weights).sum(axis=-1)


@register_method
class LayerCam(_GradientCam):
    """LayerCAM: each activation weighted by its own positive gradient."""

    name = "layercam"
    visualizer_class = Layercam

    @staticmethod
    def combine(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
        return (activations * np.maximum(gradients, 0.0)).sum(axis=-1)


# --------------------------------------------------------------------------- Score-CAMs


def _upsampled_masks(channel_maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Channel maps ``(b, h, w)`` upsampled to ``size`` and min-max scaled to ``[0, 1]``,
    as tf-keras-vis does it (scipy ``zoom(order=1)``: bilinear with aligned corners)."""
    upsampled = tf.raw_ops.ResizeBilinear(
        images=tf.constant(channel_maps[..., np.newaxis], tf.float32), size=list(size),
        align_corners=True, half_pixel_centers=False,
    ).numpy()[..., 0]
    low = upsampled.min(axis=(1, 2), keepdims=True)
    high = upsampled.max(axis=(1, 2), keepdims=True)
    return (upsampled - low) / (high - low + 1e-7)


class _MaskedScoreCam(CamMethod):
    """Score-CAM (Wang et al. 2020) on the traced parts, batched: the algorithm of
    tf-keras-vis' ``Scorecam``, with every image's masked copies through the traced
    features and head in chunks of ``predict_batch_size`` (no ``model.predict`` overhead).

    Steps: channel maps of ``layer``; per image its ``max_N`` channels by spatial standard
    deviation (None: all); each upsampled and min-max scaled to ``[0, 1]`` as a mask of the
    input; the softmax score of the target class for each masked input is that channel's
    weight; the map is ReLU(sum of weight x channel map).
    """

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        view, part = cache.cam_model(layer, True)
        if isinstance(part, CompiledPart):
            # The traced parts of the Grad-CAM view: after a Grad-CAM (or warm_up) of this
            # layer, only the small head is traced for the first Score-CAM.
            head = view.get_layer("head")
            self.features = part.forward
            self.logits = lambda x: head.forward(part.forward(x))
        else:  # a layer the head does not follow alone (inside a residual block)
            self.features = cache.feature_function(layer)
            self.logits = cache.whole().forward

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        activations = self.features(tf.constant(x)).numpy()  # (n, h, w, C)
        n, _height, _width, channels = activations.shape
        top = channels if options["max_N"] is None else max(1, min(int(options["max_N"]), channels))
        spread = activations.reshape(n, -1, channels).std(axis=1)  # (n, C)
        chosen = np.argsort(-spread, axis=1, kind="stable")[:, :top]  # (n, k)
        picked = np.take_along_axis(activations, chosen[:, None, None, :], axis=3)  # (n, h, w, k)
        # A constant channel map (a dead ReLU channel: often half of them) is an all-zero
        # mask, so its masked copy is a black image whatever the image: one pass serves all.
        constant = (picked.max(axis=(1, 2)) == picked.min(axis=(1, 2))).ravel()  # (n * k,)
        black = self._probabilities(np.zeros((1, *x.shape[1:]), np.float32))[0]
        image_of, channel_of = np.divmod(np.arange(n * top), top)
        weights = black[classes[image_of]]
        # Every other (image, channel) pair is one masked copy; a chunk at a time bounds
        # memory (ResNet50's 2048 channels at 224 px would be 1.2 GB of copies per image).
        varying = np.flatnonzero(~constant)
        step = int(options["predict_batch_size"])
        for start in range(0, len(varying), step):
            pairs = varying[start : start + step]
            images, picks = image_of[pairs], channel_of[pairs]
            masks = _upsampled_masks(picked[images, :, :, picks], x.shape[1:3])  # (b, H, W)
            probabilities = self._probabilities((x[images] * masks[..., np.newaxis]).astype(np.float32))
            weights[pairs] = probabilities[np.arange(len(pairs)), classes[images]]
        cam = np.einsum("nhwk,nk->nhw", picked, weights.reshape(n, top))
        return np.maximum(cam, 0.0)

    def _probabilities(self, masked: np.ndarray) -> np.ndarray:
        logits = self.logits(tf.constant(masked)).numpy().astype(np.float64)
        return tf.nn.softmax(logits, axis=-1).numpy()


@register_method
class ScoreCam(_MaskedScoreCam):
    """Score-CAM: one masked forward pass per channel of the layer (2048 for ResNet50).

    Compiled: :class:`_MaskedScoreCam` with every channel; its cost is the forward passes
    (compute-bound: about 1 s per 256 passes of a small CNN at 64 px on 2 cores, minutes for
    ResNet50 at 224 px). ``compiled=False`` runs tf-keras-vis' Scorecam, which holds all
    masked copies at once: about 4 x channels x H x W x 3 float32 per image (~5 GB for
    ResNet50 at 224 px), hence one image per call.
    """

    name = "scorecam"
    batch_size = 1
    options = {"max_N": None, "predict_batch_size": 64}

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        if not compiled:
            self.visualizer, self.penultimate_layer = Scorecam(cache.cam_model(layer, False)[0]), layer

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        if self.compiled:
            return super().compute(x, classes, **options)
        max_n = options["max_N"]
        # tf-keras-vis rejects max_N above the channel count; that case is full Score-CAM.
        max_n = None if max_n is None or max_n >= self.cache.channels(self.layer) else int(max_n)
        return _tf_keras_vis_cam(self.visualizer, self.penultimate_layer, x, classes, max_N=max_n,
                                 batch_size=options["predict_batch_size"])


@register_method
class FasterScoreCam(_MaskedScoreCam):
    """Faster Score-CAM: Score-CAM on each image's ``max_N`` channels of largest spatial
    spread, batched, on both paths.

    Not tf-keras-vis' ``Scorecam(max_N=...)``: that takes the union of all images' top
    channels in a batch (changing every map, and costing images x channels forward
    passes), so it must run one image per call. Here each image keeps its own channels and
    a whole batch's masked copies go through the traced parts together. For one image the
    two agree (tests/test_explain.py).
    """

    name = "faster_scorecam"
    batch_size = 16
    options = {"max_N": 10, "predict_batch_size": 64}


# --------------------------------------------------------------------------- SmoothGrad


@register_method
class SmoothGrad(CamMethod):
    """SmoothGrad saliency: |d score / d input| averaged over noisy copies, max over channels.

    ``noise`` is relative to each image's value range. Compiled: every noisy copy of the
    batch goes through one traced input gradient of the whole model (in chunks of
    ``GRADIENT_BATCH`` copies) instead of tf-keras-vis' one eager call per sample. The noise
    is drawn as tf-keras-vis draws it for one image: with a ``seed``, from a generator
    seeded per image (a map depends only on its image and seed, and NumPy's global
    generator is left alone); without, from NumPy's global generator.
    """

    name = "smoothgrad"
    uses_layer = False
    batch_size = 1
    options = {"samples": 20, "noise": 0.2, "seed": 0}
    GRADIENT_BATCH = 32

    def __init__(self, cache, layer, compiled) -> None:
        super().__init__(cache, layer, compiled)
        if compiled:
            self.whole = cache.whole()
        else:
            self.visualizer = Saliency(cache.saliency_model(False))

    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        samples, noise, seed = int(options["samples"]), float(options["noise"]), options["seed"]
        if not self.compiled:
            return self._tf_keras_vis(x, classes, samples, noise, seed)
        copies = np.concatenate([self._noisy_copies(image, samples, noise, seed) for image in x])
        copy_classes = np.repeat(classes, samples)
        gradients = np.concatenate([
            np.abs(self.whole.gradient(tf.constant(copies[start : start + self.GRADIENT_BATCH]),
                                       _one_hot(copy_classes[start : start + self.GRADIENT_BATCH], self.whole)))
            for start in range(0, len(copies), self.GRADIENT_BATCH)
        ])
        return gradients.reshape(len(x), samples, *x.shape[1:]).mean(axis=1).max(axis=-1)

    @staticmethod
    def _noisy_copies(image: np.ndarray, samples: int, noise: float, seed: int | None) -> np.ndarray:
        """``samples`` copies of ``image`` with Gaussian noise, drawn as tf-keras-vis draws them."""
        sigma = np.float32(noise) * (image.max() - image.min())  # float32, as tf-keras-vis computes it
        shape = (samples, 1, *image.shape)
        draws = np.random.normal(0.0, sigma, shape) if seed is None else np.random.RandomState(seed).normal(
            0.0, sigma, shape)
        return (image + draws.astype(np.float32))[:, 0]

    def _tf_keras_vis(self, x: np.ndarray, classes: np.ndarray, samples: int, noise: float,
                      seed: int | None) -> np.ndarray:
        state = np.random.get_state() if seed is not None else None
        try:
            if seed is not None:
                np.random.seed(seed)
            saliency = self.visualizer(_score(classes), x, smooth_samples=samples, smooth_noise=noise,
                                       normalize_map=False)
        finally:
            if state is not None:
                np.random.set_state(state)
        return np.asarray(saliency)
