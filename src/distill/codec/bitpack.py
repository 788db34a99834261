"""Unsigned integers bit-packed at a fixed width, one byte-aligned blob per segment.

A segment is one record's values (all its tokens' top-k ids, token-major), so every row
of the table owns whole bytes and row filtering never splits a value. Inside a segment,
value i occupies bits `[i * bits, (i + 1) * bits)`, least significant bit first
(little-endian bit order, as `np.packbits(bitorder="little")`).

Both directions are vectorised over every value of every segment: encoding loops over
the bit planes (at most `MAX_BITS`), decoding reads one unaligned 64-bit little-endian
word per value and shifts it, so neither has a Python loop per value or per row.
"""

from __future__ import annotations

import numpy as np

MAX_BITS = 56  # a value plus its bit shift (< 8) must fit one 64-bit window


def bits_for(vocab_size: int) -> int:
    """ceil(log2(vocab_size)), at least 1: the width that holds every id in [0, vocab_size)."""
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    return max(1, int(vocab_size - 1).bit_length())


def segment_byte_lengths(counts: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Bytes each segment takes: ceil(count * bits / 8)."""
    return (np.asarray(counts, np.int64) * np.asarray(bits, np.int64) + 7) // 8


def _bit_positions(counts: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start bit of every value in the concatenated blobs, width of every value)."""
    counts = np.asarray(counts, np.int64)
    bits = np.asarray(bits, np.int64)
    byte_starts = np.cumsum(segment_byte_lengths(counts, bits)) - segment_byte_lengths(counts, bits)
    first = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
    width = np.repeat(bits, counts)
    return np.repeat(byte_starts * 8, counts) + within * width, width


def pack(values: np.ndarray, counts: np.ndarray, bits: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Pack `values` (segment after segment) -> (all blobs concatenated, byte offsets [S + 1]).

    `counts[s]` values of segment s are written at `bits[s]` bits each. Values must be
    non-negative and below 2 ** bits of their segment.
    """
    values = np.asarray(values, np.int64)
    counts = np.asarray(counts, np.int64)
    bits = np.asarray(bits, np.int64)
    if values.size != int(counts.sum()):
        raise ValueError(f"{values.size} values but the segment counts add up to {counts.sum()}")
    if bits.size and (bits.min() < 1 or bits.max() > MAX_BITS):
        raise ValueError(f"bit widths must be in [1, {MAX_BITS}]")
    lengths = segment_byte_lengths(counts, bits)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    start, width = _bit_positions(counts, bits)
    if values.size and (values.min() < 0 or np.any(values >> width)):
        raise ValueError("a value is negative or does not fit its segment's bit width")
    plane = np.zeros(int(offsets[-1]) * 8, dtype=np.uint8)
    for b in range(int(bits.max(initial=0))):
        on = (width > b) & ((values >> b) & 1).astype(bool)
        plane[start[on] + b] = 1
    return np.packbits(plane, bitorder="little").tobytes(), offsets


def unpack(
    data: np.ndarray | bytes, offsets: np.ndarray, counts: np.ndarray, bits: np.ndarray
) -> np.ndarray:
    """Inverse of `pack`: the values of every segment, concatenated, as int64.

    `data` holds the blobs, segment s at `data[offsets[s]:offsets[s + 1]]` (e.g. an Arrow
    binary column's value buffer and its offsets; the segments need not be contiguous).
    """
    counts = np.asarray(counts, np.int64)
    bits = np.asarray(bits, np.int64)
    offsets = np.asarray(offsets, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    need = segment_byte_lengths(counts, bits)
    if np.any(offsets[1:] - offsets[:-1] < need):
        bad = np.flatnonzero(offsets[1:] - offsets[:-1] < need)[:5].tolist()
        raise ValueError(f"segments {bad}: fewer bytes than their values need (corrupt data?)")
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    whole = int(bits[0]) if bits.size and np.all(bits == bits[0]) else 0
    if whole in (8, 16, 32) and np.array_equal(np.diff(offsets), need):
        # Byte-aligned values in back-to-back segments (SmolLM2's 16-bit ids): a plain view.
        span = buf[offsets[0] : offsets[-1]]
        return span.view(f"<u{whole // 8}").astype(np.int64)
    # Every value's start bit, relative to its own segment's first byte in `data`.
    start, width = _bit_positions(counts, bits)
    seg_first_byte = np.repeat(offsets[:-1] - (np.cumsum(need) - need), counts)
    start = start + seg_first_byte * 8
    padded = np.zeros(buf.size + 8, dtype=np.uint8)
    padded[: buf.size] = buf
    # One unaligned little-endian 64-bit window per byte offset (a strided view, no copy).
    windows = np.ndarray((buf.size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    word = windows[start >> 3]
    mask = (np.uint64(1) << width.astype(np.uint64)) - np.uint64(1)
    return ((word >> (start & 7).astype(np.uint64)) & mask).astype(np.int64)
