"""Make the small media files that 05-images-and-video.ipynb and 07-documents-and-media.ipynb send.

    python notebooks/data/make_media.py

writes, next to this script:

* ``shapes.png``: three flat shapes (480x320, a few KB);
* ``bouncing_ball.mp4``: a red ball bouncing across the frame (4 s, 16 fps, 320x192, H.264);
* ``report.pdf``: a two-page quarterly report with text a PDF reader can extract (about 1 KB,
  written by ``kimi_jupyter.testing.samples.make_pdf``).

Everything is drawn with Pillow, so the files are the same on every machine. The video is
encoded with the ffmpeg binary that the ``imageio-ffmpeg`` wheel bundles
(``pip install imageio-ffmpeg``); nothing is downloaded at run time. The files are committed,
so only run this to change them.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
BACKGROUND = (248, 248, 244)


def shapes(path: Path) -> None:
    """A red circle, a blue square and a green triangle standing on a grey line."""
    image = Image.new("RGB", (480, 320), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 70, 160, 190), fill=(214, 39, 40))
    draw.rectangle((190, 70, 300, 180), fill=(31, 119, 180))
    draw.polygon([(390, 60), (450, 190), (330, 190)], fill=(44, 160, 44))
    draw.line((30, 230, 450, 230), fill=(160, 160, 160), width=2)
    image.save(path, optimize=True)


def ball_frame(index: int, frames: int, size: tuple[int, int] = (320, 192)) -> Image.Image:
    """Frame ``index``: the ball moves left to right and bounces on the floor three times."""
    width, height = size
    radius, floor = 14, height - 24
    t = index / (frames - 1)
    x = 24 + t * (width - 48)
    bounce = abs(math.sin(3 * math.pi * t))  # three bounces over the clip
    y = floor - radius - bounce * (floor - 2 * radius - 16)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, floor, width, height), fill=(120, 120, 120))
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(214, 39, 40))
    return image


def bouncing_ball(path: Path, frames: int = 64, fps: int = 16) -> None:
    """Encode the frames as H.264 (yuv420p, so every browser and Kimi can read it)."""
    import imageio_ffmpeg

    size = (320, 192)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "28", "-preset", "veryslow", "-threads", "1",
        "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        str(path),
    ]
    raw = b"".join(ball_frame(i, frames, size).tobytes() for i in range(frames))
    subprocess.run(command, input=raw, check=True, timeout=120)


REPORT_PAGES = (
    "Quarterly report, Q3\nRevenue: 4.2 million, up 12% on Q2.\nNew customers: 310, most of them from the"
    "\nreferral programme started in July.",
    "Costs and outlook\nCosts were flat at 3.1 million.\nChurn fell from 3.4% to 2.1%.\nOutlook: hire two"
    "\nsupport engineers; keep the referral programme.",
)


def report(path: Path) -> None:
    """A two-page PDF whose text the Files API (or pypdf) can extract."""
    from kimi_jupyter.testing.samples import make_pdf

    path.write_bytes(make_pdf(REPORT_PAGES))


def main() -> None:
    shapes(HERE / "shapes.png")
    bouncing_ball(HERE / "bouncing_ball.mp4")
    report(HERE / "report.pdf")
    for name in ("shapes.png", "bouncing_ball.mp4", "report.pdf"):
        print(f"{name}: {(HERE / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
