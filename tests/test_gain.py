"""Gain recovery (issue 11): estimation, resume, counts files and the gain-counts contender,
on real MRC files of the gain-normalised detector model (planted defect pixels)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mrczbench import mrcz
from mrczbench.cli import main
from mrczbench.errors import FormatError
from mrczbench.formats import get_format
from mrczbench.movies import gain, synthetic

from conftest import one_error_line

SHAPE = (48, 40)
DEFECTS = 12


@pytest.fixture(scope="module")
def model():
    return synthetic.make_model("gain-normalised", SHAPE, 1.45, seed=5, defects=DEFECTS).prepare()


@pytest.fixture(scope="module")
def frames(model):
    return synthetic.render_movie(model, 60)


def defect_mask(model) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask.flat[model.defects] = True
    return mask


def write_movies(folder, frames, per_movie=20) -> list[str]:
    paths = []
    for index in range(0, len(frames), per_movie):
        path = folder / f"movie{index // per_movie}.mrc"
        mrcz.write(path, frames[index:index + per_movie], codec=None)
        paths.append(str(path))
    return paths


def same_bits(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(np.asarray(a).view(np.uint32),
                                                 np.asarray(b).view(np.uint32))


# --- estimation ------------------------------------------------------------------------------

def test_estimate_recovers_the_gain_and_leaves_defects_unreliable(tmp_path, model, frames):
    result = gain.estimate(write_movies(tmp_path, frames), thresh=10)
    defects = defect_mask(model)
    reliable = result.reliable
    assert not reliable[defects].any()                  # planted defects: never reliable
    assert reliable[~defects].mean() > 0.95
    # reliable pixels carry the camera's gain exactly; the reference has 1.0 elsewhere
    assert np.array_equal(result.gain[reliable], model.gain[reliable])
    assert np.all(result.gain[~reliable] == 1.0)
    assert result.frames == 60 and len(result.movies_done) == 3
    stats = result.per_frame
    assert stats[0].changed == np.count_nonzero(frames[0] > 0)  # every first positive value
    assert stats[-1].unreliable == result.unreliable
    assert sum(s.mismatch for s in stats) == result.totals["mismatch"] > 0  # defect values
    assert result.totals["negative"] == 0


def test_frame_update_follows_relion(tmp_path):
    g = np.float32(1.1)
    est = gain.GainEstimate((1, 4), thresh=2)
    est.update(np.array([[2 * g, 0, -1, g]], np.float32))        # changed 2, negative 1
    s = est.update(np.array([[g, 0, g, np.float32(1.5)]], np.float32))
    assert (s.changed, s.mismatch, s.negative) == (2, 1, 0)       # 1.5 vs gain 1.1: mismatch
    assert est.consistent.tolist() == [[0, -1, 0, -1]]
    est.update(np.array([[3 * g, 0, 2 * g, g]], np.float32))
    est.update(np.array([[g, 0, g, g]], np.float32))
    assert est.consistent.tolist() == [[2, -1, 2, -1]]            # a mismatch blocks the pixel
    assert est.reliable.tolist() == [[True, False, True, False]]  # never positive: unreliable
    assert est.gain.tolist() == [[g, 1.0, g, 1.0]]


def test_interrupted_estimation_resumes_where_it_stopped(tmp_path, frames):
    paths = write_movies(tmp_path, frames)
    state = tmp_path / "gain_state.npz"
    seen = []

    def stop_in_second_movie(stats):
        seen.append(stats.movie)
        if stats.movie == "movie1.mrc" and stats.frame == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gain.estimate(paths, thresh=10, state=state, progress=stop_in_second_movie)
    saved = gain.GainEstimate.load(state, 10, 1e-4)
    assert len(saved.movies_done) == 1 and saved.frames == 20   # only the finished movie

    resumed_frames = []
    resumed = gain.estimate(paths, thresh=10, state=state,
                            progress=lambda s: resumed_frames.append(s.movie))
    assert "movie0.mrc" not in resumed_frames and len(resumed_frames) == 40
    fresh = gain.estimate(paths, thresh=10)
    assert np.array_equal(resumed.minimum, fresh.minimum)
    assert np.array_equal(resumed.consistent, fresh.consistent)
    assert resumed.frames == 60 and resumed.totals == fresh.totals
    with pytest.raises(gain.GainError, match="--thresh 10"):
        gain.estimate(paths, thresh=20, state=state)


# --- conversion through the command line -----------------------------------------------------

def estimate_cli(tmp_path, frames, capsys, thresh="10"):
    paths = write_movies(tmp_path, frames)
    listing = tmp_path / "movies.lst"
    listing.write_text("\n".join(p.rsplit("/", 1)[1] for p in paths) + "\n")
    out = tmp_path / "gain.mrc"
    assert main(["estimate-gain", str(listing), "--out", str(out), "--thresh", thresh]) == 0
    text = capsys.readouterr().out
    return paths, out, text


def test_file_round_trip_is_bit_exact_with_defects(tmp_path, model, frames, capsys):
    paths, gain_file, text = estimate_cli(tmp_path, frames, capsys)
    assert "movie2.mrc Frame 020/020 #Changed" in text and "[60/60 frames]" in text
    assert (tmp_path / "gain_reliability.mrc").is_file() and (tmp_path / "gain_state.npz").is_file()
    reliable = mrcz.read(tmp_path / "gain_reliability.mrc")[0] == 1
    assert not reliable[defect_mask(model)].any()

    packed = tmp_path / "movie1.mrcz"
    assert main(["compress", paths[1], str(packed), "--gain", str(gain_file)]) == 0
    assert "int8 counts" in capsys.readouterr().out
    back = tmp_path / "back.mrc"
    assert main(["decompress", str(packed), str(back), "--normalise"]) == 0
    restored = mrcz.read(back)
    assert restored.dtype == np.float32 and same_bits(restored, frames[20:40])
    assert "gain_counts" not in (mrcz.read_header(back).meta or {})

    counts_file = tmp_path / "counts.mrc"  # plain decompress: the integer counts
    assert main(["decompress", str(packed), str(counts_file)]) == 0
    counts = mrcz.read(counts_file)
    assert counts.dtype == np.int8
    expected = np.rint(frames[20:40] / model.gain)
    assert np.array_equal(counts[:, reliable], expected[:, reliable])
    assert not counts[:, ~reliable].any()

    capsys.readouterr()
    assert main(["info", str(packed), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["content"].startswith("integer counts with a gain reference")
    section = info["metadata"]["gain_counts"]
    assert section["lossless"] is True and section["unreliable_pixels"] == int((~reliable).sum())
    assert "gain" not in section and section["gain_bytes"] > 0
    stored = mrcz.read_header(packed).file_bytes
    assert stored < 0.5 * frames[20:40].nbytes


def test_a_value_off_the_gain_stops_with_movie_frame_and_pixel(tmp_path, model, frames, capsys):
    paths, gain_file, _ = estimate_cli(tmp_path, frames, capsys)
    reliable = mrcz.read(tmp_path / "gain_reliability.mrc")[0] == 1
    y, x = map(int, np.argwhere(reliable)[7])
    movie = frames[:20].copy()
    movie[2, y, x] = np.float32(model.gain[y, x] * 1.5)   # not a multiple of its gain
    bad = tmp_path / "bad.mrc"
    mrcz.write(bad, movie, codec=None)
    out = tmp_path / "bad.mrcz"
    assert main(["compress", str(bad), str(out), "--gain", str(gain_file)]) == 2
    err = capsys.readouterr().err
    assert f"bad.mrc frame 3/20 pixel (x={x}, y={y})" in err and "--ignore-error" in err
    assert not out.exists()

    assert main(["compress", str(bad), str(out), "--gain", str(gain_file), "--ignore-error"]) == 0
    assert "NOT LOSSLESS" in capsys.readouterr().out and out.exists()
    section = mrcz.read_header(out).meta["gain_counts"]
    assert section["lossless"] is False and section["changed_values"] == 1
    back = tmp_path / "back.mrc"
    assert main(["decompress", str(out), str(back), "--normalise"]) == 0
    restored = mrcz.read(back)
    differs = restored.view(np.uint32) != movie.view(np.uint32)
    assert np.argwhere(differs).tolist() == [[2, y, x]]
    assert restored[2, y, x] == np.float32(model.gain[y, x] * 2)  # rounded 1.5 -> 2 electrons


def test_integer_valued_movie_has_gain_one(tmp_path, capsys):
    values = np.random.default_rng(2).poisson(2.0, (60, 16, 16)).astype(np.float32)
    values[:, 0, 0] = np.where(np.arange(60) % 2, 0.5, 0.7)  # one defect-like pixel
    path = tmp_path / "ints.mrc"
    mrcz.write(path, values, codec=None)
    result = gain.estimate([path], thresh=5)
    assert np.all(result.gain == 1.0)
    assert result.reliable.sum() == 16 * 16 - 1 and not result.reliable[0, 0]
    gain.write_reference(tmp_path / "g.mrc", result)
    out = tmp_path / "ints.mrcz"
    assert main(["compress", str(path), str(out), "--gain", str(tmp_path / "g.mrc")]) == 0
    counts = mrcz.read(out)
    assert counts.dtype == np.int8
    assert np.array_equal(counts[:, 1:, :], values[:, 1:, :])
    assert main(["decompress", str(out), str(tmp_path / "b.mrc"), "--normalise"]) == 0
    assert same_bits(mrcz.read(tmp_path / "b.mrc"), values)


def test_bad_inputs_are_one_line_errors(tmp_path, frames, capsys):
    paths = write_movies(tmp_path, frames[:20])
    assert main(["compress", paths[0], str(tmp_path / "x.mrcz"), "--gain",
                 str(tmp_path / "none.mrc")]) == 2
    assert "no such gain reference" in capsys.readouterr().err
    result = gain.estimate(paths, thresh=5)
    gain.write_reference(tmp_path / "g.mrc", result)
    (tmp_path / "g_reliability.mrc").unlink()
    assert main(["compress", paths[0], str(tmp_path / "x.mrcz"), "--gain",
                 str(tmp_path / "g.mrc")]) == 2
    assert "reliability map" in capsys.readouterr().err
    assert main(["decompress", paths[0], str(tmp_path / "y.mrc"), "--normalise"]) == 2
    assert "holds no gain" in capsys.readouterr().err
    other = tmp_path / "small.mrc"
    mrcz.write(other, frames[:2, :10, :10], codec=None)
    with pytest.raises(gain.GainError, match="share one size"):
        gain.estimate([paths[0], other], thresh=5)


# --- the gain-counts contender ---------------------------------------------------------------

def test_contender_is_bit_exact_and_much_smaller(frames, model):
    stack = frames[:20]
    fmt = get_format("gain-counts", inner="mrcz", codec="zstd", level=1)
    blob = fmt.encode(stack)
    assert same_bits(fmt.decode(blob, stack.shape, stack.dtype), stack)
    direct = get_format("mrcz", codec="zstd", level=1).encode(stack)
    assert len(blob) < 0.6 * len(direct)
    assert fmt.label() == "counts mrcz zstd-1"


def test_contender_demotes_pixels_whose_values_are_not_exact_multiples():
    g = np.float32(1.1)
    stack = np.zeros((6, 2, 3), np.float32)
    stack[:, 0, 0] = [3 * g, 2 * g, 4 * g, 2 * g, 4 * g, 2 * g]  # gain estimate 2g, then 3g misfits
    stack[:, 1, 1] = [g, 2 * g, 0, g, 3 * g, g]
    fmt = get_format("gain-counts")
    blob = fmt.encode(stack)
    header = json.loads(blob[10:10 + int.from_bytes(blob[6:10], "little")])
    assert header["unreliable"] == 5                  # all but pixel (1, 1)
    assert same_bits(fmt.decode(blob, stack.shape, stack.dtype), stack)


def test_blockwise_update_equals_one_block(frames, monkeypatch):
    whole = gain.estimate_stack(frames[:30], SHAPE, thresh=3)
    monkeypatch.setattr(gain, "BLOCK_PIXELS", 97)     # blocks that split rows unevenly
    blocks = gain.estimate_stack(frames[:30], SHAPE, thresh=3)
    assert np.array_equal(whole.minimum, blocks.minimum)
    assert np.array_equal(whole.consistent, blocks.consistent)
    assert [(s.changed, s.mismatch, s.negative, s.unreliable) for s in whole.per_frame] == \
        [(s.changed, s.mismatch, s.negative, s.unreliable) for s in blocks.per_frame]


def test_cli_resumes_on_a_longer_list(tmp_path, frames, capsys):
    paths = write_movies(tmp_path, frames)
    out = tmp_path / "gain.mrc"
    assert main(["estimate-gain", *paths[:2], "--out", str(out), "--thresh", "10"]) == 0
    capsys.readouterr()
    assert main(["estimate-gain", *paths, "--out", str(out), "--thresh", "10"]) == 0
    text = capsys.readouterr().out
    assert "2 movie(s) done" in text and "[20/20 frames]" in text and "movie0.mrc Frame" not in text
    fresh = gain.estimate(paths, thresh=10)
    assert same_bits(mrcz.read(out)[0], fresh.gain)
    assert np.array_equal(mrcz.read(tmp_path / "gain_reliability.mrc")[0] == 1, fresh.reliable)
    assert main(["estimate-gain", *paths, "--out", str(out), "--thresh", "20"]) == 2
    assert "--thresh 10" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--thresh", "0"), ("--thresh", "x"),
                                           ("--tolerance", "-1"), ("--tolerance", "nan")])
def test_estimate_gain_options_are_checked_by_argtypes(tmp_path, capsys, option, value):
    one_error_line(capsys, ["estimate-gain", tmp_path / "m.mrc", "--out", tmp_path / "g.mrc",
                                  option, value], f"argument {option}: expected")
    assert not (tmp_path / "g.mrc").exists()


# --- the branch-free update against RELION's rule, pixel by pixel ----------------------------

def relion_rule(frames, thresh, tolerance=1e-4):
    """TIFFConverter::estimate written out one pixel at a time (float32 arithmetic): the
    oracle of the vectorised update."""
    ny, nx = frames.shape[1:]
    g = np.full(ny * nx, np.inf, np.float32)
    c = np.full(ny * nx, -1, np.int64)
    tol, lines = np.float32(tolerance), []
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for frame in frames:
            changed = mismatch = negative = 0
            for n, v in enumerate(frame.reshape(-1)):
                if v < 0:
                    negative += 1
                    c[n] = -1
                elif v > 0:
                    if v < g[n]:
                        g[n], c[n] = v, 0
                        changed += 1
                    elif abs(np.rint(v / g[n]) * g[n] - v) > tol:
                        mismatch += 1
                        c[n] = -1
                    elif c[n] >= 0:
                        c[n] += 1
            lines.append((changed, mismatch, negative, int(np.count_nonzero(c < thresh))))
    return g.reshape(ny, nx), c.reshape(ny, nx) >= thresh, c.reshape(ny, nx), lines


EDGE_VALUES = np.array([0.0, -0.0, -1.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, 1e-38,
                        3e38, 1.1, 2.2, 3.3000002, 0.55], np.float32)


@pytest.mark.parametrize("seed,dose", [(0, 0.3), (1, 1.45), (2, 4.0), (3, 12.0)])
def test_branch_free_update_is_relions_rule_bit_for_bit(seed, dose, monkeypatch):
    model = synthetic.make_model("gain-normalised", (12, 10), dose, seed=seed, defects=6).prepare()
    stack = synthetic.render_movie(model, 24).copy()
    rng = np.random.default_rng(seed)
    for frame in stack[::3]:   # edge values sprinkled over some pixels of every third frame
        where = rng.choice(frame.size, 12, replace=False)
        frame.reshape(-1)[where] = rng.choice(EDGE_VALUES, 12)
    monkeypatch.setattr(gain, "BLOCK_PIXELS", 37)      # several blocks, the last one short
    result = gain.estimate_stack(stack, stack.shape[1:], thresh=4)
    g, reliable, c, lines = relion_rule(stack, 4)
    assert same_bits(result.minimum, g)
    assert np.array_equal(result.consistent, c)
    assert np.array_equal(result.reliable, reliable)
    assert [(s.changed, s.mismatch, s.negative, s.unreliable) for s in result.per_frame] == lines


# --- conversion: one pass, blocks, non-finite values, the estimate's tolerance ---------------

def plain_counts(frame, g, reliable):
    """The conversion rule in plain numpy (one whole-frame expression per step)."""
    v = frame.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        k = np.rint(v / g)
        exact = ((k * g).view(np.uint32) == v.view(np.uint32)) & np.isfinite(k)
    keep = reliable & np.isfinite(k)
    counts = np.where(keep, np.clip(np.where(keep, k, 0), -2.0 ** 31, 2.0 ** 31 - 128), 0)
    return counts.astype(np.int32), v[~reliable], np.flatnonzero(reliable & ~exact)


@pytest.mark.parametrize("seed,dose", [(0, 0.3), (1, 1.45), (2, 6.0)])
def test_counter_matches_the_plain_rule(seed, dose, monkeypatch):
    model = synthetic.make_model("gain-normalised", (14, 11), dose, seed=seed, defects=5).prepare()
    stack = synthetic.render_movie(model, 12).copy()
    rng = np.random.default_rng(seed)
    for frame in stack[::2]:
        frame.reshape(-1)[rng.choice(frame.size, 10, replace=False)] = rng.choice(EDGE_VALUES, 10)
    est = gain.estimate_stack(stack[:8], stack.shape[1:], thresh=2)
    monkeypatch.setattr(gain, "BLOCK_PIXELS", 29)
    counter = gain.Counter(est.gain, est.reliable)
    for frame in stack:
        got = counter(frame)
        counts, values, bad = plain_counts(frame, est.gain, est.reliable)
        assert np.array_equal(got.counts, counts) and got.ulps is None
        assert same_bits(got.unreliable_values, values)
        assert got.mismatches.tolist() == bad.tolist()


def test_inf_and_nan_at_a_reliable_pixel_are_mismatches_not_silent_zeros():
    g = np.full((1, 3), np.float32(1.1))
    frame = np.array([[np.inf, np.nan, 2 * np.float32(1.1)]], np.float32)
    converted = gain.to_counts(frame, g, np.ones((1, 3), bool))
    assert converted.mismatches.tolist() == [0, 1]       # 0 x gain would not give them back
    assert converted.counts.tolist() == [[0, 0, 2]]


def test_convert_source_converts_each_frame_once_when_the_counts_fit(frames):
    est = gain.estimate_stack(frames, SHAPE, thresh=10)
    g, reliable = gain.demote_mismatches(frames, est.gain, est.reliable)
    opened, second = [], []

    def open_frames():
        opened.append(1)
        return iter(frames)

    outputs = []
    for keep_bytes in (None, 0):
        opened.clear()
        dtype, section, counts = gain.convert_source("m", open_frames, len(frames), g, reliable,
                                                     on_second_pass=lambda: second.append(1),
                                                     keep_bytes=keep_bytes)
        outputs.append((dtype, np.stack(list(counts))))
        assert len(opened) == (1 if keep_bytes is None else 2)
    assert len(second) == 1                      # only when the counts were not kept
    assert outputs[0][0] == outputs[1][0] == np.int8
    assert np.array_equal(outputs[0][1], outputs[1][1])
    assert np.array_equal(outputs[0][1][:, reliable], np.rint(frames / g)[:, reliable])


def float64_camera_movie(model, frames):
    """What a camera that multiplies in float64 writes: float32(float64(gain) x count), 1 ulp
    off float32(gain x count) for some counts."""
    counts = np.rint(synthetic.render_movie(model, frames) / model.gain)
    shift = np.random.default_rng(9).uniform(-0.4, 0.4, model.gain.shape)
    exact_gain = model.gain * (1 + shift * 2.0 ** -24)     # between float32 neighbours
    return (counts * exact_gain).astype(np.float32)


def test_values_within_the_tolerance_are_kept_exactly_in_ulps(model):
    movie = float64_camera_movie(model, 30)
    est = gain.estimate_stack(movie, SHAPE, thresh=10)   # the estimate accepts the 1-ulp values
    g, reliable = est.gain, est.reliable
    strict = [gain.to_counts(f, g, reliable).mismatches.size for f in movie]
    assert reliable.mean() > 0.9 and sum(strict) > 0   # bit-exact conversion refuses them
    counter = gain.Counter(g, reliable, tolerance=est.tolerance)
    for frame in movie:
        converted = counter(frame)
        assert converted.mismatches.size == 0
        back = gain.apply(converted.counts, g, reliable, converted.unreliable_values,
                          converted.ulps)
        assert same_bits(back, frame)


def test_threads_give_the_same_estimate(frames, monkeypatch):
    monkeypatch.setattr(gain, "BLOCK_PIXELS", 101)
    one = gain.estimate_stack(frames[:25], SHAPE, thresh=3)
    three = gain.estimate_stack(frames[:25], SHAPE, thresh=3, threads=3)
    assert same_bits(one.minimum, three.minimum)
    assert np.array_equal(one.consistent, three.consistent)
    assert [vars(s) for s in one.per_frame] == [vars(s) for s in three.per_frame]


def test_contender_with_a_shared_gain_stores_only_counts_and_side_channel(frames):
    stack = frames[:20]
    shared = get_format("gain-counts", inner="mrcz", codec="zstd", level=1, gain="shared")
    embedded = get_format("gain-counts", inner="mrcz", codec="zstd", level=1)
    blob, again = shared.encode(stack), shared.encode(stack)   # the gain estimated once
    assert blob == again and shared.label() == "counts mrcz zstd-1 shared gain"
    assert same_bits(shared.decode(blob, stack.shape, stack.dtype), stack)
    gain_bytes = len(gain.pack_array(np.ones(SHAPE, np.float32)))
    assert len(blob) < len(embedded.encode(stack)) - gain_bytes // 2
    from mrczbench.formats import counts as counts_module
    counts_module._SESSION_GAINS.clear()
    counts_module._SESSION_KEYS.clear()
    with pytest.raises(FormatError, match="not known in this session"):
        shared.decode(blob, stack.shape, stack.dtype)


def test_too_few_frames_says_how_many_a_reliable_estimate_needs(frames):
    few = gain.estimate_stack(frames[:8], SHAPE, thresh=50)
    assert few.unreliable == few.minimum.size
    text = gain.too_few_frames(few)
    assert text.startswith(f"{few.minimum.size} of {few.minimum.size} pixels are unreliable "
                           "after 8 frames")
    needed = int(text.split("needs about ")[1].split()[0])
    positive = np.mean(frames > 0)            # ~0.7 at 1.45 e/px/frame: ~80 frames for 50
    assert 51 / positive <= needed <= 51 / positive * 1.6
    assert gain.too_few_frames(gain.estimate_stack(frames, SHAPE, thresh=10)) is None
    assert gain.frames_needed(1.0, 5) == 6 and gain.frames_needed(0.0, 5) is None


# --- the command line: tolerance, too few frames, one ratio, a shared gain reference ----------

def test_compress_accepts_what_the_estimate_accepted_and_keeps_it_exact(tmp_path, model, capsys):
    movie = float64_camera_movie(model, 40)
    path = tmp_path / "f64.mrc"
    mrcz.write(path, movie, codec=None)
    gain_file = tmp_path / "gain.mrc"
    assert main(["estimate-gain", str(path), "--out", str(gain_file), "--thresh", "10"]) == 0
    out = tmp_path / "f64.mrcz"
    assert main(["compress", str(path), str(out), "--gain", str(gain_file)]) == 0
    assert "within the estimate's tolerance kept exactly" in capsys.readouterr().out
    section = mrcz.read_header(out).meta["gain_counts"]
    assert section["lossless"] is True and section["version"] == 2 and section["ulps_pixels"] > 0
    back = tmp_path / "back.mrc"
    assert main(["decompress", str(out), str(back), "--normalise"]) == 0
    assert same_bits(mrcz.read(back), movie)


def test_estimate_gain_on_too_few_frames_says_how_many_it_needs(tmp_path, frames, capsys):
    path = tmp_path / "short.mrc"
    mrcz.write(path, frames[:8], codec=None)
    assert main(["estimate-gain", str(path), "--out", str(tmp_path / "g.mrc")]) == 0
    err = capsys.readouterr().err
    assert f"{SHAPE[0] * SHAPE[1]} of {SHAPE[0] * SHAPE[1]} pixels are unreliable after 8 frames" in err
    assert "--thresh 50 needs about" in err and "frames for 99 % of the pixels" in err
    assert len(err.strip().splitlines()) == 1


def test_one_ratio_for_a_counts_file(tmp_path, frames, capsys):
    paths, gain_file, _ = estimate_cli(tmp_path, frames, capsys)
    packed = tmp_path / "m.mrcz"
    assert main(["compress", paths[0], str(packed), "--gain", str(gain_file)]) == 0
    said = float(capsys.readouterr().out.split("ratio ")[1].split()[0])
    assert main(["info", str(packed), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["raw_bytes"] == 20 * SHAPE[0] * SHAPE[1] * 4          # the float32 movie
    assert round(info["ratio"], 3) == said == round(info["stored_bytes"] / info["raw_bytes"], 3)
    assert main(["decompress", str(packed), str(tmp_path / "n.mrc"), "--normalise"]) == 0
    back = float(capsys.readouterr().out.split("ratio ")[1].split()[0])
    assert 1.0 <= back < 1.2      # the float32 movie written out: about its own size


def test_a_gain_reference_is_named_not_stored_and_checked_on_read(tmp_path, frames, capsys):
    paths, gain_file, _ = estimate_cli(tmp_path, frames, capsys)
    embedded, named = tmp_path / "embedded.mrcz", tmp_path / "sub" / "named.mrcz"
    named.parent.mkdir()
    assert main(["compress", paths[1], str(embedded), "--gain", str(gain_file)]) == 0
    assert main(["compress", paths[1], str(named), "--gain-ref", str(gain_file)]) == 0
    assert "naming the gain reference" in capsys.readouterr().out
    section = mrcz.read_header(named).meta["gain_counts"]
    assert "gain" not in section and "reliable" not in section
    assert section["gain_ref"]["file"] == "gain.mrc"
    assert section["gain_ref"]["sha256"] == gain.file_sha256(gain_file)
    gain_bytes = len(mrcz.read_header(embedded).meta["gain_counts"]["gain"])
    assert named.stat().st_size <= embedded.stat().st_size - gain_bytes + 200   # ~100 B record
    # found in the folder above the movie, checked, bit-exact
    back = tmp_path / "back.mrc"
    assert main(["decompress", str(named), str(back), "--normalise"]) == 0
    assert same_bits(mrcz.read(back), frames[20:40])
    capsys.readouterr()
    assert main(["info", str(named), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gain_reference"].endswith("gain.mrc (SHA-256 matches)")
    # moved away from its gain: one line naming the gain file; --gain-ref finds it
    away = tmp_path.parent / f"{tmp_path.name}-away"
    away.mkdir()
    moved = away / "named.mrcz"
    named.rename(moved)
    capsys.readouterr()
    assert main(["decompress", str(moved), str(away / "b.mrc"), "--normalise"]) == 2
    err = capsys.readouterr().err.strip()
    assert "its gain reference gain.mrc (SHA-256" in err and "--gain-ref" in err
    assert len(err.splitlines()) == 1 and not (away / "b.mrc").exists()
    assert main(["info", str(moved)]) == 2
    assert main(["decompress", str(moved), str(away / "b.mrc"), "--normalise",
                 "--gain-ref", str(gain_file)]) == 0
    # a different gain file of that name: refused, naming it
    other = away / "gain.mrc"
    result = gain.estimate(paths[:1], thresh=5)
    gain.write_reference(other, result)
    assert main(["decompress", str(moved), str(away / "c.mrc"), "--normalise"]) == 2
    err = capsys.readouterr().err
    assert f"{other}: SHA-256" in err and "a different gain reference" in err
    assert not (away / "c.mrc").exists()
