import torch

from distill.teachers.topk_capture import _top_p_filter, capture_topk, sample_next


def test_capture_topk_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    step = capture_topk(logits, 5)
    probs = torch.softmax(logits.double(), -1)
    expected_p, expected_ids = probs.topk(5, -1)
    assert torch.equal(step.ids, expected_ids)
    torch.testing.assert_close(step.logprobs.double(), expected_p.log(), atol=1e-5, rtol=0)
    torch.testing.assert_close(step.tail_mass.double(), 1 - expected_p.sum(-1), atol=1e-6, rtol=0)


def test_tail_is_precise_when_topk_covers_almost_everything() -> None:
    logits = torch.tensor([[30.0, 0.0, 0.0, 0.0]])
    step = capture_topk(logits, 1)
    expected = 3 * torch.exp(torch.tensor(-30.0, dtype=torch.float64))  # ~2.8e-13
    assert abs(step.tail_mass.item() - expected.item()) / expected.item() < 1e-3


def test_k_equal_to_vocab_has_zero_tail() -> None:
    step = capture_topk(torch.randn(2, 7), 7)
    assert torch.all(step.tail_mass == 0)


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = _top_p_filter(probs, 0.8)
    assert torch.equal(kept, torch.tensor([[0.5, 0.3, 0.0, 0.0]]))


def test_sampling_is_greedy_at_zero_and_reproducible_per_row_seed() -> None:
    logits = torch.randn(2, 100)
    assert torch.equal(sample_next(logits, 0.0, 1.0, []), logits.argmax(-1))

    def draw(seed: int) -> list[int]:
        gens = [torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)]
        return [sample_next(logits, 1.0, 0.9, gens).tolist() for _ in range(20)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
