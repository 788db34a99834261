"""Compact top-k storage: bit-packed ids, 8-bit log-probs, float16 tail (schema version 2).

`decode_topk` reads either layout into flat arrays; `encode_table` converts a table;
`pack_dataset` rewrites a dataset directory.
"""

from distill.codec.bitpack import bits_for
from distill.codec.dataset import pack_dataset
from distill.codec.quantize import LOGPROB_BITS, LOGPROB_BOUND, LOGPROB_RANGE
from distill.codec.topk import TopK, decode_topk, encode_table, encode_topk, plain_topk_columns

__all__ = [
    "LOGPROB_BITS",
    "LOGPROB_BOUND",
    "LOGPROB_RANGE",
    "TopK",
    "bits_for",
    "decode_topk",
    "encode_table",
    "encode_topk",
    "pack_dataset",
    "plain_topk_columns",
]
