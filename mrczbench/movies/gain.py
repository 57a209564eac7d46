"""Gain recovery: integer electron counts from gain-normalised float32 movies.

Gatan K2/K3 movies saved "gain normalised" hold float32 values count x gain (per pixel).
RELION's `relion_convert_to_tiff --estimate_gain` (src/tiff_converter.cpp) recovers the gain
and this module follows it, pixel for pixel, vectorised over a frame:

- the gain estimate of a pixel is the smallest positive value seen (a one-electron event is
  frequent at counting-mode doses); a smaller value replaces it (#Changed) and restarts the
  pixel's consistency count at 0;
- a positive value v with |g * round(v / g) - v| > tolerance is a mismatch (#Mismatch): the
  pixel is blocked (count -1) until its gain changes again, as in RELION (defect pixels that
  the camera software interpolated stay unreliable);
- a negative value is counted (#Negative) and blocks the pixel the same way; zeros say nothing;
- a pixel is reliable after `thresh` consistent positive values; unreliable pixels get gain
  1.0 in the gain reference (RELION's gain-reference.mrc) and keep their raw float values.

Conversion is stricter than RELION's tolerance: a value at a reliable pixel becomes the
integer count k only if float32(gain * k) is bit-identical to it (the camera's own float32
multiplication), so `normalise` gives the movie back bit-exactly. Anything else is a mismatch:
an error naming movie, frame and pixel, or (ignore_error) rounded and counted.

The estimation state (running minimum, consistency counts, movies done) is saved atomically
after each movie, so an interrupted estimation resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from mrczbench.atomic import atomic_output
from mrczbench.errors import MrczbenchError

STATE_VERSION = 1
META_KEY = "gain_counts"      # section of the MRCZ metadata of a counts file
COUNT_DTYPES = ("int8", "uint8", "int16")
BLOCK_PIXELS = 1 << 17    # 512 KiB of float32 per block: the temporaries stay in cache


class GainError(MrczbenchError):
    """Gain estimation or conversion cannot go on (mismatch, wrong size, bad state file)."""


@dataclasses.dataclass
class FrameStats:
    """RELION's per-frame line: pixels whose gain changed, mismatching and negative values,
    and pixels still unreliable after this frame (of `pixels`)."""
    movie: str
    frame: int            # 1-based, as RELION prints it
    frames: int
    changed: int
    mismatch: int
    negative: int
    unreliable: int
    pixels: int
    positive: int = 0     # pixels with a positive value in this frame (how often a pixel speaks)

    def line(self) -> str:
        return (f"{self.movie} Frame {self.frame:03d}/{self.frames:03d} #Changed {self.changed:10d}"
                f" #Mismatch {self.mismatch:10d} #Negative {self.negative:10d}"
                f" #Unreliable {self.unreliable:10d} / {self.pixels}")


class GainEstimate:
    """Running estimate: `minimum` (smallest positive value, inf before one is seen) and
    `consistent` (RELION's reliability counter: -1 blocked, else consistent observations)."""

    def __init__(self, shape, thresh: int = 50, tolerance: float = 1e-4):
        # 0 (not RELION's): reliable from the first positive value, for a gain estimated from
        # the very frames it converts (the gain-counts contender demotes what misfits)
        if not isinstance(thresh, int) or isinstance(thresh, bool) or thresh < 0:
            raise GainError(f"thresh: expected an integer >= 0, got {thresh!r}")
        if not tolerance >= 0:
            raise GainError(f"tolerance: expected a number >= 0, got {tolerance!r}")
        self.shape = tuple(int(v) for v in shape)
        self.thresh = thresh
        self.tolerance = float(tolerance)
        self.minimum = np.full(self.shape, np.inf, np.float32)
        self.consistent = np.full(self.shape, -1, np.int32)
        self.movies_done: list[str] = []
        self.frames = 0
        self.per_frame: list[FrameStats] = []
        self.totals = {"changed": 0, "mismatch": 0, "negative": 0}
        self._scratch: list[_Scratch] = []

    # --- results ---------------------------------------------------------------------
    @property
    def reliable(self) -> np.ndarray:
        # a pixel never seen positive has consistent == -1, so its infinite minimum is excluded
        return self.consistent >= self.thresh

    @property
    def gain(self) -> np.ndarray:
        """The gain reference: the estimate at reliable pixels, 1.0 elsewhere (RELION's)."""
        return np.where(self.reliable, self.minimum, np.float32(1.0)).astype(np.float32)

    @property
    def unreliable(self) -> int:
        return int(self.minimum.size - np.count_nonzero(self.consistent >= self.thresh))

    # --- one frame -------------------------------------------------------------------
    def update(self, frame: np.ndarray, movie: str = "<array>", index: int = 0,
               frames: int = 0, threads: int = 1) -> FrameStats:
        """RELION's rule over one frame, in cache-sized blocks (a dozen whole-frame passes
        would each go through main memory) shared out to `threads` threads (numpy releases
        the GIL; the blocks are independent, so the result does not depend on the count)."""
        v = np.asarray(frame)
        if v.shape != self.shape:
            raise GainError(f"{movie}: frame {index + 1} is {v.shape[1]}x{v.shape[0]}, the "
                            f"gain is {self.shape[1]}x{self.shape[0]}: movies must share one size")
        v = np.ascontiguousarray(v, dtype=np.float32).reshape(-1)
        g, c = self.minimum.reshape(-1), self.consistent.reshape(-1)
        starts = range(0, v.size, BLOCK_PIXELS)
        workers = max(1, min(int(threads), len(starts)))
        pixels = min(BLOCK_PIXELS, v.size)
        if len(self._scratch) < workers or self._scratch[0].off.size != pixels:
            self._scratch = [_Scratch(pixels) for _ in range(workers)]
        tolerance, thresh = np.float32(self.tolerance), self.thresh

        def run(worker: int) -> np.ndarray:
            totals = np.zeros(5, np.int64)
            for start in starts[worker::workers]:
                part = slice(start, start + BLOCK_PIXELS)
                totals += _update_block(v[part], g[part], c[part], tolerance, thresh,
                                        self._scratch[worker])
            return totals

        if workers == 1:
            totals = run(0)
        else:
            with ThreadPoolExecutor(workers) as pool:
                totals = sum(pool.map(run, range(workers)))
        changed, mismatch, negative, unreliable, positive = (int(t) for t in totals)
        stats = FrameStats(movie, index + 1, frames, changed, mismatch, negative, unreliable,
                           int(v.size), positive)
        self.frames += 1
        for key in self.totals:
            self.totals[key] += getattr(stats, key)
        self.per_frame.append(stats)
        return stats

    # --- state file (resume) ---------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, version=STATE_VERSION, minimum=self.minimum,
                            consistent=self.consistent, thresh=self.thresh,
                            tolerance=self.tolerance, frames=self.frames,
                            movies_done=np.array(self.movies_done, dtype=str),
                            totals=np.array([self.totals[k] for k in ("changed", "mismatch", "negative")]))
        with atomic_output(path) as out:
            out.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, thresh: int, tolerance: float) -> "GainEstimate":
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != STATE_VERSION:
                    raise GainError(f"{path}: state version {int(data['version'])}, "
                                    f"this mrczbench writes {STATE_VERSION}")
                saved = (int(data["thresh"]), float(data["tolerance"]))
                if saved != (thresh, float(tolerance)):
                    raise GainError(f"{path}: saved with --thresh {saved[0]} --tolerance "
                                    f"{saved[1]:g}; resume with the same values or delete it "
                                    "to start again")
                state = cls(data["minimum"].shape, thresh, tolerance)
                state.minimum[...] = data["minimum"]
                state.consistent[...] = data["consistent"]
                state.frames = int(data["frames"])
                state.movies_done = [str(name) for name in data["movies_done"]]
                state.totals = dict(zip(("changed", "mismatch", "negative"),
                                        (int(v) for v in data["totals"])))
        except GainError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise GainError(f"{path}: not a gain-estimation state file ({exc}); delete it to "
                            "start again") from None
        return state


class _Scratch:
    """Block-sized work arrays reused by every block of every frame (no allocation per block)."""

    def __init__(self, pixels: int):
        self.off = np.empty(pixels, np.float32)
        self.bits = np.empty(pixels, np.uint32)
        (self.positive, self.negative, self.above, self.lower, self.mismatch,
         self.good) = (np.empty(pixels, bool) for _ in range(6))


_ONE = np.uint32(1)


def _update_block(v, g, c, tolerance, thresh: int,
                  scratch: _Scratch) -> tuple[int, int, int, int, int]:
    """RELION's per-pixel rule on one block, in place on g (gain) and c (consistency);
    returns (changed, mismatch, negative, unreliable after it, positive). Branch-free: masked copies
    (copyto where=, np.where) cost 20-40x an arithmetic pass on random masks, so every update
    is arithmetic on whole blocks, into reused scratch arrays."""
    n = v.size
    off, v_bits = scratch.off[:n], scratch.bits[:n]
    positive, negative, above, lower, mismatch, good = (
        a[:n] for a in (scratch.positive, scratch.negative, scratch.above, scratch.lower,
                        scratch.mismatch, scratch.good))
    g_bits = g.view(np.uint32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        np.greater(v, 0, out=positive)
        np.less(v, 0, out=negative)
        np.divide(v, g, out=off)                  # with the gain before this frame
        np.rint(off, out=off)
        np.multiply(off, g, out=off)              # float32, as RELION's gain * ival
        np.subtract(off, v, out=off)
        np.abs(off, out=off)
        np.greater(off, tolerance, out=above)
    # (bits - 1) as uint32 orders positive floats (and +inf) as the floats, and puts +0,
    # every negative value and NaN above +inf: "positive and smaller than the gain" is then
    # an unsigned comparison, and the new gain the unsigned minimum (g is never 0 or NaN)
    np.subtract(v.view(np.uint32), _ONE, out=v_bits)
    np.subtract(g_bits, _ONE, out=g_bits)
    np.less(v_bits, g_bits, out=lower)
    np.minimum(g_bits, v_bits, out=g_bits)
    np.add(g_bits, _ONE, out=g_bits)
    # settled = positive & ~lower; mismatch = settled & above; good = settled & ~above & c >= 0
    np.greater(positive, lower, out=mismatch)     # settled (a > b on bools is a & ~b)
    np.greater_equal(c, 0, out=good)
    np.logical_and(good, mismatch, out=good)
    np.logical_and(mismatch, above, out=mismatch)
    np.greater(good, above, out=good)
    positives = int(np.count_nonzero(positive))
    # c: 0 where the gain changed, -1 where negative or mismatching, else c + good; as
    # c * keep + (good - blocked), since good pixels are kept and blocked ones are not
    blocked, keep = above, positive               # reuse: their values are no longer needed
    np.logical_or(negative, mismatch, out=blocked)
    np.logical_or(blocked, lower, out=keep)
    np.logical_not(keep, out=keep)
    delta = good.view(np.int8)
    np.subtract(delta, blocked.view(np.int8), out=delta)   # -1, 0 or 1
    np.multiply(c, keep, out=c, casting="unsafe")
    np.add(c, delta, out=c, casting="unsafe")
    np.less(c, thresh, out=blocked)               # unreliable, counted while in cache
    return (int(np.count_nonzero(lower)), int(np.count_nonzero(mismatch)),
            int(np.count_nonzero(negative)), int(np.count_nonzero(blocked)), positives)


def frames_needed(positive_fraction: float, thresh: int, share: float = 0.99) -> int | None:
    """Frames after which `share` of the pixels have seen more than `thresh` positive values
    (the first sets the gain, each later consistent one counts), when a pixel is positive in
    `positive_fraction` of the frames: the smallest N with P(Binomial(N, p) > thresh) >= share.
    A lower bound: a smaller value seen later restarts a pixel's count. None: p is 0."""
    p = float(positive_fraction)
    if not p > 0:
        return None
    if p >= 1:
        return thresh + 1
    log_p, log_q = math.log(p), math.log1p(-p)
    n = thresh + 1
    while n < 10 ** 7:
        # P(B <= thresh), summed in logs (n can be thousands)
        below = sum(math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                             + k * log_p + (n - k) * log_q) for k in range(thresh + 1))
        if 1 - below >= share:
            return n
        n = max(n + 1, int(n * 1.02))   # 2 % steps: an estimate, not an exact count
    return None


def too_few_frames(result: GainEstimate) -> str | None:
    """A one-line warning when most pixels are still unreliable: how many frames a reliable
    estimate needs at the dose these frames show; None when most pixels are reliable."""
    pixels = result.minimum.size
    if not result.frames or result.unreliable <= pixels // 2:
        return None
    seen = [s for s in result.per_frame if s.pixels]
    fraction = sum(s.positive for s in seen) / max(1, sum(s.pixels for s in seen))
    needed = frames_needed(fraction, result.thresh)
    if needed is None:
        return (f"{result.unreliable} of {pixels} pixels are unreliable: no pixel saw a positive "
                f"value in {result.frames} frames")
    return (f"{result.unreliable} of {pixels} pixels are unreliable after {result.frames} frames: "
            f"at this dose a pixel is positive in {fraction:.1%} of the frames, so --thresh "
            f"{result.thresh} needs about {needed} frames for 99 % of the pixels; estimate over "
            "more movies (the same command resumes) or lower --thresh")


def movie_key(movie) -> str:
    return str(Path(movie.path).resolve())


def estimate(movies, thresh: int = 50, tolerance: float = 1e-4,
             state: str | os.PathLike | None = None,
             progress: Callable[[FrameStats], None] | None = None,
             threads: int | None = None) -> GainEstimate:
    """Estimate the gain over `movies` (paths, .lst/.star lists, or Movie objects from
    readers.open_movies), one frame at a time on `threads` threads (default: the usable
    cores). With `state` (a .npz path), resume from it when it exists (skipping movies
    already done) and save it after every movie."""
    from mrczbench.movies.readers import Movie, open_movies

    if isinstance(movies, (str, os.PathLike)):
        movies = [movies]
    movies = list(movies)
    if not all(isinstance(m, Movie) for m in movies):
        movies = open_movies(movies)
    result = None
    if state is not None and Path(state).exists():
        result = GainEstimate.load(state, thresh, tolerance)
    for movie in movies:
        if result is None:
            result = GainEstimate(movie.shape[1:], thresh, tolerance)
        if movie_key(movie) in result.movies_done:
            continue
        if movie.dtype.kind != "f":
            print(f"mrczbench: warning: {movie.path} holds {movie.dtype} (not float): its "
                  "values are counts already", file=sys.stderr, flush=True)
        for index, frame in enumerate(movie.iter_frames()):
            stats = result.update(frame, movie.name, index, movie.shape[0],
                                  threads=threads or _usable_cores())
            if progress is not None:
                progress(stats)
        result.movies_done.append(movie_key(movie))
        if state is not None:
            result.save(state)
    return result


# --- conversion ---------------------------------------------------------------------------

@dataclasses.dataclass
class Converted:
    """One frame as counts (int32; 0 at unreliable pixels), the raw values of the unreliable
    pixels, where reliable pixels were off the gain grid (flat indices), and `ulps`: at
    reliable pixels whose value is within the tolerance of float32(gain x count) but not
    bit-identical to it, the difference of the value's bits from the product's (int32, 0
    elsewhere; None when every value is bit-exact)."""
    counts: np.ndarray
    unreliable_values: np.ndarray
    mismatches: np.ndarray
    ulps: np.ndarray | None = None


_INT32_SAFE = (np.float32(-2.0 ** 31), np.float32(2.0 ** 31 - 128))  # in both float32 and int32


class Counter:
    """`to_counts` for one gain: the unreliable pixels are found once, the frame is done in
    cache-sized blocks with reused scratch arrays, and only arithmetic passes (no masked copy).

    tolerance 0: a count is kept only where float32(gain x count) is bit-identical to the
    value. tolerance > 0 (the estimate's): a value within it of the product is accepted too,
    its exact bits kept in `ulps` (a camera that multiplies in float64 lands 1 ulp off the
    float32 product, and the estimate, which uses this tolerance, called the pixel reliable)."""

    def __init__(self, gain: np.ndarray, reliable: np.ndarray, tolerance: float = 0.0):
        self.shape = tuple(gain.shape)
        self.gain = np.ascontiguousarray(gain, np.float32).reshape(-1)
        self.reliable = np.ascontiguousarray(reliable, bool).reshape(-1)
        self.unreliable_at = np.flatnonzero(~self.reliable)
        self.tolerance = np.float32(tolerance)
        pixels = min(BLOCK_PIXELS, self.gain.size)
        self._k, self._back = np.empty(pixels, np.float32), np.empty(pixels, np.float32)
        self._exact, self._finite = np.empty(pixels, bool), np.empty(pixels, bool)

    def __call__(self, frame: np.ndarray) -> Converted:
        v = np.ascontiguousarray(frame, dtype=np.float32)
        if v.shape != self.shape:
            raise GainError(f"frame is {v.shape}, the gain {self.shape}")
        v = v.reshape(-1)
        counts = np.empty(v.size, np.int32)
        bad, ulps = [], None
        for start in range(0, v.size, BLOCK_PIXELS):
            part = slice(start, start + BLOCK_PIXELS)
            off, near = self._block(v[part], self.gain[part], self.reliable[part], counts[part])
            if off.size:
                bad.append(off + start)
            if near is not None:
                if ulps is None:
                    ulps = np.zeros(v.size, np.int32)
                ulps[part] = near
        mismatches = np.concatenate(bad) if bad else np.zeros(0, np.intp)
        return Converted(counts.reshape(self.shape), np.take(v, self.unreliable_at), mismatches,
                         None if ulps is None else ulps.reshape(self.shape))

    def _block(self, v, g, reliable, counts):
        """Counts of one block into `counts`; returns (flat indices off the grid, ulps of
        this block or None)."""
        n = v.size
        k, back, exact, finite = self._k[:n], self._back[:n], self._exact[:n], self._finite[:n]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            np.divide(v, g, out=k)
            np.rint(k, out=k)
            np.multiply(k, g, out=back)           # the camera's float32 product
            np.equal(back.view(np.uint32), v.view(np.uint32), out=exact)
            np.isfinite(k, out=finite)            # inf and NaN have no count
            np.logical_and(exact, finite, out=exact)
            np.greater(reliable, exact, out=exact)  # reliable & not exact: off the grid
            near = None
            if self.tolerance > 0 and exact.any():
                within = np.abs(back - v) <= self.tolerance   # the estimate's test, negated
                within &= exact & finite
                if within.any():
                    exact &= ~within
                    near = (v.view(np.uint32) - back.view(np.uint32)).view(np.int32) * within
            off = np.flatnonzero(exact)
            np.clip(k, *_INT32_SAFE, out=k)
            np.logical_and(finite, reliable, out=finite)
            np.copyto(counts, k, casting="unsafe")  # garbage where not finite: zeroed next
        np.multiply(counts, finite, out=counts, casting="unsafe")
        return off, near


def to_counts(frame: np.ndarray, gain: np.ndarray, reliable: np.ndarray,
              tolerance: float = 0.0) -> Converted:
    """Counts k = round(v / gain) at reliable pixels, kept where float32(gain * k) is
    bit-identical to v (or, with a tolerance, within it: see Counter); every other reliable
    pixel is listed in `mismatches` (its count is the rounded one; 0 for inf and NaN)."""
    return Counter(gain, reliable, tolerance)(frame)


def normalise(counts: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """counts x gain in float32: the same IEEE product the camera software computed."""
    return np.multiply(counts.astype(np.float32), gain, dtype=np.float32)


def apply(counts: np.ndarray, gain: np.ndarray, reliable: np.ndarray,
          unreliable_values: np.ndarray, ulps: np.ndarray | None = None) -> np.ndarray:
    """The float32 frame back: counts x gain (moved by `ulps` where the camera's value was
    not the float32 product), with the raw values at unreliable pixels."""
    out = normalise(counts, gain)
    if ulps is not None:
        bits = out.view(np.uint32)
        np.add(bits, ulps.view(np.uint32), out=bits)    # wraps as the difference did
    out[~reliable] = unreliable_values
    return out


def counts_dtype(low: int, high: int) -> np.dtype:
    """The smallest of int8, uint8, int16 that holds [low, high]."""
    for name in COUNT_DTYPES:
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return np.dtype(name)
    raise GainError(f"counts {low}..{high} do not fit in int16; the gain is wrong for this movie "
                    "(values far above the smallest one seen)")


def mismatch_error(movie: str, frame: int, frames: int, flat: int, shape, value, gain,
                   tolerance: float = 0.0) -> GainError:
    y, x = divmod(int(flat), shape[1])
    with np.errstate(invalid="ignore", over="ignore"):
        k = np.rint(np.float32(value) / np.float32(gain))
    nearest = (f" (nearest {int(k)} x gain = {float(np.float32(k) * np.float32(gain)):.7g})"
               if np.isfinite(k) else "")
    within = f" or within the estimate's tolerance {tolerance:g} of one" if tolerance > 0 else ""
    return GainError(
        f"{movie} frame {frame}/{frames} pixel (x={x}, y={y}): value {float(value):.7g} is not an "
        f"exact multiple of the reliable gain {float(gain):.7g}{within}{nearest}; estimate the "
        "gain over more frames, or pass --ignore-error to round such values (the output is then "
        "not lossless)")


# --- blobs for the gain, reliability map and side channel ---------------------------------

def pack_array(array: np.ndarray) -> bytes:
    """Bitshuffle + zstd-1 (blosc2) bytes of a numeric array; chunks stay under 2 GB."""
    import blosc2

    data = np.ascontiguousarray(array)
    if data.nbytes == 0:
        return b""
    return blosc2.compress2(data, typesize=data.dtype.itemsize, codec=blosc2.Codec.ZSTD,
                            clevel=1, filters=[blosc2.Filter.BITSHUFFLE])


def unpack_array(blob: bytes, dtype, count: int) -> np.ndarray:
    import blosc2

    if count == 0:
        return np.zeros(0, dtype)
    array = np.frombuffer(blosc2.decompress2(blob), dtype=dtype)
    if array.size != count:
        raise GainError(f"corrupt gain data: expected {count} values, found {array.size}")
    return array


def demote_mismatches(frames: Iterable[np.ndarray], gain: np.ndarray,
                      reliable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gain, reliable) with every pixel that has a value not bit-exact as gain x count made
    unreliable (gain 1.0): for a gain estimated from the same frames, the conversion is then
    lossless whatever the threshold (a gain that was first a 3-electron value and later a
    2-electron one leaves the earlier 3-electron value off the grid)."""
    reliable = reliable.copy()
    for frame in frames:
        reliable.reshape(-1)[to_counts(frame, gain, reliable).mismatches] = False
    return np.where(reliable, gain, np.float32(1.0)).astype(np.float32), reliable


def estimate_stack(stack: Iterable[np.ndarray], shape, thresh: int,
                   tolerance: float = 1e-4, threads: int = 1) -> GainEstimate:
    """Estimate over in-memory frames (the gain-counts contender)."""
    result = GainEstimate(shape, thresh, tolerance)
    for index, frame in enumerate(stack):
        result.update(frame, "<stack>", index, threads=threads)
    return result


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- files: gain reference, counts MRCZ files ----------------------------------------------

def reliability_path(gain_path: str | os.PathLike) -> Path:
    """The reliability map beside a gain reference: gain.mrc -> gain_reliability.mrc."""
    path = Path(gain_path)
    return path.with_name(f"{path.stem}_reliability{path.suffix or '.mrc'}")


def state_path(gain_path: str | os.PathLike) -> Path:
    """The resumable estimation state beside a gain reference: gain.mrc -> gain_state.npz."""
    path = Path(gain_path)
    return path.with_name(f"{path.stem}_state.npz")


def write_reference(path: str | os.PathLike, result: GainEstimate) -> tuple[Path, Path]:
    """Write the gain reference (float32 MRC, 1.0 at unreliable pixels, RELION's convention)
    and the reliability map (uint8 MRC, 1 = reliable); each appears atomically."""
    from mrczbench import mrcz

    meta = {"gain_estimate": {"thresh": result.thresh, "tolerance": result.tolerance,
                              "frames": result.frames, "movies": len(result.movies_done),
                              "unreliable_pixels": result.unreliable}}
    mrcz.write(path, result.gain[None], codec=None, meta=meta)
    reliability = reliability_path(path)
    mrcz.write(reliability, result.reliable.astype(np.uint8)[None], codec=None, meta=meta)
    return Path(path), reliability


def read_reference(path: str | os.PathLike, shape=None) -> tuple[np.ndarray, np.ndarray]:
    """(gain float32, reliable bool) from a gain reference and its reliability map."""
    from mrczbench import mrcz

    reliability = reliability_path(path)
    if not Path(path).is_file():
        raise GainError(f"{path}: no such gain reference (write one with mrczbench estimate-gain)")
    if not reliability.is_file():
        raise GainError(f"{path}: its reliability map {reliability} is missing (estimate-gain "
                        "writes both; without it unreliable pixels cannot be told apart)")
    gain = mrcz.read(path)
    reliable = mrcz.read(reliability)
    if gain.shape[0] != 1 or gain.dtype != np.float32 or reliable.shape != gain.shape:
        raise GainError(f"{path}: expected one float32 frame with a matching reliability map, "
                        f"got {gain.dtype} {gain.shape} and {reliable.dtype} {reliable.shape}")
    gain, reliable = gain[0], reliable[0] != 0
    if shape is not None and tuple(shape) != gain.shape:
        raise GainError(f"{path}: gain is {gain.shape[1]}x{gain.shape[0]}, the movie "
                        f"{shape[1]}x{shape[0]}")
    if not np.all(np.isfinite(gain[reliable])) or np.any(gain[reliable] <= 0):
        raise GainError(f"{path}: reliable pixels need a finite positive gain")
    return gain, reliable


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def reference_record(path: str | os.PathLike) -> dict:
    """What a counts file stores instead of the gain (compress --gain-ref): the gain
    reference's file name and the SHA-256 of it and of its reliability map."""
    return {"file": Path(path).name, "sha256": file_sha256(path),
            "reliability_sha256": file_sha256(reliability_path(path))}


def find_reference(movie, record: dict, given=None) -> Path:
    """The gain reference a counts file names: `given` (a path from the user), else the file
    of that name beside the movie or in a folder above it (RELION keeps one
    gain-reference.mrc at the top of a run); its SHA-256 (and its reliability map's) must be
    those recorded. Missing or different: a GainError naming it."""
    try:
        name, want = str(record["file"]), str(record["sha256"])
        want_reliability = str(record["reliability_sha256"])
    except (KeyError, TypeError) as exc:
        raise GainError(f"{movie}: corrupt gain reference record in the metadata ({exc})") from None
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise GainError(f"{path}: no such gain reference (the one {movie} was written with "
                            f"is {name}, SHA-256 {want[:16]})")
    else:
        folder = Path(movie).resolve().parent
        path = next((f / name for f in (folder, *folder.parents) if (f / name).is_file()), None)
        if path is None:
            raise GainError(f"{movie}: its gain reference {name} (SHA-256 {want[:16]}) is not "
                            "beside it or in a folder above; pass --gain-ref PATH")
    reliability = reliability_path(path)
    if not reliability.is_file():
        raise GainError(f"{path}: its reliability map {reliability} is missing (estimate-gain "
                        "writes both)")
    for checked, expected in ((path, want), (reliability, want_reliability)):
        got = file_sha256(checked)
        if got != expected:
            raise GainError(f"{checked}: SHA-256 {got[:16]} is not {expected[:16]}, the one "
                            f"{movie} was written with: a different gain reference")
    return path


def reference_tolerance(path: str | os.PathLike) -> float:
    """The tolerance the gain reference was estimated with (estimate-gain records it): a
    value within it of gain x count was consistent for the estimate, so conversion accepts it
    too, keeping its exact bits (Counter's ulps). 0 (bit-exact only) for a gain file that
    does not say."""
    from mrczbench import mrcz

    try:
        value = (mrcz.read_header(path).meta or {}).get("gain_estimate", {}).get("tolerance", 0.0)
    except AttributeError:
        return 0.0
    return float(value) if isinstance(value, (int, float)) and value >= 0 else 0.0


def convert_source(name: str, open_frames: Callable[[], Iterator[np.ndarray]], count: int,
                   gain: np.ndarray, reliable: np.ndarray, ignore_error: bool = False,
                   tolerance: float = 0.0, on_second_pass: Callable[[], None] | None = None,
                   keep_bytes: float | None = None, reference: dict | None = None):
    """Check a movie against the gain (nothing written yet: the metadata, which precedes the
    pixels, needs every frame's side channel) and return (counts dtype, metadata section,
    counts frames iterator). Each frame is converted once: its counts are kept in memory
    (the narrowest integer type, a quarter of the float32 input or less) when `count` frames
    of them fit in `keep_bytes` (default: half the memory available); otherwise the
    iterator reads and converts the movie again (`on_second_pass` is called first).
    `reference` (reference_record of the gain file): the section names the gain reference
    instead of holding the gain and reliability map."""
    from mrczbench import mrcz

    counter = Counter(gain, reliable, tolerance)
    if keep_bytes is None:
        keep_bytes = mrcz.read_limit()[0] / 2
    keep = count * gain.size <= keep_bytes
    low, high, changed, side, ulps, kept = 0, 0, 0, [], [], []
    for index, frame in enumerate(open_frames()):
        converted = counter(frame)
        if converted.mismatches.size:
            if not ignore_error:
                flat = converted.mismatches[0]
                raise mismatch_error(name, index + 1, count, flat, gain.shape,
                                     np.asarray(frame).reshape(-1)[flat], gain.reshape(-1)[flat],
                                     tolerance)
            changed += int(converted.mismatches.size)
        frame_low, frame_high = (int(converted.counts.min(initial=0)),
                                 int(converted.counts.max(initial=0)))
        low, high = min(low, frame_low), max(high, frame_high)
        side.append(pack_array(converted.unreliable_values))
        ulps.append(_pack_ulps(converted.ulps))
        if keep:
            kept.append(converted.counts.astype(counts_dtype(frame_low, frame_high)))
    dtype = counts_dtype(low, high)
    section = {
        "version": 2 if any(ulps) else 1,   # 1: readers that predate `ulps` stay right
        "content": "integer counts; x gain (mrczbench decompress --normalise) gives the movie",
        "lossless": changed == 0,
        "changed_values": changed,
        "counts_dtype": dtype.name,
        "shape": list(gain.shape),
        "unreliable_pixels": int(gain.size - np.count_nonzero(reliable)),
    }
    if reference is None:   # key order kept: the metadata bytes are those of earlier versions
        section["gain"] = pack_array(gain)
        section["reliable"] = pack_array(np.packbits(reliable.reshape(-1)))
    else:
        section["gain_ref"] = dict(reference)
    section["unreliable_values"] = side
    if any(ulps):
        section["ulps"] = ulps
        section["ulps_pixels"] = sum(int(np.count_nonzero(u)) for u in ulps if u)

    def counts_frames():
        if keep:
            while kept:
                yield kept.pop(0).astype(dtype, copy=False)
            return
        if on_second_pass is not None:
            on_second_pass()
        for frame in open_frames():
            yield counter(frame).counts.astype(dtype)

    return dtype, section, counts_frames()


def relion_pages(name: str, open_frames: Callable[[], Iterator[np.ndarray]], count: int,
                 gain: np.ndarray, reliable: np.ndarray) -> tuple[np.dtype, Iterator[np.ndarray]]:
    """A gain-normalised movie as relion_convert_to_tiff --gain writes its TIFF pages: counts
    at reliable pixels and the raw values at unreliable ones (where RELION's
    gain-reference.mrc holds 1.0), so page x gain reference is the movie. RELION writes these
    pages as float32 (unnormalise<float>); they are written as integers (uint8/uint16, or
    int8/int16 with negative values) when every value is exactly an integer (unreliable
    pixels that were 0 or whole numbers), else float32 as RELION. The first pass checks the
    movie (a value off its reliable gain is an error, as in RELION); returns (page dtype,
    pages iterator for the second pass)."""
    low, high, integral = 0, 0, True
    for index, frame in enumerate(open_frames()):
        converted = to_counts(frame, gain, reliable)
        if converted.mismatches.size:
            flat = converted.mismatches[0]
            raise mismatch_error(name, index + 1, count, flat, gain.shape,
                                 np.asarray(frame).reshape(-1)[flat], gain.reshape(-1)[flat])
        raw = converted.unreliable_values
        if integral and raw.size:
            whole = np.rint(raw)
            # -0.0, NaN, inf and fractions do not survive a round trip through an integer
            integral = bool(np.all(whole.astype(np.float32).view(np.uint32) == raw.view(np.uint32))
                            and np.all(np.abs(whole) < 2 ** 31))
        for values in (converted.counts[reliable], raw.astype(np.int64) if integral and raw.size else raw[:0]):
            if values.size:
                low, high = min(low, int(values.min())), max(high, int(values.max()))
    dtype = np.dtype(np.float32)
    if integral:
        for candidate in (("uint8", "uint16") if low >= 0 else ("int8", "int16")):
            if np.iinfo(candidate).min <= low and high <= np.iinfo(candidate).max:
                dtype = np.dtype(candidate)
                break

    def pages():
        for frame in open_frames():
            page = to_counts(frame, gain, reliable).counts.astype(dtype)
            page[~reliable] = np.asarray(frame, np.float32)[~reliable].astype(dtype)
            yield page

    return dtype, pages()


def _pack_ulps(ulps: np.ndarray | None):
    """A frame's ulps as {dtype, blosc2 blob} in the narrowest integer type; None for none."""
    if ulps is None:
        return None
    low, high = int(ulps.min()), int(ulps.max())
    dtype = next(np.dtype(t) for t in ("int8", "int16", "int32")
                 if np.iinfo(t).min <= low and high <= np.iinfo(t).max)
    return {"dtype": dtype.name, "data": pack_array(ulps.astype(dtype))}


SECTION_VERSIONS = (1, 2)   # 2: per-frame `ulps` present


def unpack_section(section: dict, path="<file>", gain_ref=None
                   ) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """(gain, reliable, per-frame side-channel blobs) of a counts file's metadata section; a
    section that names its gain reference (`gain_ref`) finds and checks it (find_reference;
    `gain_ref` = a path given by the user)."""
    try:
        if section.get("version", 1) not in SECTION_VERSIONS:
            raise GainError(f"{path}: gain section version {section.get('version')!r}; this "
                            f"mrczbench reads versions {', '.join(map(str, SECTION_VERSIONS))}")
        shape = tuple(section["shape"])
        if "gain_ref" in section:
            found = find_reference(path, section["gain_ref"], gain_ref)
            gain, reliable = read_reference(found, shape)
            return gain, reliable, list(section["unreliable_values"])
        pixels = int(np.prod(shape))
        gain = unpack_array(section["gain"], np.float32, pixels).reshape(shape)
        bits = unpack_array(section["reliable"], np.uint8, (pixels + 7) // 8)
        reliable = np.unpackbits(bits)[:pixels].astype(bool).reshape(shape)
        return gain, reliable, list(section["unreliable_values"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, GainError):
            raise
        raise GainError(f"{path}: corrupt gain section in the metadata ({exc})") from None


def _unpack_ulps(entry, shape, path) -> np.ndarray | None:
    if not entry:
        return None
    try:
        dtype = np.dtype(entry["dtype"])
        if dtype.name not in ("int8", "int16", "int32"):
            raise ValueError(f"ulps dtype {dtype}")
        values = unpack_array(entry["data"], dtype, int(np.prod(shape)))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, GainError):
            raise
        raise GainError(f"{path}: corrupt gain section in the metadata ({exc})") from None
    return values.astype(np.int32).reshape(shape)


def normalised_frames(path, frames: Iterator[np.ndarray], section: dict,
                      gain_ref=None) -> Iterator[np.ndarray]:
    """The float32 movie back from a counts file's frames and its gain section (its gain
    reference found beside it or at `gain_ref` when the section names one)."""
    gain, reliable, side = unpack_section(section, path, gain_ref)
    ulps = list(section.get("ulps") or [])
    unreliable = int(gain.size - np.count_nonzero(reliable))
    for index, counts in enumerate(frames):
        if index >= len(side):
            raise GainError(f"{path}: frame {index + 1} has no unreliable-pixel values")
        moved = _unpack_ulps(ulps[index], gain.shape, path) if index < len(ulps) else None
        yield apply(counts, gain, reliable, unpack_array(side[index], np.float32, unreliable),
                    moved)


def describe_section(meta: dict | None) -> dict | None:
    """Metadata for `info`: the gain section summarised (no binary blobs)."""
    if not meta or META_KEY not in meta:
        return meta
    section = meta[META_KEY]
    summary = {key: value for key, value in section.items()
               if key not in ("gain", "reliable", "unreliable_values", "ulps")}
    summary["gain_bytes"] = len(section.get("gain", b""))
    summary["unreliable_values_bytes"] = sum(len(b) for b in section.get("unreliable_values", []))
    return {**meta, META_KEY: summary}
