"""Text to read, for the ``text`` task's tests and benchmark: lines rendered here with Pillow
(Debian's DejaVu fonts when installed, else Pillow's own), slightly rotated, with noise and
JPEG compression, each with the words drawn; and a transcription of scikit-image's ``page.png``
(a photo of a book page; the image is scikit-image's, only the text is ours).

The character error rate (CER) is the edit distance between the text read and the truth,
over the truth's length.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# What page.png says, line by line. Its last, cut-off line (part of a URL at the bottom
# edge) is not readable and not transcribed.
PAGE_LINES = (
    "Region-based segmentation",
    "Let us first determine markers of the coins and the",
    "background. These markers are pixels that we can label",
    "unambiguously as either object or background. Here,",
    "the markers are found at the two extreme parts of the",
    "histogram of grey values:",
    ">>> markers = np.zeros_like(coins)",
)
PAGE_TEXT = "\n".join(PAGE_LINES)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerifCondensed-Italic.ttf",
)
WORDS = (
    "exit", "only", "open", "daily", "from", "until", "closed", "platform", "coffee", "street",
    "north", "station", "menu", "price", "total", "receipt", "invoice", "number", "order",
    "bread", "milk", "cheese", "water", "fresh", "garden", "keep", "left", "right", "entrance",
    "parking", "floor", "room", "hotel", "museum", "library", "ticket", "gate", "bus", "train",
    "Monday", "Friday", "June", "2024", "12.50", "7:30", "no.", "42", "A-17", "www.example.org",
)


def fonts() -> list[Path | None]:
    """The DejaVu fonts that are installed (None: Pillow's built-in font)."""
    found: list[Path | None] = [FONT_DIR / f for f in FONT_FILES if (FONT_DIR / f).is_file()]
    return found or [None]


def load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


@dataclass(frozen=True)
class Sample:
    name: str
    rgb: np.ndarray
    lines: tuple[str, ...]
    jpeg: bytes

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def render(
    lines: tuple[str, ...],
    font_path: Path | None,
    size: int,
    *,
    angle: float = 0.0,
    noise: float = 0.0,
    quality: int = 90,
    ink: tuple[int, int, int] = (20, 20, 20),
    paper: tuple[int, int, int] = (245, 242, 235),
    seed: int = 0,
) -> tuple[np.ndarray, bytes]:
    """The lines drawn left-aligned on paper, turned by ``angle`` degrees, with Gaussian
    noise of ``noise`` grey levels, then JPEG-compressed: (decoded RGB, JPEG bytes)."""
    font = load_font(font_path, size)
    gap = round(size * 0.6)
    widths = [int(font.getbbox(line)[2]) for line in lines]
    width = max(widths) + 2 * size
    height = len(lines) * (size + gap) + 2 * size
    img = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((size, size + i * (size + gap)), line, font=font, fill=ink)
    if angle:
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    arr = np.asarray(img).astype(np.float32)
    if noise:
        arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    noisy = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, format="JPEG", quality=quality)
    data = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), data


def samples(count: int = 8, seed: int = 20) -> list[Sample]:
    """``count`` images of two to four lines each: fonts, sizes (14 to 36 px), angles (up to
    3 degrees either way), noise and JPEG quality all varied, from a fixed seed."""
    rng = random.Random(seed)
    available = fonts()
    out = []
    for i in range(count):
        lines = tuple(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
            for _ in range(rng.randint(2, 4))
        )
        font = available[i % len(available)]
        size = rng.choice((14, 18, 22, 28, 36))
        angle = round(rng.uniform(-3.0, 3.0), 1)
        noise = rng.choice((0.0, 6.0, 12.0))
        quality = rng.choice((50, 70, 90))
        rgb, data = render(lines, font, size, angle=angle, noise=noise, quality=quality, seed=i)
        name = f"{font.stem if font else 'default'}-{size}px-{angle:+.1f}deg-q{quality}"
        out.append(Sample(name, rgb, lines, data))
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def normalised(text: str) -> str:
    """Lines stripped, spaces collapsed: layout differences are not reading errors."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def cer(read: str, truth: str) -> float:
    """Character error rate of ``read`` against ``truth``."""
    truth = normalised(truth)
    return edit_distance(normalised(read), truth) / max(1, len(truth))
