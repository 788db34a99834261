"""The vLLM offline teacher: `--teacher vllm:MODEL_DIR`, run with `vllm.LLM` in-process.

vLLM has its own torch and transformers pins, so it lives in its own environment
(`bash scripts/setup_vllm.sh` makes `.venv-vllm`); run `.venv-vllm/bin/distill gen ...`.
A script that starts the engine must guard its entry point with
`if __name__ == "__main__":` (vLLM starts worker processes). After a vLLM run the process
can abort at interpreter exit (exit 134, in native teardown, after the work is done and the
engine shut down; about 1 run in 8 here): `distill gen`/`score` end such runs with
`os._exit` (`distill.cli.app.exit_hard_after_vllm`), and a script can do the same.
On CPU, bound the KV cache with `VLLM_CPU_KVCACHE_SPACE` (GiB), e.g.
`VLLM_CPU_KVCACHE_SPACE=2`.

What vLLM returns, per generated token, is a dict {token id: Logprob(logprob, rank)} with
the top-k *and* the sampled token: k entries when the sampled token is in the top-k,
k + 1 when it is not. We keep the entries of rank 1..k as the top-k and read the sampled
token's log-prob from its own entry. vLLM does not return the mass outside the top-k, so
`tail_mass` is 1 - sum(exp(top-k)), clamped at 0 (see `backend.tail_from_topk`).

`distill score` (teacher forcing) uses `prompt_logprobs` over prompt + response, read the
same way (see `VLLMTeacher.score`).

Log-probs are the raw distribution (`logprobs_mode="raw_logprobs"`: log_softmax of the
logits before temperature / top-p), the same as the transformers backend records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from distill.schemas import LogprobsMode, SamplingParams, TeacherInfo
from distill.schemas.manifest import TokenizerInfo
from distill.teachers.backend import Generation, encode_chat_ids, tail_from_topk
from distill.teachers.hf_teacher import weights_revision
from distill.tokenizer_info import (
    chat_template_hash,
    describe_tokenizer,
    tokenizer_hash,
    vocab_size,
)

# vLLM's name for the mode each of ours maps to.
VLLM_LOGPROBS_MODES = {
    LogprobsMode.RAW: "raw_logprobs",
    LogprobsMode.PROCESSED: "processed_logprobs",
}


class VLLMEngineConfig(BaseModel):
    """Options of `vllm.LLM`; pass them as `--teacher-opt KEY=VALUE`."""

    model_config = ConfigDict(extra="forbid")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs to shard the model over")
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16")
    max_model_len: int | None = Field(None, ge=1, description="context length; None = model's")
    enforce_eager: bool = Field(False, description="no CUDA graphs / compilation (faster start)")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    logprobs_mode: Literal["raw", "processed"] = Field(
        "raw", description="raw: log_softmax of the logits; processed: after temperature/top-p"
    )
    seed: int = Field(0, description="engine seed; each request also gets its own seed")


@dataclass
class VLLMTeacher:
    llm: Any
    tokenizer: Any
    model_config: Any
    model_id: str
    revision: str
    config: VLLMEngineConfig

    def close(self) -> None:
        """Stop the engine's processes now, while the interpreter is whole.

        Left to interpreter exit, vLLM's own teardown (SIGTERM to the engine core) races its
        engine monitor thread ("engine core exited unexpectedly", or a force-kill). This
        does not prevent the rarer abort at exit that `exit_hard_after_vllm` handles (see
        the module docstring). Safe to call twice.
        """
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return TeacherInfo(
            model_id=self.model_id,
            revision=self.revision,
            backend="vllm",
            tokenizer_hash=tokenizer_hash(self.tokenizer),
            vocab_size=vocab_size(self.tokenizer, self.model_config),
            chat_template_hash=chat_template_hash(self.tokenizer),
            logprobs_mode=LogprobsMode(self.config.logprobs_mode),
            top_k=top_k,
            sampling=sampling,
        )

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return encode_chat_ids(self.tokenizer, messages)

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def tokenizer_info(self) -> TokenizerInfo:
        return describe_tokenizer(self.tokenizer, self.model_config)

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        top_k: int,
        seeds: list[int],
        messages: list[list[dict[str, str]]] | None = None,
    ) -> list[Generation]:
        from vllm import SamplingParams as VLLMSamplingParams

        # One request per row (n=1) with the row's own seed: `n` samples per prompt are
        # n rows, each with its own record id, so a resumed run redraws only what is missing.
        params = [
            VLLMSamplingParams(
                n=1,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=seed % (1 << 63),
                max_tokens=sampling.max_new_tokens,
                logprobs=top_k,
            )
            for seed in seeds
        ]
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [generation_from_vllm(out.outputs[0], top_k) for out in outputs]

    def score(self, pairs: list[tuple[list[int], list[int]]], top_k: int) -> list[Generation]:
        """Teacher-forced top-k at each response position of (prompt ids, response ids).

        vLLM's `prompt_logprobs` over prompt + response: one prefill per row, and the one
        token it must generate is discarded. They are always log_softmax of the raw logits
        (no sampler runs on prompt positions), so only the raw mode can score.
        """
        from vllm import SamplingParams as VLLMSamplingParams

        if self.config.logprobs_mode != "raw":
            raise ValueError("scoring records raw log-probs; drop logprobs_mode=processed")
        if not pairs:
            return []
        # detokenize=False: nobody reads the top-k tokens' strings, and decoding k of them
        # at every prompt position would cost more than the forward pass of a small model.
        params = VLLMSamplingParams(max_tokens=1, prompt_logprobs=top_k, detokenize=False)
        requests = [{"prompt_token_ids": list(p) + list(r)} for p, r in pairs]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [
            generation_from_prompt_logprobs(out.prompt_logprobs, len(p), list(r), top_k)
            for out, (p, r) in zip(outputs, pairs, strict=True)
        ]


def generation_from_vllm(completion: Any, top_k: int) -> Generation:
    """A `Generation` from one vLLM `CompletionOutput` (token ids + per-token logprob dicts)."""
    finish = "stop" if completion.finish_reason == "stop" else "length"
    token_ids = [int(t) for t in completion.token_ids]
    return generation_from_positions(token_ids, completion.logprobs, top_k, finish)


def generation_from_prompt_logprobs(
    prompt_logprobs: list[dict[int, Any] | None], prompt_len: int, response: list[int], top_k: int
) -> Generation:
    """A `Generation` for `response` from vLLM's prompt log-probs over prompt + response.

    Entry i is the distribution of token i given tokens < i (entry 0, with no context, is
    None), so response token j, at position prompt_len + j, reads entry prompt_len + j;
    that entry holds the actual token too, with its rank, even outside the top-k.
    """
    if prompt_len < 1 or len(prompt_logprobs) != prompt_len + len(response):
        raise ValueError(
            f"prompt log-probs cover {len(prompt_logprobs)} positions, expected "
            f"{prompt_len} + {len(response)} (a non-empty prompt, then the response)"
        )
    positions = prompt_logprobs[prompt_len:]
    missing = [j for j, position in enumerate(positions) if position is None]
    if missing:
        raise ValueError(f"no prompt log-probs at response position {missing[0]}")
    return generation_from_positions(list(response), positions, top_k, "stop")  # type: ignore[arg-type]


def generation_from_positions(
    token_ids: list[int], positions: list[dict[int, Any]], top_k: int, finish: str
) -> Generation:
    """A `Generation` from one {id: Logprob} dict per token of `token_ids` (the token
    itself is in its dict, with its rank, even outside the top-k)."""
    gen = Generation(token_ids, [], [], [], [], finish)
    for token, position in zip(token_ids, positions, strict=True):
        ids, lps, token_lp = split_position(position, token, top_k)
        gen.topk_ids.append(ids)
        gen.topk_logprobs.append(lps)
        gen.sampled_logprob.append(token_lp)
        gen.tail_mass.append(tail_from_topk(lps))
    return gen


def split_position(
    position: dict[int, Any], sampled_id: int, top_k: int
) -> tuple[list[int], list[float], float]:
    """Top-k ids and log-probs (by rank) and the sampled token's log-prob, from one step's
    {id: Logprob} dict, which holds k entries, or k + 1 when the sampled token is outside
    the top-k."""
    ranked = sorted(
        position.items(), key=lambda kv: (kv[1].rank or top_k + 1, -kv[1].logprob, kv[0])
    )
    if len(ranked) > top_k and sampled_id in position:
        # Drop the sampled token's extra entry, not a real top-k entry (rank ties).
        extra = position[sampled_id]
        if extra.rank is None or extra.rank > top_k:
            ranked = [kv for kv in ranked if kv[0] != sampled_id]
    ranked = ranked[:top_k]
    sampled_lp = float(position[sampled_id].logprob)
    return [int(i) for i, _ in ranked], [float(lp.logprob) for _, lp in ranked], sampled_lp


def load_vllm_teacher(
    model_dir: Path,
    config: VLLMEngineConfig | None = None,
    max_logprobs: int = 20,
    model_id: str | None = None,
) -> VLLMTeacher:
    """Start the engine on a local checkpoint dir (nothing is downloaded)."""
    from transformers import AutoConfig, AutoTokenizer
    from vllm import LLM

    config = config or VLLMEngineConfig()
    model_dir = Path(model_dir).expanduser()
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face checkpoint (no config.json)")
    llm = LLM(
        model=str(model_dir),
        tokenizer=str(model_dir),
        max_logprobs=max_logprobs,
        logprobs_mode=VLLM_LOGPROBS_MODES[LogprobsMode(config.logprobs_mode)],
        tensor_parallel_size=config.tensor_parallel_size,
        dtype=config.dtype,
        max_model_len=config.max_model_len,
        enforce_eager=config.enforce_eager,
        gpu_memory_utilization=config.gpu_memory_utilization,
        seed=config.seed,
    )
    return VLLMTeacher(
        llm=llm,
        tokenizer=AutoTokenizer.from_pretrained(model_dir),
        model_config=AutoConfig.from_pretrained(model_dir),
        model_id=model_id or model_dir.name,
        revision=weights_revision(model_dir),
        config=config,
    )
