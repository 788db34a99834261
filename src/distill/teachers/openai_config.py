"""The API teacher's options (`--teacher-opt`) and target (`openai:MODEL@BASE_URL`), and
which token ids it can record (see `distill.teachers.openai_teacher`)."""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIConfig(BaseModel):
    """Options of the API teacher; pass them as `--teacher-opt KEY=VALUE`."""

    model_config = ConfigDict(extra="forbid")
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="per-request timeout")
    max_retries: int = Field(5, ge=0, description="the client's retries (429, 5xx, timeouts)")
    tokenizer: str | None = Field(None, description="local tokenizer dir: prompt ids, id mapping")
    token_ids: Literal["auto", "vllm", "tokenizer", "none"] = "auto"
    revision: str = Field("api", description="a label for the served weights (keys records)")


def parse_openai_target(target: str) -> tuple[str, str]:
    """`MODEL@BASE_URL` -> (model, base_url); a bare MODEL uses api.openai.com."""
    model, sep, base_url = target.partition("@http")
    if not model:
        raise ValueError(f"--teacher openai:{target}: expected openai:MODEL@BASE_URL")
    return model, ("http" + base_url).rstrip("/") if sep else DEFAULT_BASE_URL


def _is_vllm_server(base_url: str, timeout: float = 5.0) -> bool:
    import urllib.request

    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/version", timeout=timeout) as reply:
            return reply.status == 200 and "version" in json.loads(reply.read())
    except (OSError, ValueError):
        return False


def resolve_mode(config: OpenAIConfig, base_url: str) -> str:
    if config.token_ids != "auto":
        if config.token_ids == "tokenizer" and config.tokenizer is None:
            raise ValueError("token_ids=tokenizer needs --teacher-opt tokenizer=DIR")
        return config.token_ids
    host = urlparse(base_url).hostname or ""
    if not host.endswith("api.openai.com") and _is_vllm_server(base_url):
        return "vllm"
    return "tokenizer" if config.tokenizer is not None else "none"
