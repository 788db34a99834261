"""Byte-span alignment of two tokenisations: tiling, target matching, mass conservation."""

from __future__ import annotations

import numpy as np
import pytest

from distill.train.token_alignment import (
    align_spans,
    byte_overlaps,
    char_offsets_to_bytes,
    check_tiling,
    project_by_bytes,
    spans_from_lengths,
    tiling_error,
)
from distill.train.token_bytes import VocabBytes, student_spans, vocab_bytes, vocab_map


def _spans(*lengths: int) -> tuple[np.ndarray, np.ndarray]:
    return spans_from_lengths(np.array(lengths))


def test_spans_from_lengths_tile_the_text():
    starts, ends = _spans(3, 1, 4)
    assert starts.tolist() == [0, 3, 4] and ends.tolist() == [3, 4, 8]
    assert tiling_error(starts, ends, 8) is None


@pytest.mark.parametrize(
    ("starts", "ends", "n", "message"),
    [
        ([0, 4], [3, 6], 6, "gap between span 0 (ends 3) and span 1 (starts 4)"),
        ([0, 2], [3, 6], 6, "overlap between span 0 (ends 3) and span 1 (starts 2)"),
        ([1, 3], [3, 6], 6, "the first span starts at byte 1, not 0"),
        ([0, 3], [3, 5], 6, "the last span ends at byte 5, not 6"),
    ],
)
def test_tiling_errors_name_the_fault(starts, ends, n, message):
    assert tiling_error(np.array(starts), np.array(ends), n) == message
    with pytest.raises(ValueError, match="row 7: "):
        check_tiling(np.array(starts), np.array(ends), n, "row 7")


def test_char_offsets_become_byte_offsets():
    text = "aé€😀b"  # 1, 2, 3, 4 and 1 bytes
    offsets = np.array([[0, 1], [1, 3], [3, 4], [4, 5]])
    assert char_offsets_to_bytes(text, offsets).tolist() == [[0, 1], [1, 6], [6, 10], [10, 11]]


def test_align_matches_tokens_starting_at_the_same_byte():
    # text "abcdefgh": teacher |abc|d|efgh|, student |ab|cd|efgh|
    teacher, student = _spans(3, 1, 4), _spans(2, 2, 4)
    got = align_spans(teacher, student)
    # student "ab" starts with teacher "abc"; "cd" starts inside it; "efgh" is one-to-one
    assert got.teacher_of_student.tolist() == [0, -1, 2]
    assert got.one_to_one.tolist() == [False, False, True]


def test_align_skips_empty_teacher_tokens_and_stops_at_the_common_bytes():
    teacher = _spans(0, 2, 2, 2)  # an id with no bytes first
    student = _spans(2, 2, 2)
    got = align_spans(teacher, student, common_bytes=5)
    assert got.teacher_of_student.tolist() == [1, 2, -1]  # the last ends past byte 5


def test_mass_is_conserved_when_spans_merge_and_split():
    # teacher |abcd|ef|g|h| onto student |ab|cdefg|h|: "abcd" splits 2/2, "ef" and "g" merge
    teacher, student = _spans(4, 2, 1, 1), _spans(2, 5, 1)
    values = np.array([1.0, 3.0, 5.0, 7.0])
    projected = project_by_bytes(values, teacher, student)
    np.testing.assert_allclose(projected, [0.5, 0.5 + 3.0 + 5.0, 7.0])
    assert projected.sum() == pytest.approx(values.sum())


def test_mass_is_conserved_on_random_tilings():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        cuts_t = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 8), replace=False))
        cuts_s = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 5), replace=False))
        teacher = (np.r_[0, cuts_t], np.r_[cuts_t, n])
        student = (np.r_[0, cuts_s], np.r_[cuts_s, n])
        values = rng.random(teacher[0].size)
        assert project_by_bytes(values, teacher, student).sum() == pytest.approx(values.sum())
        _, _, shared = byte_overlaps(teacher, student)
        assert shared.sum() == n  # every byte is shared by exactly one pair


def test_a_zero_length_teacher_token_gives_its_mass_to_the_token_holding_its_position():
    teacher = _spans(2, 0, 2)
    student = _spans(1, 3)
    assert project_by_bytes(np.array([2.0, 10.0, 4.0]), teacher, student).tolist() == [
        1.0,
        1.0 + 10.0 + 4.0,
    ]


def _toy_vocab(*tokens: bytes) -> VocabBytes:
    lengths = np.array([len(t) for t in tokens])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return VocabBytes(np.frombuffer(b"".join(tokens), dtype=np.uint8), offsets)


def test_vocab_bytes_decode_and_one_to_one_map():
    teacher = _toy_vocab(b"a", b"bc", b" the", b"x", b"x", b"\xe2")
    student = _toy_vocab(b" the", b"bc", b"a", b"q", b"x")
    data, lengths = teacher.decode(np.array([2, 0, 1, 9]))  # 9: past the vocabulary
    assert data == b" theabc" and lengths.tolist() == [4, 1, 2, 0]
    # "x" is held by two teacher ids, so it is not one-to-one; "\xe2" has no student match
    assert vocab_map(teacher, student).tolist() == [2, 1, 0, -1, -1, -1]


def test_student_spans_tile_real_text(teacher_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    vocab = vocab_bytes(tokenizer)
    texts = ["The answer is (B) — café, naïve 😀.", "", "  two  spaces\n\nand lines"]
    for text, (ids, spans) in zip(texts, student_spans(tokenizer, texts, vocab), strict=True):
        assert spans is not None
        check_tiling(*spans, len(text.encode()), text)
        # the spans cut the text where the ids' own bytes do
        data, lengths = vocab.decode(ids)
        assert data == text.encode()
        assert np.array_equal(spans[1] - spans[0], lengths)
