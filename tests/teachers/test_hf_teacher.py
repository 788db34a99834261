"""The stored top-k must equal what a plain transformers forward pass says.

The decode loop batches prompts of different lengths (left padding, KV cache, explicit
position ids); the reference is one un-padded, un-cached forward pass per record over
prompt + response, with log_softmax in float64.
"""

import json
from pathlib import Path

import pytest
import torch

from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table

pytestmark = pytest.mark.slow

PROMPTS = [
    "Name a colour.",
    "Explain in one sentence why the sky is blue, then say 'Answer: B'.",
    "Which is larger, 7 or 9? Reply with the number only.",
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory, embedded_teacher) -> Path:
    tmp = tmp_path_factory.mktemp("gen")
    prompts = tmp / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    sampling = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=12, seed=1, n=2)
    generate_dataset(
        prompts,
        tmp / "out",
        teacher=embedded_teacher,
        top_k=8,
        sampling=sampling,
        batch_size=4,
        progress=False,
    )
    return tmp / "out"


def test_topk_matches_an_independent_forward_pass(generated: Path, embedded_teacher) -> None:
    table = read_table(generated).to_pylist()
    assert len(table) == len(PROMPTS) * 2
    model = embedded_teacher.model
    worst = 0.0
    for row in table:
        prompt, response = row["prompt_token_ids"], row["token_ids"]
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].double()
        logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        ref_lp, ref_ids = logprobs.topk(8, dim=-1)
        stored_ids = torch.tensor(row["topk_ids"])
        stored_lp = torch.tensor(row["topk_logprobs"], dtype=torch.float64)
        assert stored_ids.shape == (len(response), 8)
        # Compare log-probs of the stored ids (robust to near-ties swapping order) and
        # require the sets to agree wherever the reference has no near-tie at rank k.
        gathered = logprobs.gather(-1, stored_ids)
        worst = max(worst, (gathered - stored_lp).abs().max().item())
        assert torch.allclose(gathered, stored_lp, atol=1e-4, rtol=0)
        clear = (ref_lp[:, -1] - logprobs.topk(9, dim=-1).values[:, -1]) > 1e-3
        for pos in torch.nonzero(clear).flatten().tolist():
            assert set(stored_ids[pos].tolist()) == set(ref_ids[pos].tolist())
        sampled = logprobs.gather(-1, torch.tensor(response)[:, None])[:, 0]
        assert torch.allclose(
            sampled, torch.tensor(row["sampled_logprob"], dtype=torch.float64), atol=1e-4, rtol=0
        )
        tail = 1 - ref_lp.exp().sum(-1)
        assert torch.allclose(
            tail, torch.tensor(row["tail_mass"], dtype=torch.float64), atol=1e-4, rtol=0
        )
    print(f"max |stored - reference| log-prob: {worst:.2e}")


def test_records_and_manifest_describe_the_run(generated: Path, embedded_teacher) -> None:
    manifest = load_manifest(generated)
    teacher = manifest.teachers[0]
    assert teacher.model_id == "SmolLM2-135M-Instruct" and teacher.logprobs_mode.value == "raw"
    assert manifest.tokenizer is not None and manifest.tokenizer.vocab_size == 49152
    assert manifest.top_k == 8 and manifest.counts["rows"] == 6
    assert sum(s.rows for s in manifest.shards) == 6
    rows = read_table(generated).to_pylist()
    for row in rows:
        assert row["finish_reason"] in ("stop", "length")
        if row["finish_reason"] == "stop":
            assert row["token_ids"][-1] in embedded_teacher.stop_ids
        else:
            assert len(row["token_ids"]) == 12
        text = embedded_teacher.tokenizer.decode(row["token_ids"], skip_special_tokens=True)
        assert row["response_text"] == text
    assert len({r["record_id"] for r in rows}) == 6
    # two samples of one prompt at temperature 0.8 differ somewhere
    by_prompt: dict[str, list] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], []).append(row["token_ids"])
    assert any(a != b for a, b in by_prompt.values())


def test_rerun_writes_nothing_new_and_other_settings_are_refused(
    generated: Path, embedded_teacher
) -> None:
    prompts = generated.parent / "p.jsonl"
    sampling = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=12, seed=1, n=2)
    again = generate_dataset(
        prompts,
        generated,
        teacher=embedded_teacher,
        top_k=8,
        sampling=sampling,
        batch_size=4,
        progress=False,
    )
    assert again.records_written == 0 and again.records_skipped_existing == 6
    with pytest.raises(ValueError, match=r"top_k: existing 8 vs now 4"):
        generate_dataset(
            prompts, generated, teacher=embedded_teacher, top_k=4, sampling=sampling, progress=False
        )


def test_decode_loop_uses_no_deprecated_cache_api(embedded_teacher, monkeypatch) -> None:
    """transformers 5.2x warns on `past_key_values` (a FutureWarning on the keyword, a
    logged warning on the output field) and removes it in 5.40: decoding, with a prompt
    repeated so the prefilled cache is reordered too, must raise neither."""
    import logging
    import warnings

    from distill.teachers.hf_teacher import generate_batch

    logged: list[str] = []

    def record(self: logging.Logger, message: object, *args: object, **kwargs: object) -> None:
        logged.append(str(message))

    monkeypatch.setattr(logging.Logger, "warning_once", record)
    prompts = [embedded_teacher.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    sampling = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        gens = generate_batch(embedded_teacher, prompts + prompts[:1], sampling, 4, [0, 1, 2, 3])
    assert [len(g.token_ids) > 0 for g in gens] == [True] * 4
    assert [m for m in logged if "deprecated" in m] == []
