"""8-bit log-probs relative to each token's best entry, and a float16 tail that never shrinks.

Log-probs. For a token with top-k log-probs `lp_1..lp_k`, let `ref = max(lp)` (the top-1
when the list is sorted, as every backend writes it). Each entry is stored as the code

    code = clip(round((ref - lp) * 255 / LOGPROB_RANGE), 0, 255)          (8 bits)

and `ref` is kept exactly (float32). Decoding gives `ref - code * LOGPROB_RANGE / 255`, so:

  * the best entry is exact (code 0);
  * every entry within LOGPROB_RANGE nats of the best is off by at most
    `LOGPROB_BOUND = LOGPROB_RANGE / 510` (half a step) = 0.0392 nats, plus float32 rounding;
  * an entry further below (probability < e^-20 ~ 2e-9 of the top-1's, or -inf) decodes
    as `ref - LOGPROB_RANGE`: never lower than the truth, never -inf, so KL(exact || decoded)
    stays finite.

LOGPROB_RANGE = 20 nats covers 99.9 % of the entries of SmolLM2's top-20 (the 99.9th
percentile of `ref - lp` is 17.8 nats) and every entry that carries mass a float32 can see.

Tail mass is stored as float16 rounded *up* (toward +inf): `0 <= tail_hat - tail <= one
float16 ulp`, i.e. a relative error below 2^-10 for tails >= 6.1e-5 and an absolute error
below 6e-8 under that. Rounding up means a positive tail never decodes as 0.
"""

from __future__ import annotations

import numpy as np

from distill.schemas.arrow import PACKED_LOGPROB_BITS, PACKED_LOGPROB_RANGE

LOGPROB_BITS = PACKED_LOGPROB_BITS
LOGPROB_RANGE = PACKED_LOGPROB_RANGE  # nats below the token's best entry covered by the 255 steps
LOGPROB_STEP = LOGPROB_RANGE / (2**LOGPROB_BITS - 1)
LOGPROB_BOUND = LOGPROB_STEP / 2  # max |decoded - exact| for entries within the range
_MAX_CODE = 2**LOGPROB_BITS - 1


def quantize_logprobs(logprobs: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """uint8 codes of `ref - logprobs` (one `ref` per entry, already repeated)."""
    lp = np.asarray(logprobs, np.float64)
    if np.isnan(lp).any() or np.isposinf(lp).any():
        raise ValueError("top-k log-probs must not be NaN or +inf")
    delta = np.asarray(ref, np.float64) - lp
    return np.clip(np.rint(delta / LOGPROB_STEP), 0, _MAX_CODE).astype(np.uint8)


def dequantize_logprobs(codes: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """float32 log-probs from uint8 codes and the per-entry reference."""
    return (
        np.asarray(ref, np.float32) - codes.astype(np.float32) * np.float32(LOGPROB_STEP)
    ).astype(np.float32)


def token_max(logprobs: np.ndarray, k_per_token: np.ndarray) -> np.ndarray:
    """The best log-prob of every token (float32); 0.0 for a token with an empty top-k."""
    k_per_token = np.asarray(k_per_token, np.int64)
    out = np.zeros(k_per_token.size, np.float32)
    full = k_per_token > 0
    if full.any():
        starts = (np.cumsum(k_per_token) - k_per_token)[full]
        out[full] = np.maximum.reduceat(np.asarray(logprobs, np.float32), starts)
    if np.isneginf(out).any():
        raise ValueError("a token's top-k log-probs are all -inf")
    return out


def delta_codes(codes: np.ndarray, k_per_token: np.ndarray) -> np.ndarray:
    """Each code minus the previous one of the same token, mod 256 (the first kept as is).

    Sorted top-k lists give small non-negative steps, which zstd packs ~25 % tighter than
    the codes themselves; the transform is lossless whatever the order.
    """
    prev = np.concatenate([[0], codes[:-1]]).astype(np.uint8)
    first = np.cumsum(k_per_token) - k_per_token
    prev[first[k_per_token > 0]] = 0
    return codes - prev  # uint8 arithmetic wraps mod 256


def undelta_codes(deltas: np.ndarray, k_per_token: np.ndarray) -> np.ndarray:
    """Inverse of `delta_codes`: a running sum per token, mod 256."""
    k_per_token = np.asarray(k_per_token, np.int64)
    running = np.cumsum(deltas, dtype=np.int64)
    ends = np.cumsum(k_per_token)
    before = np.concatenate([[0], running])[ends - k_per_token]  # sum up to the token's start
    return ((running - np.repeat(before, k_per_token)) & 0xFF).astype(np.uint8)


def tail_to_float16(tail: np.ndarray) -> np.ndarray:
    """float16 of `tail`, rounded toward +inf (see the module docstring)."""
    tail = np.asarray(tail, np.float32)
    half = tail.astype(np.float16)
    low = half.astype(np.float32) < tail
    half[low] = np.nextafter(half[low], np.float16(np.inf))
    return half
