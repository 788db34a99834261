"""Peak RSS and rows/s of `distill export`, each format, at two dataset sizes 4x apart.

    python -m bench.export_memory [--copies 8 32] [--dir DIR]

The datasets are the SmolLM2 MMLU fixture (300 rows, k = 20) tiled `copies` times (record
ids made distinct), packed, in shards of 1,024 rows. Each export runs in its own process,
so its peak RSS (VmHWM) is its own; flat memory means the larger size's peak stays near
the smaller's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "smollm2_mmlu.parquet"
RUNS = [("chat", ".jsonl"), ("chat", ".parquet"), ("axolotl-kd", ".parquet"), ("plain", "")]


def build(folder: Path, copies: int) -> Path:
    from tests.factories import write_table_dataset

    table = pq.read_table(FIXTURE)
    tiles = [
        table.set_column(
            0, "record_id", pc.binary_join_element_wise(table["record_id"], pa.scalar(f"-{c}"), "")
        )
        for c in range(copies)
    ]
    out = folder / f"packed-{copies}"
    write_table_dataset(out, pa.concat_tables(tiles), codec="packed", rows_per_shard=1024)
    return out


def one_export(fmt: str, source: str, out: str) -> None:
    from distill.export import ExportConfig, export_dataset

    start = time.perf_counter()
    result = export_dataset(Path(source), ExportConfig(format=fmt, out=Path(out)))
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    hwm_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    row = {"rows": result.rows, "seconds": round(seconds, 2), "peak_rss_mb": hwm_kb // 1024}
    print(json.dumps({"format": fmt, "file": Path(out).suffix or "dataset", **row}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # FORMAT SOURCE OUT
    args = parser.parse_args()
    if args.one:
        one_export(*args.one)
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="export-bench-"))
    for copies in args.copies:
        source = build(folder, copies)
        for fmt, suffix in RUNS:
            out = folder / f"out-{copies}-{fmt}{suffix}"
            command = [sys.executable, "-m", "bench.export_memory", "--one", fmt, str(source)]
            subprocess.run([*command, str(out)], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
