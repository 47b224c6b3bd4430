"""The ``text`` task against rapidocr 3.10.0 (the same three networks, its own pipeline with
its default settings), on the same images and ONNX Runtime threads, in one process.

Images: scikit-image's ``page.png`` (a photo of a book page, 384x191, transcribed in
``tests/rendered_text.py``), text rendered with Pillow (fonts, sizes, slight rotation, noise,
JPEG compression), a 1200x800 poster (rendered lines over scikit-image's coffee photo), small
print on a 1600x1200 photo (a title and three 18 px lines over scikit-image's astronaut) and a
dense rendered page of 30 lines.
Both read the encoded file; both answers are scored by character error rate (CER) against
the truth, and timed end to end (decode, detect, orient, recognise) as the median of
``--runs``. Each round times every image once per system, alternating, so both see the same
machine load; the totals are printed as the range over rounds, never the best round alone.

    .venv/bin/python benchmarks/bench_text.py [--runs 5] [--threads 2] [--package ppocr-int8]

``--package ppocr-int8`` times the opt-in package whose recogniser backbone is int8 (built as
``argus models pull ppocr-int8`` builds it, from the same cache) instead of the float ``ppocr``.

rapidocr is only for this comparison (``pip install -e '.[bench]'``); Argus never imports it.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from argus.convert import ppocr
from argus.images import Limits, decode
from argus.models.packages import PackageStore
from argus.models.pull import DEFAULT_MODELS, build_cached
from argus.tasks.text import TextModel
from tests.rendered_text import PAGE_TEXT, WORDS, cer, fonts, load_font, render, samples


def encoded(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=88)
    return buf.getvalue()


def poster() -> tuple[bytes, str]:
    """Four lines on light panels over a 1200x800 photo: (JPEG, the lines)."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee()).resize((1200, 800), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(photo)
    lines = ("FRESH COFFEE", "Open daily from 7:30", "Espresso 2.50  Latte 3.20",
             "www.example.org")
    font_path = fonts()[0]
    y = 60
    for i, line in enumerate(lines):
        font = load_font(font_path, (64, 40, 34, 28)[i])
        box = draw.textbbox((80, y), line, font=font)
        draw.rectangle((box[0] - 12, box[1] - 10, box[2] + 12, box[3] + 10), fill=(250, 248, 240))
        draw.text((80, y), line, font=font, fill=(30, 20, 10))
        y = box[3] + 60
    return encoded(np.asarray(photo), "JPEG"), "\n".join(lines)


def small_print() -> tuple[bytes, str]:
    """A 1600x1200 photo with a 72 px title over three lines of 18 px print: small text on a
    large image, which the detector reads shrunk to 960 px (JPEG, the lines)."""
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut()).resize((1600, 1200),
                                                             Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(photo)
    lines = (("SUMMER SALE", 72), ("Doors open at 9:30 on Friday, 12 June", 18),
             ("Tickets at gate A-17 or online at www.example.org", 18),
             ("No parking in the north street after 7:30", 18))
    font_path = fonts()[0]
    y = 80
    for text, size in lines:
        font = load_font(font_path, size)
        box = draw.textbbox((90, y), text, font=font)
        draw.rectangle((box[0] - 10, box[1] - 8, box[2] + 10, box[3] + 8), fill=(250, 248, 240))
        draw.text((90, y), text, font=font, fill=(30, 20, 10))
        y = box[3] + (60 if size > 18 else 30)
    return encoded(np.asarray(photo), "JPEG"), "\n".join(text for text, _ in lines)


def cases() -> list[tuple[str, bytes, str]]:
    import skimage.data

    out = [("page.png 384x191", encoded(np.stack([skimage.data.page()] * 3, axis=-1)),
            PAGE_TEXT)]
    for sample in samples(8):
        h, w = sample.rgb.shape[:2]
        out.append((f"{sample.name} {w}x{h}", sample.jpeg, sample.text))
    data, truth = poster()
    out.append(("poster (coffee) 1200x800", data, truth))
    data, truth = small_print()
    out.append(("small print (astronaut) 1600x1200", data, truth))
    out.append(dense_page())
    return out


def dense_page() -> tuple[str, bytes, str]:
    """30 lines of 16 px serif text, slightly turned: a page where neither side resizes for
    the detector, so the time is mostly reading lines."""
    rng = random.Random(1)
    lines = tuple(" ".join(rng.choice(WORDS) for _ in range(9)) for _ in range(30))
    rgb, data = render(lines, fonts()[min(1, len(fonts()) - 1)], 16, angle=0.5, noise=4.0,
                       quality=80)
    return f"dense page, 30 lines {rgb.shape[1]}x{rgb.shape[0]}", data, "\n".join(lines)


def ours_reader(model: TextModel) -> Callable[[bytes], str]:
    def read(data: bytes) -> str:
        image = decode(data, Limits(), model.decode_size)
        (raw,) = model.infer([model.prepare(image, {})])
        text: str = model.finish(raw, image, {})["text"]
        return text

    return read


def rapidocr_reader(threads: int) -> Callable[[bytes], str]:
    from rapidocr import RapidOCR

    engine = RapidOCR(params={
        "Global.log_level": "critical",
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })

    def read(data: bytes) -> str:
        result: Any = engine(data)
        return "\n".join(result.txts or ())

    return read


def timed(call: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    text = call()
    return (time.perf_counter() - start) * 1e3, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "argus")
    parser.add_argument("--package", choices=("ppocr", "ppocr-int8"), default="ppocr",
                        help="the Argus package to time (ppocr-int8: recogniser backbone int8)")
    args = parser.parse_args()
    images = cases()
    with tempfile.TemporaryDirectory() as tmp:
        if args.package == ppocr.NAME:
            src = Path(tmp) / "src"
            src.mkdir()
            fields = ppocr.build(src, args.cache_dir)
        else:
            (model,) = [m for m in DEFAULT_MODELS if m.name == args.package]
            built = build_cached(model, args.cache_dir, print)
            fields = json.loads((built / "fields.json").read_text())
            src = Path(tmp) / "src"
            shutil.copytree(built, src, ignore=shutil.ignore_patterns("fields.json"))
        package = PackageStore(Path(tmp) / "store").add(src, fields)
        readers = {
            "argus": ours_reader(TextModel(package, args.threads)),
            "rapidocr": rapidocr_reader(args.threads),
        }
        texts: dict[tuple[str, str], str] = {}
        for name, read in readers.items():  # warm up: first runs allocate per shape
            for label, data, _ in images:
                texts[name, label] = read(data)
        times: dict[tuple[str, str], list[float]] = {k: [] for k in texts}
        for _ in range(args.runs):
            for label, data, _ in images:
                for name, read in readers.items():
                    ms, _text = timed(lambda read=read, data=data: read(data))
                    times[name, label].append(ms)
    print(f"package={args.package} threads={args.threads} runs={args.runs}; "
          "ms = median per image; CER vs the truth")
    print(f"{'image':<46}{'CER argus':>10}{'rapidocr':>10}{'ms argus':>10}{'rapidocr':>10}"
          f"{'speed-up':>10}  per round")
    cers: dict[str, list[float]] = {name: [] for name in readers}
    for label, _, truth in images:
        row = [cer(texts[name, label], truth) for name in readers]
        for name, value in zip(readers, row, strict=True):
            cers[name].append(value)
        ms = [statistics.median(times[name, label]) for name in readers]
        # Each round's ratio too: the two systems took turns on this image in that round.
        rounds = [b / a for a, b in zip(times["argus", label], times["rapidocr", label],
                                        strict=True)]
        print(f"{label:<46}{row[0]:>10.3f}{row[1]:>10.3f}{ms[0]:>10.1f}{ms[1]:>10.1f}"
              f"{ms[1] / ms[0]:>9.2f}x  {min(rounds):.2f}-{max(rounds):.2f}x")
    print(
        f"{'mean CER':<46}{statistics.mean(cers['argus']):>10.3f}"
        f"{statistics.mean(cers['rapidocr']):>10.3f}"
    )
    issue = [label for label, _, _ in images[:-3]]  # page.png and the rendered images
    for what, labels in (("page.png + rendered", issue),
                         ("all images", [label for label, _, _ in images])):
        ours = round_totals(times, "argus", labels, args.runs)
        theirs = round_totals(times, "rapidocr", labels, args.runs)
        ratios = [b / a for a, b in zip(ours, theirs, strict=True)]
        print(
            f"{what}, ms per round: argus {min(ours):.0f}-{max(ours):.0f}, "
            f"rapidocr {min(theirs):.0f}-{max(theirs):.0f}; "
            f"speed-up {min(ratios):.2f}x-{max(ratios):.2f}x over {args.runs} rounds"
        )


def round_totals(
    times: dict[tuple[str, str], list[float]], name: str, labels: list[str], runs: int
) -> list[float]:
    """Each round's total over ``labels`` (round r is the r-th time of every image)."""
    return [sum(times[name, label][r] for label in labels) for r in range(runs)]


if __name__ == "__main__":
    main()
