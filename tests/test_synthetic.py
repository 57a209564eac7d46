"""Synthetic movies: exact Poisson counts, reproducibility, and each detector model's
defining property."""
import hashlib

import numpy as np
import pytest
from scipy import stats

from mrczbench.movies import synthetic
from mrczbench.errors import DatasetError


# ---------------------------------------------------------------- exactness

def pooled_chi_square(values: np.ndarray, dose: float) -> tuple[float, int]:
    """p-value of a chi-square test against Poisson(dose), tail bins pooled so every
    expected count is at least 5, and the number of bins used."""
    n = values.size
    observed = np.bincount(values.ravel().astype(np.int64))
    expected = n * stats.poisson.pmf(np.arange(observed.size), dose)
    last = int(np.nonzero(n * stats.poisson.sf(np.arange(200), dose) >= 5)[0].max())  # P(X > last) * n >= 5
    obs = np.append(observed[:last + 1], observed[last + 1:].sum())
    exp = np.append(np.pad(expected, (0, max(0, last + 1 - expected.size)))[:last + 1],
                    n * stats.poisson.sf(last, dose))
    # pool the low side too if needed (dose 4: P(0) * n is large, so nothing to pool)
    assert exp.min() >= 5
    chi2 = ((obs - exp) ** 2 / exp).sum()
    return stats.chi2.sf(chi2, obs.size - 1), obs.size


@pytest.mark.parametrize("dose", [0.1, 1.0, 4.0])
def test_counts_are_poisson_chi_square_1e7_samples(dose):
    values = synthetic.poisson_movie(1, (2500, 4000), dose, seed=11)  # 10^7 samples
    p_value, bins = pooled_chi_square(values, dose)
    assert bins >= 5  # the tail bins (1e-5 .. 1e-6 probability) are really tested
    assert p_value > 1e-3, f"dose {dose}: chi-square p = {p_value:.2e}"
    assert values.mean() == pytest.approx(dose, rel=3e-3)


@pytest.mark.parametrize("dose", [0.1, 1.0, 4.0, 30.0])
def test_table_probabilities_match_the_pmf_far_below_1_in_65536(dose):
    # The 64-bit thresholds imply each value's probability exactly; compare with the pmf,
    # including tail values far rarer than 2^-16 (a 16-bit table would lose these).
    thresholds, _ = synthetic._joint_thresholds(dose, 1)
    edges = np.concatenate([[0], thresholds.astype(object)])
    implied = np.array([float(int(b) - int(a)) for a, b in zip(edges[:-1], edges[1:])]) / 2.0 ** 64
    pmf = stats.poisson.pmf(np.arange(implied.size), dose)
    big = pmf > 2.0 ** -40
    np.testing.assert_allclose(implied[big], pmf[big], rtol=1e-12, atol=2.0 ** -62)  # 64-bit resolution
    assert (pmf[big] < 2.0 ** -16).any()  # the check reaches below 16-bit resolution
    assert stats.poisson.sf(implied.size - 1, dose) < 2.0 ** -63  # nothing representable is cut off


def test_joint_cells_give_independent_counts():
    # at dose 0.3 one table cell holds 4 counts: neighbours must be uncorrelated
    values = synthetic.poisson_movie(1, (1000, 1000), 0.3, seed=2).ravel().astype(np.float64)
    assert synthetic.PoissonSampler(0.3).per_cell == 4
    for lag in (1, 2, 3, 4):
        r = np.corrcoef(values[:-lag], values[lag:])[0, 1]
        assert abs(r) < 5e-3


# ---------------------------------------------------------------- reproducibility

def test_golden_bytes():
    # Pins the generator: the same on every machine and numpy version. If this changes,
    # bump GENERATOR_VERSION (cache keys) and update the digests.
    digest = hashlib.sha256(synthetic.poisson_movie(3, (64, 96), 1.0, seed=7).tobytes()).hexdigest()
    assert digest == "8438dbc831436a3aef7b04d730332cea184230189407da71abfaf9f0dd64b441"
    digest = hashlib.sha256(synthetic.poisson_movie(2, (33, 47), 0.1, seed=7).tobytes()).hexdigest()
    assert digest == "9611ab6b4e12138be2b7c10637c62ad79fa6b7faa8a50da68675398a4174a398"
    assert synthetic.GENERATOR_VERSION == 1


def test_same_bytes_whatever_the_threads_and_streaming():
    one = synthetic.poisson_movie(6, (300, 700), 0.5, seed=5, threads=1)
    many = synthetic.poisson_movie(6, (300, 700), 0.5, seed=5, threads=4)
    streamed = np.stack(list(synthetic.iter_poisson_frames(6, (300, 700), 0.5, seed=5, threads=3)))
    assert one.tobytes() == many.tobytes() == streamed.tobytes()


def test_frames_have_independent_streams():
    short = synthetic.poisson_movie(2, (100, 100), 1.0, seed=3)
    long = synthetic.poisson_movie(5, (100, 100), 1.0, seed=3)
    assert np.array_equal(short, long[:2])  # frame i does not depend on the frame count
    assert not np.array_equal(long[0], long[1])
    other = synthetic.poisson_movie(2, (100, 100), 1.0, seed=4)
    assert not np.array_equal(short, other)


def test_dtypes_hold_the_same_counts():
    base = synthetic.poisson_movie(2, (37, 53), 2.0, seed=1, dtype="int8")  # odd sizes
    for dtype in ("uint8", "int16", "uint16", "float32"):
        other = synthetic.poisson_movie(2, (37, 53), 2.0, seed=1, dtype=dtype)
        assert other.dtype == np.dtype(dtype)
        assert np.array_equal(other, base)


def test_large_frames_use_several_chunks_the_same_way():
    # a frame larger than CHUNK_PIXELS spans two streams; threads must not matter
    shape = (2100, 2100)
    assert shape[0] * shape[1] > synthetic.CHUNK_PIXELS
    a = synthetic.poisson_movie(1, shape, 0.1, seed=9, threads=1)
    b = synthetic.poisson_movie(1, shape, 0.1, seed=9, threads=2)
    assert np.array_equal(a, b)


def test_dose_zero_and_errors():
    assert not synthetic.poisson_movie(2, (8, 8), 0.0).any()
    with pytest.raises(DatasetError, match="dose"):
        synthetic.poisson_movie(1, (8, 8), -1)
    with pytest.raises(DatasetError, match="shape"):
        synthetic.poisson_movie(1, (8,), 1)
    with pytest.raises(DatasetError, match="frames"):
        synthetic.poisson_movie(0, (8, 8), 1)
    with pytest.raises(DatasetError, match="dtype.*int8"):
        synthetic.poisson_movie(1, (8, 8), 1, dtype="complex64")
    with pytest.raises(DatasetError, match="kind.*counting"):
        synthetic.make_model("k9", (8, 8), 1)
    with pytest.raises(DatasetError, match="unknown option 'grouping'.*valid options"):
        synthetic.make_model("counting", (8, 8), 1, grouping=3)
    with pytest.raises(DatasetError, match="int8"):
        synthetic.poisson_movie(1, (8, 8), 90.0, dtype="int8")  # counts could pass 127


# ---------------------------------------------------------------- detector models

def test_counting_small_integers():
    m = synthetic.movie("counting", 3, (200, 200), 1.0, seed=1, dtype="uint8")
    assert m.dtype == np.uint8 and m.max() < 15
    assert synthetic.make_model("poisson", (8, 8), 1).kind == "counting"  # the suites' alias


def test_gain_normalised_defects_are_not_multiples_of_their_gain():
    model = synthetic.make_model("gain-normalised", (256, 256), 1.45, seed=3).prepare()
    frames = synthetic.render_movie(model, 3)
    counts = synthetic.movie("counting", 3, (256, 256), 1.45, seed=3, dtype="uint8")
    assert frames.dtype == np.float32
    gain = model.gain
    assert 1.0 <= gain.min() and gain.max() <= 1.3
    assert len(model.defects) == round(256 * 256 * 1.5e-4)
    defect = np.zeros(gain.shape, bool)
    defect.flat[model.defects] = True
    # RELION's test: |g * round(v / g) - v| > 1e-4 is a mismatch
    mismatch = np.abs(gain * np.rint(frames / gain) - frames) > 1e-4
    assert not mismatch[:, ~defect].any()
    assert np.array_equal(frames[:, ~defect], (counts * gain)[:, ~defect])  # counts x gain, exactly
    nonzero_defects = frames[:, defect] > 0
    assert nonzero_defects.sum() > 10
    assert mismatch[:, defect][nonzero_defects].mean() > 0.9
    # a defect is the mean of its four neighbours
    flat = frames[0].ravel()
    d = model.defects[0]
    assert flat[d] == pytest.approx((flat[d - 1] + flat[d + 1] + flat[d - 256] + flat[d + 256]) / 4, rel=1e-6)


def test_falcon_blobs_sum_to_100():
    for blob in synthetic.Falcon.BLOBS:
        assert blob.sum() == 100 and blob.shape == (3, 3)
    model = synthetic.make_model("falcon", (128, 160), 0.37, seed=2).prepare()
    frames = synthetic.render_movie(model, 4)
    assert frames.dtype == np.int16
    electrons = np.zeros(4, np.int64)
    for i in range(4):
        counts = np.empty((128, 160), np.uint8)
        for variant in range(4):
            model._fill_counts(counts.reshape(-1), model.dose / 4, synthetic.STREAM_FALCON, i, variant)
            electrons[i] += counts.sum()
    assert np.array_equal(frames.sum(axis=(1, 2)), 100 * electrons)
    assert frames.mean() == pytest.approx(37, rel=0.05)
    # one isolated electron is one blob
    sparse = synthetic.movie("falcon", 1, (64, 64), 0.0005, seed=1)[0]
    if sparse.any():
        y, x = np.unravel_index(np.argmax(sparse), sparse.shape)
        assert sparse[max(0, y - 1):y + 2, max(0, x - 1):x + 2].sum() in (100, 200)


def test_super_resolution_values_fit_4_bits():
    m = synthetic.movie("super-resolution", 2, (256, 256), 6.0, seed=1)  # high dose forces the clip
    assert m.dtype == np.uint8 and m.max() == 15
    low = synthetic.movie("super-resolution", 2, (512, 512), 0.25, seed=1)
    assert low.max() <= 15 and low.mean() == pytest.approx(0.25, rel=0.02)


@pytest.mark.parametrize("upsampling", [1, 2])
def test_eer_fractions_group_sparse_events(upsampling):
    grouping = 12
    model = synthetic.make_model("eer", (128, 128), 0.44 / upsampling ** 2, seed=4,
                                 grouping=grouping, upsampling=upsampling).prepare()
    frames = synthetic.render_movie(model, 6)
    assert frames.dtype == np.uint8
    assert frames.mean() == pytest.approx(0.44 / upsampling ** 2, rel=0.05)
    physical = frames.reshape(6, 128 // upsampling, upsampling, 128 // upsampling, upsampling).sum(axis=(2, 4))
    assert physical.max() <= grouping  # at most one event per physical pixel per internal frame
    pixels, sub_x, sub_y = model.internal_frame_events(np.random.default_rng(0))
    assert np.all(np.diff(pixels) > 0)  # sorted and unique
    assert sub_x.max() <= 3 and sub_y.max() <= 3
    assert pixels.size < 0.1 * model.physical_shape[0] * model.physical_shape[1]  # sparse


def test_eer_rejects_dense_events():
    with pytest.raises(DatasetError, match="grouping"):
        synthetic.make_model("eer", (64, 64), 30.0, grouping=10)


def test_specimen_modulation_follows_the_dose_map():
    model = synthetic.make_model("counting", (128, 128), 2.0, seed=1, dtype="uint8", modulation=0.5,
                                 modulation_scale=64.0, particles=3, particle_radius=10.0).prepare()
    frames = synthetic.render_movie(model, 40)
    relative = model.dose_map.relative
    assert relative.mean() == pytest.approx(1.0, abs=0.01)
    assert relative.max() - relative.min() > 0.5
    per_pixel = frames.mean(axis=0)
    assert np.corrcoef(per_pixel.ravel(), relative.ravel())[0, 1] > 0.8
    assert frames.mean() == pytest.approx(2.0, rel=0.02)
    # every model takes the map
    for kind in ("gain-normalised", "falcon", "super-resolution", "eer"):
        out = synthetic.movie(kind, 1, (64, 64), 0.3, seed=1, modulation=0.3, modulation_scale=32.0)
        assert out.shape == (1, 64, 64)
