"""Many images in one recipe: `ocibuild recipe` time must grow linearly with the image count.

Writes recipes of N images (each one small inline file; `--chain` builds each image from the
previous one instead) and times a cold build into a fresh store, then a cached rebuild, for
each N. Target: 4,000 independent images under 60 s cold, and the per-image time of the
largest N at most 1.5x that of the smallest (linear, not quadratic).

    python3 bench/recipe_bench.py [--counts 1000,2000,4000] [--chain] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def write_recipe(path: Path, count: int, chain: bool) -> None:
    lines = ["images:"]
    for i in range(count):
        lines.append(f"  - name: localhost/bench/i{i}:1")
        if chain and i:
            lines.append(f"    from: localhost/bench/i{i - 1}:1")
        lines.append(f'    layers:\n      - files: [{{content: "{i}", dest: /f{i}}}]')
    path.write_text("\n".join(lines) + "\n")


def timed(args: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,2000,4000")
    parser.add_argument("--chain", action="store_true")
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="recipe-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    per_image = {}
    print(f"{'images':>7} {'cold s':>8} {'cached s':>9} {'ms/image':>9}")
    for count in (int(c) for c in options.counts.split(",")):
        recipe = workdir / f"r{count}.yaml"
        store = workdir / f"store{count}"
        shutil.rmtree(store, ignore_errors=True)
        write_recipe(recipe, count, options.chain)
        command = ["ocibuild", "--store", str(store), "-q", "recipe", str(recipe)]
        cold = timed(command)
        cached = timed(command)
        per_image[count] = cold / count
        print(f"{count:>7} {cold:>8.1f} {cached:>9.1f} {1000 * cold / count:>9.2f}")
    smallest, largest = min(per_image), max(per_image)
    print(
        f"per-image time {largest} vs {smallest}: {per_image[largest] / per_image[smallest]:.2f}x"
    )


if __name__ == "__main__":
    main()
