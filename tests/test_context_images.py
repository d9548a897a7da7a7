"""Images to ``image_url`` parts: real figures, PIL images, arrays, bytes and files."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kimi_jupyter.context import (
    ContextError,
    ImageInfo,
    image_part,
    image_part_with_info,
    is_image_like,
    sniff_image_format,
)


def decode(part: dict) -> tuple[str, bytes, Image.Image]:
    assert part["type"] == "image_url"
    url = part["image_url"]["url"]
    head, payload = url.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    raw = base64.b64decode(payload)
    return head[5:-7], raw, Image.open(io.BytesIO(raw))


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid grayscale PNG of any size, built without allocating its pixels."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


# -- matplotlib --------------------------------------------------------------------------


def test_figure_renders_png_at_its_dpi():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_subplot()
    ax.plot([1, 3, 2])
    part, info = image_part_with_info(fig)
    mime, raw, img = decode(part)
    assert mime == "image/png" and img.format == "PNG"
    assert img.size == (info.width, info.height)
    # bbox_inches="tight" trims margins: close to, and not larger than, 400x300.
    assert 250 < img.width <= 400 and 180 < img.height <= 300
    assert info.bytes == len(raw)
    assert info.label() == f"[image {img.width}x{img.height} png]"

    fig2 = Figure(figsize=(4, 3), dpi=200)
    fig2.add_subplot().plot([1, 2])
    _, _, img2 = decode(image_part(fig2))
    assert img2.width > 1.5 * img.width


def test_axes_and_subplot_arrays_are_figures():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    axes = fig.subplots(1, 2)
    axes[0].plot([1, 2])
    assert is_image_like(axes[0]) and is_image_like(fig) and is_image_like(axes)
    _, _, a = decode(image_part(axes[0]))
    _, _, b = decode(image_part(axes))
    assert a.size == b.size


def test_huge_figure_is_rendered_small():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(100, 60), dpi=100)  # 10000x6000 at its own dpi
    fig.add_subplot().plot([1, 2])
    _, info = image_part_with_info(fig)
    assert info.width <= 4096 and info.height <= 2160


# -- PIL and encoded bytes ----------------------------------------------------------------


def test_8000_square_downscaled_to_fit_box():
    img = Image.new("RGB", (8000, 8000), (30, 120, 200))
    part, info = image_part_with_info(img)
    _, _, out = decode(part)
    assert out.size == (2160, 2160) == (info.width, info.height)
    assert (info.original_width, info.original_height) == (8000, 8000)
    assert info.resized


def test_8000_png_bytes_downscaled_keeping_aspect():
    data = encoded(Image.new("L", (8000, 3000), 128), "PNG", compress_level=1)
    part, info = image_part_with_info(data)
    mime, _, out = decode(part)
    assert mime == "image/png" and info.resized
    assert out.size == (4096, 1536)
    portrait = encoded(Image.new("L", (3000, 5000), 9), "PNG", compress_level=1)
    _, _, out = decode(image_part(portrait))
    assert out.size == (2160, 3600)


def test_custom_max_size_either_orientation():
    img = Image.new("RGB", (1000, 500))
    _, info = image_part_with_info(img, max_size=(200, 400))
    assert (info.width, info.height) == (400, 200)


def test_small_png_and_jpeg_pass_through_untouched():
    png = encoded(Image.new("RGBA", (64, 32), (1, 2, 3, 128)), "PNG")
    jpeg = encoded(Image.new("RGB", (64, 32), (200, 10, 10)), "JPEG", quality=75)
    webp = encoded(Image.new("RGB", (20, 20), (0, 200, 10)), "WEBP")
    for data, mime in ((png, "image/png"), (jpeg, "image/jpeg"), (webp, "image/webp")):
        part, info = image_part_with_info(data)
        got_mime, raw, _ = decode(part)
        assert raw == data and got_mime == mime == info.mime
        assert not info.resized


def test_cmyk_jpeg_becomes_rgb_jpeg():
    data = encoded(Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    mime, _, out = decode(image_part(data))
    assert mime == "image/jpeg" and out.mode == "RGB" and out.size == (120, 80)
    r, g, b = out.getpixel((60, 40))
    assert r > 200 and g < 60 and b < 60  # cyan-free, magenta+yellow = red


def test_16bit_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256 * 64).reshape(64, 256).astype(np.uint16)
    data = encoded(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    mime, _, out = decode(image_part(data))
    assert mime == "image/png" and out.mode == "L"
    values = np.asarray(out)
    assert values.min() == 0 and values.max() == 255
    assert 100 < values[32, 128] < 160  # mid-grey, not clipped to white


def test_palette_and_la_modes_are_converted_when_reencoded():
    pal = Image.new("P", (400, 100), 3)
    _, info = image_part_with_info(pal, max_size=(200, 200))
    assert info.mime == "image/png" and (info.width, info.height) == (200, 50)
    la = Image.new("LA", (50, 50), (100, 50))
    _, _, out = decode(image_part(la))
    assert out.mode == "RGBA"


def test_animated_gif_kept_when_small_first_frame_png_when_large():
    frames = [Image.new("RGB", (64, 48), color) for color in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    gif = buf.getvalue()
    assert Image.open(io.BytesIO(gif)).n_frames == 3
    part, info = image_part_with_info(gif)
    mime, raw, out = decode(part)
    assert mime == "image/gif" == info.mime and raw == gif and out.n_frames == 3
    mime, _, out = decode(image_part(gif, max_size=(32, 32)))
    assert mime == "image/png" and out.size == (32, 24)
    r, g, b = out.convert("RGB").getpixel((16, 12))
    assert r > 200 and g < 50 and b < 50  # the first (red) frame


def test_exif_rotated_jpeg_is_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encoded(Image.new("RGB", (80, 40), "white"), "JPEG", exif=exif)
    part, info = image_part_with_info(data)
    assert (info.width, info.height) == (40, 80)
    assert decode(part)[2].size == (40, 80)


def test_large_jpeg_is_decoded_at_reduced_scale():
    data = encoded(Image.new("RGB", (3000, 2000), "blue"), "JPEG")
    # With a 1-megapixel decode limit the JPEG is drafted at 1/2..1/8 scale instead of refused.
    _, info = image_part_with_info(data, max_size=(300, 300), max_pixels=1_000_000)
    assert (info.width, info.height) == (300, 200) and info.mime == "image/jpeg"
    assert (info.original_width, info.original_height) == (3000, 2000)


def test_decompression_bomb_png_is_refused_clearly():
    bomb = png_of_zeros(20000, 20000)
    with pytest.raises(ContextError, match=r"too large|megapixel"):
        image_part(bomb)
    moderate = png_of_zeros(9000, 9000)  # 81 Mpx: under Pillow's limit, over ours
    with pytest.raises(ContextError, match=r"9000x9000 pixels .*megapixel limit"):
        image_part(moderate)


def test_corrupt_and_foreign_bytes_raise_context_error():
    png = encoded(Image.new("RGB", (64, 64), "red"), "PNG")
    with pytest.raises(ContextError, match="corrupt or truncated"):
        image_part(png[: len(png) // 2])
    with pytest.raises(ContextError, match="not a PNG, JPEG, GIF or WEBP"):
        image_part(b"hello, not an image at all")
    with pytest.raises(ContextError, match="corrupt"):
        image_part(b"\xff\xd8\xff\xe0" + b"\x00" * 40)


def test_paths(tmp_path: Path):
    path = tmp_path / "pic.png"
    data = encoded(Image.new("RGB", (10, 10), "red"), "PNG")
    path.write_bytes(data)
    for value in (path, str(path)):
        assert decode(image_part(value))[1] == data
    with pytest.raises(ContextError, match=r"missing\.png' not found"):
        image_part(tmp_path / "missing.png")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ContextError, match=r"broken\.jpg"):
        image_part(bad)
    with pytest.raises(ContextError, match="not a file"):
        image_part(tmp_path)


def test_urls_and_data_urls():
    with pytest.raises(ContextError, match="not web links"):
        image_part("https://example.com/cat.png")
    data = encoded(Image.new("RGB", (4, 4)), "PNG")
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert image_part(url)["image_url"]["url"] == url


def test_ipython_image_object():
    from IPython.display import Image as IPImage

    data = encoded(Image.new("RGB", (12, 8), "green"), "PNG")
    assert is_image_like(IPImage(data=data))
    assert decode(image_part(IPImage(data=data)))[1] == data
    with pytest.raises(ContextError, match="web link"):
        image_part(IPImage(url="https://example.com/x.png", embed=False))


def test_not_an_image():
    with pytest.raises(ContextError, match="not an image"):
        image_part({"a": 1})
    with pytest.raises(ContextError, match="max_size"):
        image_part(Image.new("L", (2, 2)), max_size=(0, 10))


# -- numpy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "mode"),
    [
        (np.full((20, 30), 7, np.uint8), "L"),
        (np.zeros((20, 30, 3), np.uint8), "RGB"),
        (np.zeros((20, 30, 4), np.uint8), "RGBA"),
        (np.zeros((20, 30, 1), np.uint8), "L"),
        (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100, "L"),
        (np.eye(20, 30, dtype=bool), "L"),
        (np.random.default_rng(0).random((20, 30)), "L"),
        (np.random.default_rng(0).random((20, 30, 3)).astype(np.float32), "RGB"),
        (np.random.default_rng(0).normal(0, 100, (20, 30)), "L"),
        (np.arange(-300, 300, dtype=np.int64).reshape(20, 30), "L"),
        (np.zeros((3, 20, 30), np.uint8), "RGB"),  # channels first
    ],
)
def test_arrays_of_many_dtypes(array: np.ndarray, mode: str):
    _, _, out = decode(image_part(array))
    assert out.mode == mode and out.size == (30, 20)


def test_array_normalisation_values():
    floats = np.array([[0.0, 0.5, 1.0] * 4] * 12)
    got = np.asarray(decode(image_part(floats))[2])
    assert got[0, 0] == 0 and got[0, 1] in (127, 128) and got[0, 2] == 255
    spread = np.array([[-5.0, 0.0, 5.0] * 4] * 12)
    got = np.asarray(decode(image_part(spread))[2])
    assert got[0, 0] == 0 and got[0, 2] == 255
    with_nan = floats.copy()
    with_nan[0, 0] = np.nan
    assert np.asarray(decode(image_part(with_nan))[2])[0, 0] == 0
    booleans = np.zeros((10, 10), bool)
    booleans[0, 0] = True
    got = np.asarray(decode(image_part(booleans))[2])
    assert got[0, 0] == 255 and got[1, 1] == 0


def test_huge_array_is_strided_then_resized():
    arr = np.zeros((20000, 20000), np.uint8)  # calloc'd: untouched pages cost nothing
    _, info = image_part_with_info(arr)
    assert (info.width, info.height) == (2160, 2160)


def test_bad_arrays():
    with pytest.raises(ContextError, match="shape"):
        image_part(np.zeros(10))
    with pytest.raises(ContextError, match="dtype"):
        image_part(np.zeros((10, 10), complex))
    with pytest.raises(ContextError, match="empty"):
        image_part(np.zeros((0, 10), np.uint8))


def test_is_image_like_heuristics():
    assert is_image_like(np.zeros((64, 64), np.uint8))
    assert is_image_like(np.zeros((64, 64, 3), np.float32))
    assert not is_image_like(np.zeros((64, 64, 3), np.float32) + 2)  # floats out of [0, 1]
    assert not is_image_like(np.zeros((1000, 3)))  # a table of floats
    assert not is_image_like(np.zeros((100, 3), np.uint8))  # too narrow
    assert not is_image_like(np.arange(10))
    assert not is_image_like(b"plain bytes")
    assert is_image_like(encoded(Image.new("L", (2, 2)), "GIF"))
    assert not is_image_like("a string")


def test_sniff():
    assert sniff_image_format(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert sniff_image_format(b"GIF89a") == "GIF"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_image_format(b"\xff\xd8\xff\xdb") == "JPEG"
    assert sniff_image_format(b"") is None


def test_bmp_and_tiff_are_converted_to_png():
    for fmt in ("BMP", "TIFF"):
        data = encoded(Image.new("RGB", (16, 16), "red"), fmt)
        part, info = image_part_with_info(data)
        assert info.mime == "image/png" and decode(part)[2].format == "PNG"


def test_image_info_is_a_small_dataclass():
    info = ImageInfo("image/jpeg", 640, 480, 1234, 1280, 960)
    assert info.label() == "[image 640x480 jpeg]" and info.format == "jpeg" and info.resized
