import pytest
import torch

from model.agent.delay_pattern import build_delay_pattern, delay_valid_mask, revert_delay_pattern


def test_docstring_example():
    codes = torch.tensor([[1, 2, 3], [4, 5, 6]])
    tokens, valid = build_delay_pattern(codes, special_token=9)
    assert tokens.tolist() == [[1, 2, 3, 9], [9, 4, 5, 6]]
    assert valid.tolist() == [[True, True, True, False], [False, True, True, True]]
    assert torch.equal(revert_delay_pattern(tokens), codes)


@pytest.mark.parametrize("shape", [(9, 40), (3, 1), (2, 4, 7), (2, 3, 1, 5)])
def test_build_then_revert_is_exact(shape):
    codes = torch.randint(0, 1024, shape, generator=torch.Generator().manual_seed(sum(shape)))
    tokens, valid = build_delay_pattern(codes, special_token=1024)
    k, f = shape[-2:]
    assert tokens.shape == (*shape[:-1], f + k - 1)
    assert torch.equal(revert_delay_pattern(tokens), codes)
    # Exactly the K * F positions of the codes are valid; the rest is the special token, not a code.
    assert valid.sum() == codes.numel()
    assert (tokens[~valid] == 1024).all()
    assert (tokens[valid] < 1024).all()


def test_invalid_triangle_is_masked():
    valid = delay_valid_mask(num_codebooks=4, steps=6, num_frames=3)
    for k in range(4):
        for s in range(6):
            assert bool(valid[k, s]) == (k <= s < k + 3), (k, s)
    # When sampling, the stream has no end: only the leading triangle is invalid.
    assert delay_valid_mask(3, 5).tolist() == [[True] * 5, [False] + [True] * 4, [False, False] + [True] * 3]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="special token"):
        build_delay_pattern(torch.tensor([[1, 9]]), special_token=9)
    with pytest.raises(ValueError, match=r"\(\.\.\., K, F\)"):
        build_delay_pattern(torch.tensor([1, 2]), special_token=9)
    with pytest.raises(ValueError, match="no complete frame"):
        revert_delay_pattern(torch.zeros(5, 3, dtype=torch.long))
