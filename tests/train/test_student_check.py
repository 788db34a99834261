"""The compat check names every difference between student and teacher, with a fix."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from distill.schemas import SCHEMA_VERSION, Manifest, records_to_table
from distill.schemas.manifest import TokenizerInfo
from distill.tokenizer_info import describe_tokenizer
from distill.train import StudentMismatch, check_student_compat
from tests.factories import FAKE_VOCAB, make_record


class FakeTokenizer:
    """Just what `describe_tokenizer` reads."""

    def __init__(self, vocab=FAKE_VOCAB, template="{{ messages }}", eos="</s>"):
        self._vocab = {f"t{i}": i for i in range(vocab)}
        self.chat_template = template
        self.bos_token, self.eos_token, self.pad_token, self.unk_token = "<s>", eos, eos, None
        self.all_special_tokens = ["<s>", eos]

    def get_vocab(self):
        return self._vocab

    def __len__(self):
        return len(self._vocab)


def manifest_for(tokenizer, vocab=FAKE_VOCAB, top_k=4) -> Manifest:
    info = describe_tokenizer(tokenizer, SimpleNamespace(vocab_size=vocab))
    return Manifest(
        schema_version=SCHEMA_VERSION, kind="generated", dataset_id="d", tokenizer=info, top_k=top_k
    )


def test_matching_student_passes():
    tok = FakeTokenizer()
    table = records_to_table([make_record(row=i) for i in range(3)])
    check_student_compat(
        manifest_for(tok), tok, SimpleNamespace(vocab_size=FAKE_VOCAB), need_topk=True, table=table
    )


def test_every_difference_is_listed_with_a_fix():
    teacher = FakeTokenizer()
    student = FakeTokenizer(vocab=FAKE_VOCAB + 8, template="other", eos="<|end|>")
    with pytest.raises(StudentMismatch) as err:
        check_student_compat(
            manifest_for(teacher), student, SimpleNamespace(vocab_size=FAKE_VOCAB + 8)
        )
    message = str(err.value)
    problems = err.value.problems
    assert any(p.startswith("tokenizer hash") for p in problems)
    assert any(p.startswith("vocab size") and "resize_token_embeddings" in p for p in problems)
    assert any(p.startswith("chat template hash") for p in problems)
    assert any(p.startswith("special token eos_token") for p in problems)
    assert any(p.startswith("special token pad_token") for p in problems)
    assert len(problems) == 5
    for p in problems:
        assert p in message
    assert isinstance(err.value, ValueError)


def test_logit_width_is_compared_not_just_the_tokenizer():
    tok = FakeTokenizer()
    with pytest.raises(StudentMismatch, match="student logits have 128 entries, the teacher 64"):
        check_student_compat(manifest_for(tok), tok, SimpleNamespace(vocab_size=128))


def test_kd_refuses_data_without_topk():
    tok = FakeTokenizer()
    config = SimpleNamespace(vocab_size=FAKE_VOCAB)
    with pytest.raises(StudentMismatch, match="top_k is None"):
        check_student_compat(manifest_for(tok, top_k=None), tok, config, need_topk=True)
    record = make_record(n_tokens=2)
    record = record.model_copy(update={"topk_ids": [[], []], "topk_logprobs": [[], []]})
    table = records_to_table([record])
    with pytest.raises(StudentMismatch, match="2 response tokens have an empty top-k"):
        check_student_compat(manifest_for(tok), tok, config, need_topk=True, table=table)
    # SFT does not need the top-k
    check_student_compat(manifest_for(tok), tok, config, need_topk=False, table=table)


def test_ids_outside_the_student_vocab_are_refused():
    tok = FakeTokenizer()
    table = records_to_table(
        [make_record(prompt="x").model_copy(update={"prompt_token_ids": [999]})]
    )
    with pytest.raises(StudentMismatch, match="prompt_token_ids: id 999 is outside"):
        check_student_compat(
            manifest_for(tok), tok, SimpleNamespace(vocab_size=FAKE_VOCAB), table=table
        )


def test_manifest_without_tokenizer_is_refused():
    tok = FakeTokenizer()
    manifest = manifest_for(tok).model_copy(update={"tokenizer": None})
    with pytest.raises(StudentMismatch, match="records no teacher tokenizer"):
        check_student_compat(manifest, tok, SimpleNamespace(vocab_size=FAKE_VOCAB))


def test_special_tokens_unknown_to_the_manifest_are_not_compared():
    tok = FakeTokenizer()
    manifest = manifest_for(tok)
    manifest.tokenizer = TokenizerInfo(**{**manifest.tokenizer.model_dump(), "special_tokens": {}})
    check_student_compat(manifest, tok, SimpleNamespace(vocab_size=FAKE_VOCAB))


def test_kd_refuses_hard_label_datasets_from_api_teachers() -> None:
    from distill.schemas import SCHEMA_VERSION, Manifest
    from distill.train.student_check import _topk_problems

    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        kind="generated",
        dataset_id="x",
        top_k=5,
        params={"hard_labels": True},
    )
    (problem,) = _topk_problems(manifest, None)
    assert "hard labels only" in problem and "mode='sft'" in problem
