"""The dedup steps: `exact_dedup` (normalised prompt + response), and the two pairwise steps,
`near_dedup` (MinHash LSH on shingles) and `semantic_dedup` (sentence embeddings), which
share one pass (`pairwise`) and one keep policy (`keep_policy`).
"""

from distill.curate.dedup.exact import ExactDedup
from distill.curate.dedup.near import NearDedup
from distill.curate.dedup.pairwise import PairwiseDedup, SimilarPairs
from distill.curate.dedup.semantic import SemanticDedup

__all__ = ["ExactDedup", "NearDedup", "PairwiseDedup", "SemanticDedup", "SimilarPairs"]
