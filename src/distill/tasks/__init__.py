"""Task knowledge shared by gen, curate, train and eval: multiple-choice questions (MMLU)."""
