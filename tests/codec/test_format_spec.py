"""docs/format.md is enough to read a packed shard: a decoder written from that page alone
(numpy and pyarrow, nothing of `distill.codec`) reads a packed shard back to the plain
shard it was packed from: ids exactly, log-probs within the stated bound, tails rounded up.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"


def spec_decode(table: pa.Table) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per row: (ids [n, k], log-probs [n, k], tails [n]), by docs/format.md."""
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    bits_lp = int(meta["distill.packed.logprob_bits"])
    span = float(meta["distill.packed.logprob_range_nats"])
    steps = 2**bits_lp - 1
    rows = []
    for row in table.to_pylist():
        k, b = row["topk_k"], row["topk_id_bits"]
        ref = np.asarray(row["topk_ref_logprob"], np.float32)
        n = ref.size
        # ids: value i at bits [i*b, (i+1)*b), bit t = bit (t mod 8) of byte (t div 8)
        blob = np.frombuffer(row["topk_ids_packed"], np.uint8)
        assert blob.size == (n * k * b + 7) // 8
        bit_stream = np.unpackbits(blob, bitorder="little")
        ids = np.zeros(n * k, np.int64)
        for i in range(n * k):
            for j in range(b):
                ids[i] |= int(bit_stream[i * b + j]) << j
        # codes: running sum mod 256 within each position, then ref - code * R / S
        deltas = np.frombuffer(row["topk_logprob_codes"], np.uint8).reshape(n, k)
        codes = np.cumsum(deltas.astype(np.int64), axis=1) % 256
        logprobs = (ref[:, None] - codes.astype(np.float32) * np.float32(span / steps)).astype(
            np.float32
        )
        tails = np.asarray(row["tail_mass"], np.float32)  # float16, read as is
        rows.append((ids.reshape(n, k), logprobs, tails))
    return rows


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table]:
    from distill.codec import pack_dataset
    from tests.factories import write_table_dataset

    root = tmp_path_factory.mktemp("spec")
    write_table_dataset(root / "plain", pq.read_table(FIXTURE).slice(0, 40), rows_per_shard=40)
    pack_dataset(root / "plain", root / "packed")
    plain = pq.read_table(next((root / "plain" / "data").glob("*.parquet")))
    packed = pq.read_table(next((root / "packed" / "data").glob("*.parquet")))
    return plain, packed


def test_a_decoder_written_from_the_spec_reads_a_packed_shard(shards) -> None:
    plain, packed = shards
    assert [f.name for f in packed.schema][:3] == ["record_id", "prompt_id", "sample_index"]
    decoded = spec_decode(packed)
    bound = 20.0 / 510
    tokens = 0
    for row, (ids, logprobs, tails) in zip(plain.to_pylist(), decoded, strict=True):
        exact_ids = np.asarray(row["topk_ids"], np.int64)
        exact_lp = np.asarray(row["topk_logprobs"], np.float32)
        exact_tail = np.asarray(row["tail_mass"], np.float32)
        assert np.array_equal(ids, exact_ids)
        within = exact_lp >= exact_lp.max(axis=1, keepdims=True) - 20.0
        assert np.all(np.abs(logprobs - exact_lp)[within] <= bound + 1e-5)
        assert np.all(logprobs[~within] >= exact_lp[~within])  # never below the truth
        assert np.all(tails >= exact_tail)  # rounded up
        ulp = np.spacing(exact_tail.astype(np.float16)).astype(np.float32)
        assert np.all(tails - exact_tail <= ulp + 1e-12)
        tokens += len(row["token_ids"])
    assert tokens > 400  # 40 real SmolLM2 rows


def test_the_shard_names_the_codec_parameters_the_spec_uses(shards) -> None:
    _, packed = shards
    meta = {k.decode(): v.decode() for k, v in packed.schema.metadata.items()}
    assert meta["distill.codec"] == "packed" and meta["distill.schema_version"] == "2"
    assert meta["distill.packed.logprob_bits"] == "8"
    assert float(meta["distill.packed.logprob_range_nats"]) == 20.0
    assert "least significant bit first" in meta["distill.packed.id_bit_order"]
