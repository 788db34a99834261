"""Evaluating models: multiple-choice accuracy per domain and agreement under permutation."""
