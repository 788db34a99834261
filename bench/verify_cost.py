"""What checking shards against the manifest's sha256 costs a reader.

    python -m bench.verify_cost [--shards 4] [--rows 512]

Writes a synthetic plain dataset (top-20 over a 49k vocab, 256 response tokens a row, the
loader bench's table) and times, best of `--repeat`, with the files in the page cache:

- hash only:       sha256 of every file;
- read only:       every shard parsed, nothing checked (`read_table(verify=False)`);
- separate pass:   `verify_shards` (read and hash every file), then read only;
- while reading:   `read_table` as readers call it: each file's bytes read once, hashed,
                   then parsed from memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from bench.loader_bench import synthetic_table
from distill.schemas import Manifest, ShardInfo
from distill.store import load_manifest, read_table, save_manifest, sha256_file, verify_shards


def write_dataset(folder: Path, shards: int, rows: int) -> int:
    infos = []
    for index in range(shards):
        path = folder / "data" / f"part-{index:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(synthetic_table(rows=rows), path, compression="zstd")
        infos.append(ShardInfo(file=str(path.relative_to(folder)), rows=rows, sha256=""))
        infos[-1].sha256 = sha256_file(path)
    save_manifest(
        folder, Manifest(schema_version=1, kind="generated", dataset_id="x", shards=infos)
    )
    return sum((folder / s.file).stat().st_size for s in infos)


def best(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time of each case; the cases take turns, so a busy moment falls on all of them."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, func in cases.items():
            started = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = write_dataset(folder, args.shards, args.rows)
        manifest = load_manifest(folder)
        cases = {
            "hash only": lambda: [sha256_file(folder / s.file) for s in manifest.shards],
            "read only": lambda: read_table(folder, verify=False),
            "separate pass": lambda: (
                verify_shards(folder, manifest),
                read_table(folder, verify=False),
            ),
            "while reading": lambda: read_table(folder),
        }
        timings = best(cases, args.repeat)
    base = timings["read only"]
    print(f"{args.shards} shards, {size / 1e6:.1f} MB on disk")
    print("| case | seconds | MB/s | vs read only |\n|---|---|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} | {size / 1e6 / seconds:.0f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
