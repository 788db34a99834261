"""Align two tokenisations of one text through their byte spans (pure numpy).

Cross-tokenizer KD reads the teacher's tokens as bytes (each token id decoded through the
teacher's vocabulary), re-tokenises the same bytes for the student, and puts each tokenisation
on byte spans `[start, end)` that tile the text: no gap, no overlap (`check_tiling`).

Two things are aligned:
  - targets: the teacher's top-k at teacher token t is its distribution of the token that
    starts at byte `start[t]`, given every byte before it. A student token that starts at
    the same byte predicts from the same bytes, so it takes t's top-k as its target
    (`align_spans`). A student token that starts inside a teacher token (a teacher token
    split in two) has no teacher distribution: it trains on cross-entropy alone.
  - quantities per token (a log-prob, a count): `project_by_bytes` moves each teacher
    token's value onto the student tokens that share its bytes, in proportion to the bytes
    they share, so merged spans add up and split spans share out, and the total is conserved.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def spans_from_lengths(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of consecutive tokens of these byte lengths, from byte 0."""
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    return ends - np.asarray(lengths, dtype=np.int64), ends


def utf8_char_lengths(text: str) -> np.ndarray:
    """The UTF-8 byte length of each character of `text` (1 to 4), vectorised."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000)


def char_offsets_to_bytes(text: str, offsets: np.ndarray) -> np.ndarray:
    """Character offsets `[n, 2]` into `text` (a fast tokenizer's `offset_mapping`) as
    byte offsets into `text.encode("utf-8")`."""
    byte_at = np.concatenate([[0], np.cumsum(utf8_char_lengths(text))]).astype(np.int64)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    return byte_at[offsets]


def tiling_error(starts: np.ndarray, ends: np.ndarray, n_bytes: int) -> str | None:
    """Why the spans do not tile `[0, n_bytes)` exactly, or None when they do."""
    starts, ends = np.asarray(starts), np.asarray(ends)
    if starts.size == 0:
        return None if n_bytes == 0 else f"no spans over {n_bytes} bytes"
    if starts[0] != 0:
        return f"the first span starts at byte {starts[0]}, not 0"
    if ends[-1] != n_bytes:
        return f"the last span ends at byte {ends[-1]}, not {n_bytes}"
    if np.any(ends < starts):
        return f"span {int(np.argmax(ends < starts))} ends before it starts"
    joints = np.flatnonzero(starts[1:] != ends[:-1])
    if joints.size:
        j = int(joints[0])
        kind = "gap" if starts[j + 1] > ends[j] else "overlap"
        return f"{kind} between span {j} (ends {ends[j]}) and span {j + 1} (starts {starts[j + 1]})"
    return None


def check_tiling(starts: np.ndarray, ends: np.ndarray, n_bytes: int, what: str) -> None:
    """Raise ValueError naming `what` unless the spans tile `[0, n_bytes)` exactly."""
    error = tiling_error(starts, ends, n_bytes)
    if error is not None:
        raise ValueError(f"{what}: {error}")


class SpanAlignment(NamedTuple):
    """Per student token: the teacher token whose top-k is its target (-1: none), and
    whether the two tokens cover exactly the same bytes (a one-to-one span)."""

    teacher_of_student: np.ndarray  # [S] int64
    one_to_one: np.ndarray  # [S] bool

    @property
    def aligned(self) -> np.ndarray:
        return self.teacher_of_student >= 0


def align_spans(
    teacher: tuple[np.ndarray, np.ndarray],
    student: tuple[np.ndarray, np.ndarray],
    common_bytes: int | None = None,
) -> SpanAlignment:
    """Match each student token to the teacher token starting at the same byte.

    `teacher` and `student` are (starts, ends). Only the first `common_bytes` bytes (default:
    all) are the same text on both sides; a student token reaching past them is unaligned.
    Zero-length teacher tokens (ids that decode to no bytes) are skipped: the teacher token
    after one predicts the bytes at that position.
    """
    t_starts, t_ends = (np.asarray(a, dtype=np.int64) for a in teacher)
    s_starts, s_ends = (np.asarray(a, dtype=np.int64) for a in student)
    real = np.flatnonzero(t_ends > t_starts)
    none = np.full(s_starts.size, -1, dtype=np.int64)
    if real.size == 0:
        return SpanAlignment(none, np.zeros(s_starts.size, dtype=bool))
    if common_bytes is None:
        common_bytes = int(t_ends[-1])
    # Teacher starts are strictly increasing once empty tokens are skipped.
    candidate = real[np.minimum(np.searchsorted(t_starts[real], s_starts), real.size - 1)]
    hit = (t_starts[candidate] == s_starts) & (s_ends <= common_bytes) & (s_ends > s_starts)
    teacher_of_student = np.where(hit, candidate, none)
    one_to_one = hit & (t_ends[candidate] == s_ends)
    return SpanAlignment(teacher_of_student, one_to_one)


def byte_overlaps(
    teacher: tuple[np.ndarray, np.ndarray], student: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(teacher index, student index, shared bytes) for every overlapping pair of tokens.

    Both sides must tile the same bytes. Built with searchsorted and repeat, no loop.
    """
    t_starts, t_ends = (np.asarray(a, dtype=np.int64) for a in teacher)
    s_starts, s_ends = (np.asarray(a, dtype=np.int64) for a in student)
    first = np.searchsorted(s_ends, t_starts, side="right")  # first student ending after start
    last = np.searchsorted(s_starts, t_ends, side="left")  # one past the last starting before end
    count = np.maximum(last - first, 0)
    t_index = np.repeat(np.arange(t_starts.size), count)
    s_index = np.repeat(first, count) + (
        np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    )
    shared = np.minimum(t_ends[t_index], s_ends[s_index]) - np.maximum(
        t_starts[t_index], s_starts[s_index]
    )
    keep = shared > 0
    return t_index[keep], s_index[keep], shared[keep]


def project_by_bytes(
    values: np.ndarray,
    teacher: tuple[np.ndarray, np.ndarray],
    student: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Each teacher token's value shared out over the student tokens covering its bytes, in
    proportion to the bytes each covers: `[T]` -> `[S]`, and the total is unchanged.

    A zero-length teacher token gives its whole value to the student token that holds its
    position (the last one at the end of the text).
    """
    values = np.asarray(values, dtype=np.float64)
    t_starts, t_ends = (np.asarray(a, dtype=np.int64) for a in teacher)
    s_starts, s_ends = (np.asarray(a, dtype=np.int64) for a in student)
    out = np.zeros(s_starts.size, dtype=np.float64)
    if s_starts.size == 0:
        return out
    t_index, s_index, shared = byte_overlaps(teacher, student)
    lengths = (t_ends - t_starts)[t_index]
    np.add.at(out, s_index, values[t_index] * shared / lengths)
    empty = np.flatnonzero(t_ends == t_starts)
    holder = np.minimum(np.searchsorted(s_ends, t_starts[empty], side="right"), s_starts.size - 1)
    np.add.at(out, holder, values[empty])
    return out
