"""Teachers: generate responses and capture each token's top-k teacher log-probs."""
