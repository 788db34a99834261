"""The random student shares the teacher's tokenizer, and `logits_at` matches the full forward."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.tokenizer_info import describe_tokenizer
from distill.train import build_random_student
from distill.train.student import logits_at

from .conftest import REAL_VOCAB


def test_student_has_teacher_vocab_and_tokenizer(teacher_dir, tiny_student):
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    assert model.config.vocab_size == REAL_VOCAB
    assert model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.dtype == torch.float32
    student_tok = describe_tokenizer(AutoTokenizer.from_pretrained(tiny_student), model.config)
    teacher_tok = describe_tokenizer(AutoTokenizer.from_pretrained(teacher_dir))
    assert student_tok == teacher_tok


def test_same_seed_same_weights(teacher_dir, tmp_path):
    kwargs = {"hidden_size": 16, "num_layers": 1, "heads": 2, "intermediate": 32}
    a = build_random_student(teacher_dir, tmp_path / "a", seed=3, **kwargs)
    b = build_random_student(teacher_dir, tmp_path / "b", seed=3, **kwargs)
    c = build_random_student(teacher_dir, tmp_path / "c", seed=4, **kwargs)
    wa, wb, wc = (
        AutoModelForCausalLM.from_pretrained(p).get_input_embeddings().weight for p in (a, b, c)
    )
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_logits_at_equals_full_forward(tiny_student):
    model = AutoModelForCausalLM.from_pretrained(tiny_student).eval()
    ids = torch.randint(0, REAL_VOCAB, (2, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    where = torch.zeros_like(ids, dtype=torch.bool)
    where[0, 2:6] = True
    where[1, 1:4] = True
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits[where]
        picked = logits_at(model, ids, mask, where)
    torch.testing.assert_close(picked, full, atol=1e-5, rtol=1e-5)
