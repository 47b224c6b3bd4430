"""Seed 002's story as a folder: "is it a cup of coffee or a cat?" from scikit-image's two
bundled photos (``coffee`` and ``chelsea``) and random crops of them.

Writes ``OUT/coffee/*.jpg`` and ``OUT/cat/*.jpg`` (the layout ``argus train --data`` reads) and
a separate held-out folder ``OUT-held`` with crops from other seeds, for ``argus evaluate``.
Needs scikit-image (the dev extra). Run:
``.venv/bin/python benchmarks/coffee_or_cat.py /tmp/coffee-or-cat [--per-class 30]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's tests/
from tests.train.conftest import write_coffee_or_cat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=30)
    args = parser.parse_args()
    write_coffee_or_cat(args.out, args.per_class, seed=0)
    held = args.out.with_name(args.out.name + "-held")
    write_coffee_or_cat(held, max(2, args.per_class // 3), seed=1)
    print(f"{args.out}: {2 * args.per_class} photos; held-out photos in {held}")


if __name__ == "__main__":
    main()
