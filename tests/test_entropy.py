import numpy as np
import pytest

from mrczbench.movies import entropy


def test_constant_stack_has_zero_entropy():
    assert entropy.entropy_bits(np.zeros((2, 8, 8), np.int8)) == 0.0
    assert entropy.bound_ratio(np.full((2, 8, 8), 7, np.int8)) == 0.0


def test_uniform_bytes_cannot_be_compressed():
    stack = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert entropy.entropy_bits(stack) == pytest.approx(8.0)
    assert entropy.bound_ratio(stack) == pytest.approx(1.0)


def test_negative_int8_values_are_counted():
    stack = np.array([[[-1, -1, 1, 1]]], dtype=np.int8)
    assert entropy.entropy_bits(stack) == pytest.approx(1.0)


def test_float_values_use_bit_patterns():
    stack = np.array([[[0.5, 0.5, 1.5, 2.5]]], dtype=np.float32)
    assert entropy.entropy_bits(stack) == pytest.approx(1.5)
    assert entropy.bound_ratio(stack) == pytest.approx(1.5 / 32)


@pytest.mark.parametrize("dose", [0.1, 1.0, 4.0])
def test_poisson_sample_matches_closed_form(dose):
    stack = np.random.default_rng(3).poisson(dose, size=(4, 256, 256)).astype(np.int8)
    assert entropy.entropy_bits(stack) == pytest.approx(entropy.poisson_entropy_bits(dose), rel=0.01)
    assert entropy.poisson_bound_ratio(dose) == pytest.approx(entropy.poisson_entropy_bits(dose) / 8)


def test_poisson_closed_form_known_values():
    assert entropy.poisson_entropy_bits(0) == 0.0
    # H(Poisson(1)) = 1.8825 bits (tabulated)
    assert entropy.poisson_entropy_bits(1.0) == pytest.approx(1.8825, abs=1e-3)
