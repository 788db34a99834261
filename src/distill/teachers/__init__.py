"""Teachers: the backends that answer prompts and capture each token's top-k log-probs.

`backend.TeacherBackend` is what every backend provides (transformers: `hf_teacher`, vLLM:
`vllm_teacher`, an OpenAI-compatible API: `openai_teacher`); `specs.load_teacher` turns a
`--teacher` spec into one. `embedded` finds the default teacher (SmolLM2) on disk and
`topk_capture` / `sampled_targets` hold the per-step numerics of the local backends.
gen, curate (the LLM judge), train (GKD's live teacher) and eval use this package; it uses
none of them.
"""
