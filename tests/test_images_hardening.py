"""The shared decoder refuses or repairs hostile images out loud (issue 11, "Images")."""

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from bt_core.data.dataset import load_dataset
from bt_core.data.images import (
    MAX_PIXELS,
    ImageLimits,
    UnreadableImageError,
    decode_image_bytes,
    read_image,
)
from imagefolders import make_pool


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit grey PNG of ``width`` x ``height`` black pixels, compressed to ~100 KB."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    block = row * 1000
    body = b"".join(packer.compress(block) for _ in range(height // 1000)) + packer.compress(row * (height % 1000))
    body += packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_png()


def test_decompression_bomb_is_refused_from_its_header_fast(bomb, tmp_path):
    assert len(bomb) < 1_000_000
    started = time.perf_counter()
    with pytest.raises(UnreadableImageError) as refused:
        decode_image_bytes(bomb, 32)
    assert time.perf_counter() - started < 2.0  # decoding would take tens of seconds and ~1 GB
    message = str(refused.value)
    assert "30,000 x 30,000" in message and f"{MAX_PIXELS:,}" in message
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(UnreadableImageError, match=r"bomb\.png: .*30,000 x 30,000.*50,000,000"):
        read_image(tmp_path / "bomb.png", 32)


def test_pixel_limit_is_an_argument_and_applies_to_jpeg_headers_too():
    image = png(np.full((200, 300), 90, np.uint8))
    assert decode_image_bytes(image, 16).shape == (16, 16, 3)
    with pytest.raises(UnreadableImageError, match=r"300 x 200 = 60,000 pixels.*limit of 50,000"):
        decode_image_bytes(image, 16, limits=ImageLimits(max_pixels=50_000))
    jpeg = cv2.imencode(".jpg", np.full((200, 300), 90, np.uint8))[1].tobytes()
    with pytest.raises(UnreadableImageError, match="limit of 50,000"):
        decode_image_bytes(jpeg, 16, limits=ImageLimits(max_pixels=50_000))


def test_training_skips_and_reports_a_bomb_like_any_unreadable_file(bomb, tmp_path):
    make_pool(tmp_path, per_class=8)
    (tmp_path / "glioma" / "bomb.png").write_bytes(bomb)
    data = load_dataset(tmp_path, image_size=16, seed=0)
    reasons = {s.path: s.reason for s in data.skipped}
    assert "MAX_PIXELS" in reasons["glioma/bomb.png"]
    assert not data.split["path"].eq("glioma/bomb.png").any()


def test_twelve_bit_data_in_a_16_bit_png_keeps_its_contrast():
    twelve = np.zeros((32, 32), np.uint16)
    twelve[8:24, 8:24] = 4095
    twelve[:, :4] = 2048
    out = decode_image_bytes(png(twelve), 32)
    assert out.dtype == np.uint8 and out.max() == 255  # not max 15/255 as with a 65535 scale
    assert out[16, 16, 0] == 255 and out[16, 1, 0] == round(2048 * 255 / 4095) and out[0, 16, 0] == 0


def test_full_range_16_bit_is_scaled_by_65535():
    full = np.full((32, 32), 65535, np.uint16)
    full[:, :16] = 32768
    out = decode_image_bytes(png(full), 32)
    assert out[0, 20, 0] == 255 and out[0, 2, 0] == round(32768 * 255 / 65535)
    colour = np.zeros((32, 32, 3), np.uint16)
    colour[..., 2] = 4000  # red, 12-bit
    rgb = decode_image_bytes(png(colour), 32)
    assert (rgb[..., 0] == round(4000 * 255 / 4095)).all() and (rgb[..., 1:] == 0).all()


def test_rgba_is_composited_on_black_not_showing_hidden_rgb():
    bgra = np.zeros((32, 32, 4), np.uint8)
    bgra[..., :3] = 200  # bright RGB everywhere ...
    bgra[..., 3] = 0  # ... hidden by full transparency
    bgra[:16, :, 3] = 255  # top half opaque
    bgra[16:, :16, 3] = 128  # half transparent quarter
    out = decode_image_bytes(png(bgra), 32, limits=ImageLimits())
    assert (out[:16] == 200).all()
    assert (out[16:, 16:] == 0).all()
    assert (out[16:, :16] == round(200 * 128 / 255)).all()


def test_grey_alpha_and_transparent_palette_pngs_are_composited_too():
    grey_alpha = np.zeros((32, 32, 2), np.uint8)
    grey_alpha[..., 0] = 180
    grey_alpha[:, 16:, 1] = 255
    buffer = io.BytesIO()
    Image.fromarray(grey_alpha, "LA").save(buffer, "PNG")
    out = decode_image_bytes(buffer.getvalue(), 32)
    assert (out[:, :16] == 0).all() and (out[:, 16:] == 180).all()
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 250, 250, 250] + [0] * 762)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=1)  # every pixel is the transparent entry
    assert (decode_image_bytes(buffer.getvalue(), 32) == 0).all()


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 1), r"1 x 1 pixels, below the minimum side of 16 px"),
        ((15, 40), r"40 x 15 pixels, below the minimum side of 16 px"),
        ((20, 5000), r"5000 x 20 pixels, an aspect ratio of 250.0:1, above the limit of 4:1"),
        ((100, 20), r"20 x 100 pixels, an aspect ratio of 5.0:1"),
    ],
)
def test_tiny_and_extremely_thin_images_are_refused(shape, message):
    with pytest.raises(UnreadableImageError, match=message):
        decode_image_bytes(png(np.full(shape, 100, np.uint8)), 32)


def test_size_limits_at_the_boundary_are_accepted_and_can_be_switched_off():
    assert decode_image_bytes(png(np.full((16, 64), 100, np.uint8)), 32).shape == (32, 32, 3)  # 16 px, 4:1
    off = ImageLimits(max_pixels=None, min_side=None, max_aspect=None)
    assert (decode_image_bytes(png(np.full((1, 1), 100, np.uint8)), 8, limits=off) == 100).all()


def test_size_limits_also_apply_when_only_opencv_reads_the_format(monkeypatch):
    from bt_core.data import images

    def unreadable_header(*args, **kwargs):
        raise images.UnidentifiedImageError("no header")

    monkeypatch.setattr(images.Image, "open", unreadable_header)
    with pytest.raises(UnreadableImageError, match="minimum side"):
        decode_image_bytes(png(np.full((4, 4), 100, np.uint8)), 8)
    assert (decode_image_bytes(png(np.full((20, 20), 100, np.uint8)), 8) == 100).all()


def test_ordinary_8_bit_images_decode_exactly_as_opencv_imread_color():
    rng = np.random.default_rng(0)
    for array in (rng.integers(0, 256, (40, 50), dtype=np.uint8), rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)):
        for encoded in (png(array), cv2.imencode(".jpg", array)[1].tobytes()):
            expected = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
            expected = cv2.resize(cv2.cvtColor(expected, cv2.COLOR_BGR2RGB), (32, 32), interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(decode_image_bytes(encoded, 32), expected)
