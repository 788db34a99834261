"""`distill score`: teacher-forced top-k on the real embedded teacher.

The reference is a separate, un-batched forward pass per record over its stored
prompt + response ids, log_softmax in float64, compared on the stored ids (robust to
near-ties swapping order). Scoring `distill gen`'s greedy output must give back gen's
own top-k: the decode loop (left padding, KV cache) and the one-pass scorer (right
padding, no cache) are two routes to the same distribution.
"""

import json
from pathlib import Path

import pytest
import torch

from distill.gen.prompts import PromptError
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table

pytestmark = pytest.mark.slow

PAIRS = [
    ("Name a colour.", "Blue."),
    ("What is 2 + 2?", "2 + 2 equals 4. Answer: B"),
    ("Say hello in French.", "Bonjour! That is how you say hello in French."),
]
K = 8


def _max_diff_to_reference(model, row: dict) -> float:
    """Largest |stored - reference| log-prob of one record; asserts the top-k sets too."""
    prompt, response = row["prompt_token_ids"], row["token_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + response])).logits[0].double()
    ref = torch.log_softmax(logits[len(prompt) - 1 : len(prompt) - 1 + len(response)], dim=-1)
    stored_ids = torch.tensor(row["topk_ids"])
    assert stored_ids.shape == (len(response), K)
    stored_lp = torch.tensor(row["topk_logprobs"], dtype=torch.float64)
    diff = (ref.gather(-1, stored_ids) - stored_lp).abs().max().item()
    top = ref.topk(K + 1, dim=-1)
    clear = (top.values[:, K - 1] - top.values[:, K]) > 1e-3  # no near-tie at rank k
    for pos in torch.nonzero(clear).flatten().tolist():
        assert set(stored_ids[pos].tolist()) == set(top.indices[pos, :K].tolist())
    actual = ref.gather(-1, torch.tensor(response)[:, None])[:, 0]
    sampled = torch.tensor(row["sampled_logprob"], dtype=torch.float64)
    tail = 1 - top.values[:, :K].exp().sum(-1)
    stored_tail = torch.tensor(row["tail_mass"], dtype=torch.float64)
    return max(diff, (actual - sampled).abs().max().item(), (tail - stored_tail).abs().max().item())


def test_scored_topk_matches_an_independent_forward_pass(tmp_path: Path, embedded_teacher) -> None:
    source = tmp_path / "sft.jsonl"
    source.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in PAIRS))
    result = score_dataset(
        source, tmp_path / "out", teacher=embedded_teacher, top_k=K, batch_size=2, progress=False
    )
    assert result.records_written == 3
    rows = read_table(tmp_path / "out").to_pylist()
    tok = embedded_teacher.tokenizer
    worst = 0.0
    for row in rows:
        response = dict(PAIRS)[row["messages"][-1]["content"]]
        assert row["response_text"] == response and row["finish_reason"] == "stop"
        expected = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert row["token_ids"] == expected
        assert row["prompt_token_ids"] == embedded_teacher.encode_chat(row["messages"])
        worst = max(worst, _max_diff_to_reference(embedded_teacher.model, row))
    assert worst < 1e-4
    print(f"score vs independent forward pass, max |diff|: {worst:.2e}")
    manifest = load_manifest(tmp_path / "out")
    assert manifest.params["mode"] == "score" and manifest.top_k == K
    assert manifest.counts["rows"] == 3
    again = score_dataset(
        source, tmp_path / "out", teacher=embedded_teacher, top_k=K, progress=False
    )
    assert again.records_written == 0 and again.records_skipped_existing == 3


def test_scoring_gen_output_reproduces_gens_topk(tmp_path: Path, embedded_teacher) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p, _ in PAIRS))
    sampling = SamplingParams(temperature=0.0, max_new_tokens=12)
    gen_dir, scored_dir = tmp_path / "gen", tmp_path / "scored"
    generate_dataset(
        prompts,
        gen_dir,
        teacher=embedded_teacher,
        top_k=K,
        sampling=sampling,
        batch_size=3,
        progress=False,
    )
    score_dataset(gen_dir, scored_dir, teacher=embedded_teacher, top_k=K, progress=False)
    gen_rows = {r["record_id"]: r for r in read_table(gen_dir).to_pylist()}
    scored = read_table(scored_dir).to_pylist()
    assert {r["record_id"] for r in scored} == set(gen_rows)  # same prompt, index, teacher
    worst = 0.0
    for row in scored:
        gen = gen_rows[row["record_id"]]
        assert row["token_ids"] == gen["token_ids"]
        assert row["finish_reason"] == gen["finish_reason"]
        for g_ids, g_lp, s_ids, s_lp in zip(
            gen["topk_ids"],
            gen["topk_logprobs"],
            row["topk_ids"],
            row["topk_logprobs"],
            strict=True,
        ):
            g, s = dict(zip(g_ids, g_lp, strict=True)), dict(zip(s_ids, s_lp, strict=True))
            for token in set(g) & set(s):
                worst = max(worst, abs(g[token] - s[token]))
            # ids may differ only by a near-tie at rank k
            for token in set(g) ^ set(s):
                assert abs((g[token] if token in g else s[token]) - min(g_lp[-1], s_lp[-1])) < 1e-3
        sampled = torch.tensor(row["sampled_logprob"]) - torch.tensor(gen["sampled_logprob"])
        worst = max(worst, sampled.abs().max().item())
    assert worst < 1e-4
    print(f"score vs gen's own top-k, max |diff|: {worst:.2e}")


def test_missing_response_names_file_line_and_field(tmp_path: Path, embedded_teacher) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(
        json.dumps({"prompt": "Hi", "response": "Hello"})
        + "\n"
        + json.dumps({"prompt": "Name a colour."})
        + "\n"
    )
    with pytest.raises(PromptError, match=r"bad\.jsonl:2: field 'response': missing") as err:
        score_dataset(source, tmp_path / "out", teacher=embedded_teacher, progress=False)
    assert (err.value.line, err.value.field) == (2, "response")
