"""A deterministic payload that looks like an installed software release to a compressor.

About 1 GB in about 12,000 files by default: file sizes spread like a products tree (many
small headers, some large shared libraries), content mixing incompressible runs (code,
compressed sections) with text-like runs, for a gzip -6 ratio near 0.4.

    python3 bench/payload.py DIR [--size-mb 1000] [--files 12000]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

WORDS = (
    b"void int const return static struct namespace template typename class public private "
    b"include define ifdef endif std vector string size_t uint64_t double float unsigned art "
    b"cetlib fhiclcpp messagefacility canvas root boost clhep tbb sqlite python gcc event run "
    b"subrun module producer analyzer filter output service handle product label instance "
).split()


def text_block(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(WORDS) for _ in range(12)) + b";\n"
    return bytes(out[:size])


def generate(root: Path, size_mb: int = 1000, files: int = 12000, seed: int = 1451606400) -> int:
    """Write the payload under `root`; return the number of bytes written."""
    rng = random.Random(seed)
    text = text_block(rng, 4 << 20)
    total_target = size_mb * 1_000_000
    # Pareto-ish sizes, scaled so they add up to the target.
    raw = [rng.paretovariate(1.2) for _ in range(files)]
    scale = total_target / sum(raw)
    sizes = [max(64, int(r * scale)) for r in raw]
    written = 0
    for index, size in enumerate(sizes):
        product = f"product{index % 30:02d}"
        kind = "lib" if size > 200_000 else "include" if index % 3 else "bin"
        path = root / product / "v1_0_0" / "slf6.x86_64.e9.prof" / kind / f"file{index:05d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            remaining = size
            while remaining:
                n = min(remaining, 64 * 1024)
                random_part = int(n * 0.25)
                offset = rng.randrange(0, len(text) - n)
                f.write(rng.randbytes(random_part) + text[offset : offset + n - random_part])
                remaining -= n
        written += size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--files", type=int, default=12000)
    args = parser.parse_args()
    total = generate(args.dir, args.size_mb, args.files)
    print(f"{args.dir}: {total / 1e6:.0f} MB in {args.files} files")


if __name__ == "__main__":
    main()
