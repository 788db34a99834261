"""Chat rows: OpenAI-style `messages` with the teacher's response as the last, assistant turn.

A record's `messages` holds the prompt as it was sent (system and user turns); the answer is
`response_text`. A chat row appends it as `{"role": "assistant", "content": response_text}`,
which is the shape TRL's `SFTTrainer` (a `messages` column), axolotl (`type: chat_template`,
`field_messages: messages`) and LLaMA-Factory (`formatting: sharegpt` with `messages`, role
and content tags) read. Beside it, `record_id` (the row, for `distill audit`) and
`prompt_id` (to group a prompt's samples, e.g. for a split by prompt); trainers ignore
columns they don't use.

- TRL: `SFTTrainer(train_dataset=load_dataset("json", data_files="sft.jsonl")["train"])`;
- axolotl: `datasets: [{path: sft.jsonl, type: chat_template, field_messages: messages}]`;
- LLaMA-Factory `dataset_info.json`: `{"sft": {"file_name": "sft.jsonl", "formatting":
  "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role",
  "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
  "system_tag": "system"}}}`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.schemas.arrow import MESSAGE_TYPE

CHAT_SCHEMA = pa.schema(
    [
        pa.field("messages", pa.list_(MESSAGE_TYPE)),
        pa.field("record_id", pa.string()),
        pa.field("prompt_id", pa.string()),
    ]
)


def with_assistant_turn(messages: pa.ListArray, responses: pa.Array) -> pa.ListArray:
    """Each row's messages followed by one assistant message holding its response."""
    n_rows = len(messages)
    turns = pc.list_value_length(messages).fill_null(0).to_numpy(zero_copy_only=False)
    prompt_values = messages.flatten()
    assistant = pa.StructArray.from_arrays(
        [pa.array(["assistant"] * n_rows, pa.string()), responses.cast(pa.string())],
        fields=list(MESSAGE_TYPE),
    )
    values = pa.concat_arrays([prompt_values, assistant])
    # Row r's prompt turns move up by r (the r assistant turns before them); its own
    # assistant turn lands right after them.
    row_of_turn = np.repeat(np.arange(n_rows), turns)
    order = np.empty(len(values), np.int64)
    order[np.arange(len(prompt_values)) + row_of_turn] = np.arange(len(prompt_values))
    ends = np.cumsum(turns) + np.arange(n_rows)
    order[ends] = len(prompt_values) + np.arange(n_rows)
    offsets = np.concatenate([[0], ends + 1]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


def chat_rows(batch: pa.Table) -> pa.Table:
    """`batch` (records, either codec) as chat rows (`CHAT_SCHEMA`)."""
    messages = batch.column("messages").combine_chunks()
    responses = batch.column("response_text").combine_chunks()
    columns = {
        "messages": with_assistant_turn(messages, responses),
        "record_id": batch.column("record_id").combine_chunks(),
        "prompt_id": batch.column("prompt_id").combine_chunks(),
    }
    return pa.Table.from_pydict(columns, schema=CHAT_SCHEMA)
