"""The bit layout itself: widths, little-endian bit order, byte-aligned rows."""

from __future__ import annotations

import numpy as np
import pytest

from distill.codec.bitpack import bits_for, pack, unpack


def test_bits_for_is_ceil_log2() -> None:
    assert [bits_for(v) for v in (1, 2, 3, 4, 5, 256, 257, 49152, 2**20)] == [
        1, 1, 2, 2, 3, 8, 9, 16, 20,
    ]  # fmt: skip


def test_layout_is_lsb_first_and_rows_start_on_a_byte() -> None:
    # row 0: [1, 2, 3] at 2 bits -> 0b11_10_01 = 0x39; row 1: [5] at 3 bits -> 0x05
    blob, offsets = pack(np.array([1, 2, 3, 5]), np.array([3, 1]), np.array([2, 3]))
    assert blob == bytes([0x39, 0x05])
    assert offsets.tolist() == [0, 1, 2]
    assert unpack(blob, offsets, np.array([3, 1]), np.array([2, 3])).tolist() == [1, 2, 3, 5]


def test_sixteen_bit_ids_take_two_bytes_each() -> None:
    values = np.array([0, 49151, 300, 65535])
    blob, _ = pack(values, np.array([4]), np.array([16]))
    assert len(blob) == 8 and np.frombuffer(blob, "<u2").tolist() == values.tolist()


def test_value_too_wide_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        pack(np.array([4]), np.array([1]), np.array([2]))
