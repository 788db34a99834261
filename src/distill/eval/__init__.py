"""Evaluating models: teacher, baseline and students compared on held-out MCQ (`mcq`)."""
