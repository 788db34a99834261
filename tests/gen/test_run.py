"""The resumable run gen and score share (`distill.gen.run`), and teacher forcing as a
backend capability, on fake backends (no model: fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams, TeacherInfo
from distill.store import read_table
from distill.teachers.backend import CannotScoreError, Generation
from distill.teachers.openai_teacher import OpenAIConfig, OpenAITeacher
from tests.factories import fake_teacher

EOS = 49
K = 3


class FakeTokenizer:
    eos_token_id = EOS

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(c) % 40 for c in text]}


class FakeScorer:
    """Teacher-forces by rule: top-k of position j is (t, t+1, t+2) for response token t.
    Keeps every batch it was given, and fails the batch numbered `fail_at` (1-based)."""

    tokenizer = FakeTokenizer()

    def __init__(self, fail_at: int | None = None) -> None:
        self.batches: list[list[tuple[list[int], list[int]]]] = []
        self.fail_at = fail_at

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return fake_teacher(top_k=top_k).model_copy(update={"sampling": sampling})

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return [1] * len(messages[-1]["content"])

    def _answer(self, response: list[int]) -> Generation:
        topk = [[t, t + 1, t + 2] for t in response]
        lps = [[-0.1, -1.0, -2.0] for _ in response]
        return Generation(
            list(response), topk, lps, [-0.1] * len(response), [0.5] * len(response), "stop"
        )

    def score(self, pairs: list[tuple[list[int], list[int]]], top_k: int) -> list[Generation]:
        if pairs:
            self.batches.append(pairs)
            if len(self.batches) == self.fail_at:
                raise RuntimeError("the scorer broke")
        return [self._answer(r) for _, r in pairs]

    def generate(self, prompts, sampling, top_k, seeds, messages=None) -> list[Generation]:
        self.batches.append([(p, []) for p in prompts])
        if len(self.batches) == self.fail_at:
            raise RuntimeError("the teacher broke")
        return [self._answer([len(p) % 40, EOS]) for p in prompts]

    def decode(self, token_ids: list[int]) -> str:
        return " ".join(map(str, token_ids))

    def tokenizer_info(self):
        return None


PAIRS = [("Hi", "Hello."), ("A much longer prompt here", "Ok."), ("Mid prompt", "Sure thing.")]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in PAIRS))
    return path


def test_score_sends_longest_first_writes_records_and_resumes(tmp_path, source) -> None:
    teacher = FakeScorer()
    out = tmp_path / "out"
    result = score_dataset(source, out, teacher=teacher, top_k=K, batch_size=2, progress=False)
    lengths = [len(p) + len(r) for batch in teacher.batches for p, r in batch]
    assert [len(b) for b in teacher.batches] == [2, 1]
    assert lengths == sorted(lengths, reverse=True)
    assert result.records_written == 3 and result.prompts == 3 and result.failed == 0
    rows = {r["messages"][-1]["content"]: r for r in read_table(out).to_pylist()}
    for prompt, response in PAIRS:
        expected = [ord(c) % 40 for c in response] + [EOS]
        row = rows[prompt]
        assert row["token_ids"] == expected and row["response_text"] == response
        assert row["topk_ids"] == [[t, t + 1, t + 2] for t in expected]
        assert row["prompt_token_ids"] == [1] * len(prompt)
    assert not (out / "failed.jsonl").exists()  # score's teachers fail whole, not per row
    again = FakeScorer()
    rerun = score_dataset(source, out, teacher=again, top_k=K, progress=False)
    assert rerun.records_written == 0 and rerun.records_skipped_existing == 3
    assert again.batches == []


def test_gen_keeps_answered_rows_when_the_backend_raises(tmp_path, source) -> None:
    teacher = FakeScorer(fail_at=2)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="the teacher broke"):
        generate_dataset(source, out, teacher=teacher, top_k=K, batch_size=2, progress=False)
    assert len(read_table(out)) == 2  # the first batch, written before the error
    result = generate_dataset(source, out, teacher=FakeScorer(), top_k=K, progress=False)
    assert result.records_written == 1 and result.records_skipped_existing == 2


def test_a_backend_that_cannot_score_fails_before_writing(tmp_path, source) -> None:
    api = OpenAITeacher("m", "http://127.0.0.1:9/v1", "key", OpenAIConfig(), mode="none")
    with pytest.raises(CannotScoreError, match="scoring needs an hf: or vllm: teacher"):
        api.score([], K)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"--teacher .*scoring needs an hf: or vllm: teacher"):
        score_dataset(source, out, teacher=api, top_k=K, progress=False)
    assert not out.exists()


def test_a_long_run_checkpoints_its_manifest_less_often_and_still_resumes(
    tmp_path, monkeypatch
) -> None:
    import distill.gen.shards as gen_shards
    from distill.store import load_manifest, save_manifest, shard_paths

    # Past 1 shard, the manifest is rewritten at most every hour: i.e. only at the end.
    monkeypatch.setattr(gen_shards, "MANIFEST_EVERY_SHARD_UP_TO", 1)
    monkeypatch.setattr(gen_shards, "MANIFEST_EVERY_S", 3600.0)
    saved = []

    def counted(out_dir, manifest):
        saved.append(manifest)
        return save_manifest(out_dir, manifest)

    monkeypatch.setattr(gen_shards, "save_manifest", counted)
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"prompt {i}"}) + "\n" for i in range(8)))
    out = tmp_path / "out"
    generate_dataset(
        source, out, teacher=FakeScorer(), top_k=K, batch_size=2, shard_size=2, progress=False
    )
    assert len(shard_paths(out)) == 4
    assert [len(m.shards) for m in saved] == [1, 4]  # after the first shard, and at the end
    # A kill after the last shard leaves the first checkpoint: the rerun finds every record.
    save_manifest(out, saved[0])
    again = FakeScorer()
    result = generate_dataset(source, out, teacher=again, top_k=K, batch_size=2, progress=False)
    assert result.records_skipped_existing == 8 and result.records_written == 0
    assert again.batches == []
    assert len(load_manifest(out).shards) == 4 and len(read_table(out)) == 8
