"""Synthetic cryo-EM movies: detector models built on the exact Poisson sampler
(`mrczbench.movies.poisson`, whose names this module re-exports for its users).

Detector models (`MODELS`; each class docstring says what it imitates):
counting, gain-normalised, falcon, super-resolution, eer. Every model accepts an optional
specimen modulation (a smooth, static dose map: ice thickness and particles).
"""
from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from mrczbench.errors import DatasetError
from mrczbench.movies.poisson import (  # noqa: F401  (the sampler is part of this module's API)
    BLOCK_CELLS, CHUNK_PIXELS, GENERATOR_VERSION, MAX_DOSE, STREAM_COUNTS, STREAM_DEFECTS,
    STREAM_DOSE_MAP, STREAM_EER, STREAM_FALCON, STREAM_GAIN, STREAM_MODULATED, TABLE_BITS,
    PoissonSampler, _joint_thresholds, bit_generator, default_threads)


# --------------------------------------------------------------------------------------
# Specimen modulation: a smooth, static dose map


class DoseMap:
    """A smooth relative dose map (mean 1), quantised to steps of 1/128 so that each
    level is sampled exactly with its own table.

    Imitates what the specimen does to the dose a pixel receives: ice thickness varies
    slowly (a few random low-frequency waves of relative amplitude `modulation` and
    wavelength about `modulation_scale` px), and `particles` round particles of radius
    `particle_radius` px scatter `particle_contrast` of the beam away."""

    STEP = 1.0 / 128

    def __init__(self, shape: tuple[int, int], seed: int, modulation: float = 0.0,
                 modulation_scale: float = 512.0, particles: int = 0,
                 particle_radius: float = 40.0, particle_contrast: float = 0.1):
        ny, nx = shape
        rng = np.random.Generator(bit_generator(seed, STREAM_DOSE_MAP))
        y = np.arange(ny, dtype=np.float64)
        x = np.arange(nx, dtype=np.float64)
        field = np.zeros(shape, np.float64)
        for _ in range(8):
            angle = rng.uniform(0, 2 * np.pi)
            wavelength = modulation_scale * rng.uniform(1.0, 3.0)
            ky, kx = np.sin(angle) / wavelength, np.cos(angle) / wavelength
            phase = rng.uniform(0, 2 * np.pi)
            # cos(a + b) = cos a cos b - sin a sin b: two outer products, no 2-D trig
            a, b = 2 * np.pi * ky * y + phase, 2 * np.pi * kx * x
            field += np.outer(np.cos(a), np.cos(b)) - np.outer(np.sin(a), np.sin(b))
        peak = np.abs(field).max()
        relative = 1.0 + modulation * field / (peak if peak > 0 else 1.0)
        for _ in range(int(particles)):
            cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
            r = int(math.ceil(3 * particle_radius))
            y0, y1 = max(0, int(cy) - r), min(ny, int(cy) + r + 1)
            x0, x1 = max(0, int(cx) - r), min(nx, int(cx) + r + 1)
            yy = (np.arange(y0, y1) - cy)[:, None]
            xx = (np.arange(x0, x1) - cx)[None, :]
            relative[y0:y1, x0:x1] -= particle_contrast * np.exp(-(yy ** 2 + xx ** 2) / (2 * particle_radius ** 2))
        np.clip(relative, 0.0, None, out=relative)
        relative /= relative.mean()  # the spec's dose stays the mean dose
        self.levels = np.rint(relative / self.STEP).astype(np.int32)   # relative = level * STEP
        flat = self.levels.ravel()
        self.order = np.argsort(flat, kind="stable").astype(np.intp)
        values, counts = np.unique(flat, return_counts=True)
        self.segments = list(zip(values.tolist(), np.cumsum(counts).tolist()))

    @property
    def relative(self) -> np.ndarray:
        return self.levels * self.STEP

    def fill(self, out_flat: np.ndarray, dose: float, seed: int, *key: int) -> None:
        """Counts with Poisson(dose * relative[pixel]) into `out_flat`, one stream per level."""
        buffer = np.empty(out_flat.size, np.uint8)
        start = 0
        for level, stop in self.segments:
            PoissonSampler(dose * level * self.STEP).fill(
                buffer[start:stop], bit_generator(seed, STREAM_MODULATED, *key, level))
            start = stop
        out_flat[self.order] = buffer


# --------------------------------------------------------------------------------------
# Detector models


class DetectorModel:
    """Base class: a frame generator for (shape, dose, seed, dtype, options).

    Construction only checks the arguments (cheap, so dataset specs validate with it);
    `prepare()` builds the heavy state (dose map, gain reference) once. Then
    `render(index, out)` writes frame `index` into the 2-D array `out`; it is thread-safe
    and depends only on (shape, dose, seed, dtype, options, index)."""

    kind = ""
    dtypes: tuple[str, ...] = ()
    # option name -> (type, default, help); every model also takes the DoseMap options
    options: dict[str, tuple[type, object, str]] = {}
    map_options = {
        "modulation": (float, 0.0, "relative amplitude of the smooth dose map (0 = flat beam)"),
        "modulation_scale": (float, 512.0, "wavelength of the dose map in px"),
        "particles": (int, 0, "number of round particles darkening the dose map"),
        "particle_radius": (float, 40.0, "particle radius in px"),
        "particle_contrast": (float, 0.1, "share of the dose a particle centre scatters away"),
    }

    def __init__(self, shape, dose, seed=0, dtype=None, **options):
        self.shape = _check_shape(shape)
        self.dose = _check_dose(dose)
        self.seed = _check_seed(seed)
        try:
            self.dtype = np.dtype(dtype or self.dtypes[0])
        except TypeError:
            raise DatasetError(f"dtype: {dtype!r} is not a numpy dtype; choose one of "
                               f"{', '.join(self.dtypes)}") from None
        if self.dtype.name not in self.dtypes:
            raise DatasetError(f"dtype: {self.dtype.name!r} is not valid for kind {self.kind!r}; "
                               f"choose one of {', '.join(self.dtypes)}")
        self.opts = self.check_options(options)
        self.dose_map = None
        self.prepared = False
        self.check()

    def check(self) -> None:
        """Model-specific argument checks (cheap); raise DatasetError naming the field."""

    def prepare(self) -> "DetectorModel":
        """Build the static state once, before rendering; returns self."""
        if not self.prepared:
            if self.opts["modulation"] or self.opts["particles"]:
                self.dose_map = DoseMap(self.map_shape(), self.seed, **{
                    name: self.opts[name] for name in self.map_options})
            self.build()
            self.prepared = True
        return self

    def build(self) -> None:
        """Model-specific static state and range checks that need the dose map."""

    @classmethod
    def all_options(cls) -> dict[str, tuple[type, object, str]]:
        return {**cls.options, **cls.map_options}

    @classmethod
    def check_options(cls, options: dict) -> dict:
        valid = cls.all_options()
        checked = {}
        for name, value in options.items():
            if name not in valid:
                raise DatasetError(f"options: unknown option {name!r} for kind {cls.kind!r}; "
                                   f"valid options: {', '.join(sorted(valid))}")
            kind = valid[name][0]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and not float(value).is_integer()):
                raise DatasetError(f"options.{name}: expected {kind.__name__}, got {value!r}")
            checked[name] = kind(value)
        for name, (kind, default, _) in valid.items():
            checked.setdefault(name, default)
        if not 0.0 <= checked["modulation"] < 1.0:
            raise DatasetError(f"options.modulation: {checked['modulation']} must be in 0..1 (exclusive)")
        if checked["modulation_scale"] <= 0 or checked["particle_radius"] <= 0:
            raise DatasetError("options.modulation_scale and options.particle_radius must be > 0 px")
        if checked["particles"] < 0 or not 0.0 <= checked["particle_contrast"] <= 1.0:
            raise DatasetError("options.particles must be >= 0 and options.particle_contrast in 0..1")
        return checked

    def map_shape(self) -> tuple[int, int]:
        return self.shape

    def describe(self) -> str:
        return " ".join((type(self).__doc__ or "").strip().split("\n\n")[0].split())

    def render(self, index: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def max_dose(self) -> float:
        """Highest per-pixel dose, for range checks."""
        if self.dose_map is None:
            return self.dose
        return self.dose * float(self.dose_map.levels.max()) * DoseMap.STEP

    def _fill_counts(self, out_flat: np.ndarray, dose: float, *key: int) -> None:
        """Poisson counts (modulated when a dose map is set), one stream per 4 Mi pixels."""
        if self.dose_map is not None:
            self.dose_map.fill(out_flat, dose, self.seed, *key)
            return
        sampler = PoissonSampler(dose)
        for chunk, start in enumerate(range(0, out_flat.size, CHUNK_PIXELS)):
            sampler.fill(out_flat[start:start + CHUNK_PIXELS],
                         bit_generator(self.seed, STREAM_COUNTS, *key, chunk))

    def _check_fits(self, largest: int) -> None:
        info = np.iinfo(self.dtype) if self.dtype.kind in "iu" else None
        if info is not None and largest > info.max:
            raise DatasetError(f"dose {self.max_dose():g} e/px/frame can give counts up to {largest}, "
                               f"more than dtype {self.dtype.name} holds ({info.max}); "
                               f"use a lower dose or a wider dtype")


class Counting(DetectorModel):
    """Gatan K2/K3 counting mode, gain not normalised: small integer electron counts per
    pixel, Poisson(dose), stored as 8-bit integers (MRC mode 0 from EPU/SerialEM)."""

    kind = "counting"
    dtypes = ("int8", "uint8", "int16", "uint16", "float32")

    def check(self):
        self._check_fits(PoissonSampler(self.dose).max_value)

    def build(self):
        self._check_fits(PoissonSampler(self.max_dose()).max_value)

    def render(self, index, out):
        self._fill_counts(out.reshape(-1), self.dose, index)


class GainNormalised(DetectorModel):
    """Gatan K2 counting movies gain-normalised by EPU/DigitalMicrograph: float32 counts
    multiplied by a per-pixel gain reference (1.0-1.3), with defect pixels replaced by the
    mean of their four neighbours, so those are not integer multiples of their gain
    (RELION's gain estimation has to leave them at gain 1.0).

    The counts are exactly those of the `counting` model with the same seed."""

    kind = "gain-normalised"
    dtypes = ("float32",)
    options = {
        "gain_min": (float, 1.0, "smallest gain-reference value"),
        "gain_max": (float, 1.3, "largest gain-reference value"),
        "defects": (int, -1, "defect pixels (-1: 1.5 per 10^4 pixels, ~2100 on a K2)"),
    }

    def check(self):
        lo, hi = self.opts["gain_min"], self.opts["gain_max"]
        if not 0 < lo <= hi:
            raise DatasetError(f"options.gain_min/gain_max: need 0 < gain_min <= gain_max, got {lo}, {hi}")
        ny, nx = self.shape
        count = self.opts["defects"]
        if count < 0:
            count = max(1, round(ny * nx * 1.5e-4))
        interior = max(0, (ny - 2) * (nx - 2))
        if count > interior:
            raise DatasetError(f"options.defects: {count} defect pixels do not fit in a {ny}x{nx} frame")
        self.defect_count = count
        if PoissonSampler(self.dose).max_value > 255:
            raise DatasetError(f"dose: {self.dose:g} e/px/frame is too high for 8-bit counts")

    def build(self):
        ny, nx = self.shape
        lo, hi = self.opts["gain_min"], self.opts["gain_max"]
        rng = np.random.Generator(bit_generator(self.seed, STREAM_GAIN))
        self.gain = rng.uniform(lo, hi, self.shape).astype(np.float32)
        count, interior = self.defect_count, (ny - 2) * (nx - 2)
        rng = np.random.Generator(bit_generator(self.seed, STREAM_DEFECTS))
        picks = np.sort(rng.choice(interior, size=count, replace=False)) if count else np.zeros(0, np.int64)
        # defects keep one pixel away from the border so each has four neighbours
        self.defects = ((picks // (nx - 2) + 1) * nx + picks % (nx - 2) + 1).astype(np.intp)
        if PoissonSampler(self.max_dose()).max_value > 255:
            raise DatasetError(f"dose: {self.dose:g} e/px/frame is too high for 8-bit counts")

    def render(self, index, out):
        nx = self.shape[1]
        counts = np.empty(self.shape, np.uint8)
        self._fill_counts(counts.reshape(-1), self.dose, index)  # the same streams as `counting`
        np.multiply(counts, self.gain, out=out, casting="unsafe")
        flat = out.reshape(-1)
        d = self.defects
        neighbours = (flat[d - 1] + flat[d + 1]) + (flat[d - nx] + flat[d + nx])
        flat[d] = neighbours * np.float32(0.25)


class Falcon(DetectorModel):
    """Thermo Fisher Falcon 3/4 counting mode (MRC/TIFF, not EER): every electron is drawn
    as a 3x3 blob of integers summing to 100 (int16), its shape depending on where in the
    pixel it landed (four variants). Blobs wrap around the frame edges so every frame sums
    to exactly 100 x its electrons."""

    kind = "falcon"
    dtypes = ("int16", "uint16", "float32")
    # blob for an electron landing right-below the pixel centre; the other three variants
    # are its mirror images. Similar to the Falcon 3 example in RELION's documentation.
    BLOB = np.array([[1, 7, 2], [7, 42, 16], [3, 16, 6]], np.int16)
    BLOBS = (BLOB, BLOB[::-1], BLOB[:, ::-1], BLOB[::-1, ::-1])

    def check(self):
        # a pixel gets at most 100 per electron from each of the 4 variants' 9 neighbours
        self._check_fits(400 * PoissonSampler(self.dose / 4).max_value)

    def build(self):
        self._check_fits(400 * PoissonSampler(self.max_dose() / 4).max_value)

    def render(self, index, out):
        ny, nx = self.shape
        canvas = np.zeros((ny + 2, nx + 2), np.int32)
        counts = np.empty(self.shape, np.uint8)
        weighted = np.empty(self.shape, np.int32)
        for variant, blob in enumerate(self.BLOBS):
            # each variant gets a quarter of the dose: together Poisson(dose) electrons
            self._fill_counts(counts.reshape(-1), self.dose / 4, STREAM_FALCON, index, variant)
            for (dy, dx), w in np.ndenumerate(blob):
                np.multiply(counts, int(w), out=weighted, dtype=np.int32)
                canvas[dy:dy + ny, dx:dx + nx] += weighted
        # fold the one-pixel margin back onto the opposite edges (wrap-around)
        canvas[ny, :] += canvas[0, :]
        canvas[1, :] += canvas[ny + 1, :]
        canvas[:, nx] += canvas[:, 0]
        canvas[:, 1] += canvas[:, nx + 1]
        np.copyto(out, canvas[1:ny + 1, 1:nx + 1], casting="unsafe")


class SuperResolution(DetectorModel):
    """Gatan K2/K3 super-resolution mode saved as 4-bit (SerialEM/IMOD mode 101): counts on
    the 2x finer grid (shape is the super-resolution grid, dose per super-resolution
    pixel), values 0..15. Counts above 15 are clipped as the 4-bit output does; below about
    1 e/px/frame that happens less than once in 10^13 pixels."""

    kind = "super-resolution"
    dtypes = ("uint8", "int8")

    def render(self, index, out):
        flat = out.reshape(-1)
        self._fill_counts(flat, self.dose, index)
        np.minimum(flat, 15, out=flat)


class EER(DetectorModel):
    """Thermo Fisher Falcon 4 EER (electron event representation), rendered as RELION
    does: the detector records sparse single-electron events at ~248 internal frames/s,
    each at one of 4x4 sub-pixel positions (a 16K grid for a 4K sensor), and at most one
    per physical pixel per internal frame. `grouping` internal frames are summed into one
    fraction, rendered on the 4K (upsampling 1) or 8K (upsampling 2) grid.

    `shape` is the rendered grid and `dose` the mean count per rendered pixel per fraction,
    so a physical pixel has an event in an internal frame with probability
    p = dose x upsampling^2 / grouping; a 4K fraction's counts are Binomial(grouping, p):
    Poisson-like at EER's small p, and never above `grouping`."""

    kind = "eer"
    dtypes = ("uint8", "uint16", "int16")
    options = {
        "grouping": (int, 24, "internal frames summed into one fraction"),
        "upsampling": (int, 1, "1: render on the 4K physical grid, 2: on the 8K grid"),
        "frame_rate": (float, 248.0, "internal frames per second (informational)"),
    }

    def check(self):
        up, group = self.opts["upsampling"], self.opts["grouping"]
        if up not in (1, 2):
            raise DatasetError(f"options.upsampling: {up} is not one of 1 (4K), 2 (8K)")
        if group < 1 or group > np.iinfo(self.dtype).max:
            raise DatasetError(f"options.grouping: {group} must be 1..{np.iinfo(self.dtype).max} for {self.dtype.name}")
        if self.shape[0] % up or self.shape[1] % up:
            raise DatasetError(f"shape: {self.shape} must be divisible by upsampling {up}")
        self.physical_shape = (self.shape[0] // up, self.shape[1] // up)
        self.event_probability = self.dose * up * up / group
        if self.event_probability > 0.5:
            raise DatasetError(f"dose: {self.dose:g} e/px/fraction with grouping {group} gives "
                               f"{self.event_probability:.3g} events per physical px per internal frame; "
                               f"EER events are sparse (< 0.5): raise options.grouping")

    def build(self):
        self._relative = None if self.dose_map is None else self.dose_map.relative.reshape(-1)
        if self.event_probability * (1 if self._relative is None else self._relative.max()) >= 1:
            raise DatasetError("options.modulation: the dose map's peak asks for more than one "
                               "event per physical pixel per internal frame; raise options.grouping")

    def map_shape(self):
        return self.physical_shape

    def internal_frame_events(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One internal frame: sorted physical pixel indices with an event, and each
        event's sub-pixel column and row (0..3)."""
        npix = self.physical_shape[0] * self.physical_shape[1]
        # A Poisson process of intensity -log(1 - p) per pixel, keeping one event per pixel
        # (a counting detector sees at most one per frame), hits each pixel with probability p.
        p = self.event_probability
        peak = -math.log1p(-p * (1.0 if self._relative is None else float(self._relative.max())))
        hits = rng.integers(0, npix, size=rng.poisson(peak * npix))
        if self._relative is not None:
            # thinning keeps a Poisson process Poisson, now with the mapped intensity
            keep = rng.random(hits.size) * peak < -np.log1p(-p * self._relative[hits])
            hits = hits[keep]
        pixels = np.unique(hits)
        sub = rng.integers(0, 16, size=pixels.size, dtype=np.uint8)
        return pixels, sub & 3, sub >> 2

    def render(self, index, out):
        rng = np.random.Generator(bit_generator(self.seed, STREAM_EER, index))
        up = self.opts["upsampling"]
        py, px = self.physical_shape
        flat = out.reshape(-1)
        flat[...] = 0
        for _ in range(self.opts["grouping"]):
            pixels, sub_x, sub_y = self.internal_frame_events(rng)
            if up == 1:
                target = pixels
            else:
                y = (pixels // px) * 2 + (sub_y >> 1)
                x = (pixels % px) * 2 + (sub_x >> 1)
                target = y * (2 * px) + x
            flat[target] += 1  # indices are unique within an internal frame


MODELS: dict[str, type[DetectorModel]] = {
    model.kind: model for model in (Counting, GainNormalised, Falcon, SuperResolution, EER)
}
# Suites say kind = "poisson" for plain i.i.d. counts: the same generator as "counting".
KIND_ALIASES = {"poisson": "counting"}


def make_model(kind: str, shape, dose, seed=0, dtype=None, **options) -> DetectorModel:
    """The (checked, not yet prepared) model of `kind`; see MODELS and KIND_ALIASES."""
    model = MODELS.get(KIND_ALIASES.get(kind, kind))
    if model is None:
        raise DatasetError(f"kind: {kind!r} is not one of {', '.join([*MODELS, *KIND_ALIASES])}")
    return model(shape, dose, seed, dtype, **options)


# --------------------------------------------------------------------------------------
# Whole movies and frame iterators


def render_movie(model: DetectorModel, frames: int, threads: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The whole (frames, ny, nx) stack, each frame rendered in place by a thread pool."""
    frames = _check_frames(frames)
    model.prepare()
    out = np.empty((frames, *model.shape), model.dtype)
    threads = threads or default_threads()
    if threads == 1 or frames == 1:
        for i in range(frames):
            model.render(i, out[i])
            if progress:
                progress(i + 1, frames)
        return out
    with ThreadPoolExecutor(min(threads, frames)) as pool:
        for done, _ in enumerate(pool.map(lambda i: model.render(i, out[i]), range(frames)), 1):
            if progress:
                progress(done, frames)
    return out


def iter_model_frames(model: DetectorModel, frames: int, threads: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> Iterator[np.ndarray]:
    """Frames in order, rendered ahead by a thread pool; at most 2 x threads frames are in
    memory at once, so stacks larger than memory stream through."""
    frames = _check_frames(frames)
    model.prepare()
    threads = threads or default_threads()

    def one(i):
        frame = np.empty(model.shape, model.dtype)
        model.render(i, frame)
        return frame

    if threads == 1:
        for i in range(frames):
            yield one(i)
            if progress:
                progress(i + 1, frames)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending = deque()
        next_index = 0
        for i in range(frames):
            while next_index < frames and len(pending) < 2 * threads:
                pending.append(pool.submit(one, next_index))
                next_index += 1
            yield pending.popleft().result()
            if progress:
                progress(i + 1, frames)


def movie(kind: str, frames: int, shape, dose, seed=0, dtype=None, threads=None, **options) -> np.ndarray:
    """A (frames, ny, nx) stack of detector model `kind` (see MODELS)."""
    return render_movie(make_model(kind, shape, dose, seed, dtype, **options), frames, threads)


def iter_movie(kind: str, frames: int, shape, dose, seed=0, dtype=None, threads=None,
               **options) -> Iterator[np.ndarray]:
    """The frames of `movie(...)` one at a time."""
    return iter_model_frames(make_model(kind, shape, dose, seed, dtype, **options), frames, threads)


def poisson_movie(frames, shape, dose, seed=0, dtype="int8", threads=None) -> np.ndarray:
    """(frames, ny, nx) exact Poisson(dose) counts; dose in e/px/frame. Same arguments,
    same bytes, on any machine and with any number of threads."""
    return movie("counting", frames, shape, dose, seed, dtype, threads)


def iter_poisson_frames(frames, shape, dose, seed=0, dtype="int8", threads=None) -> Iterator[np.ndarray]:
    """The frames of `poisson_movie(...)` one at a time, for stacks larger than memory."""
    return iter_movie("counting", frames, shape, dose, seed, dtype, threads)


# --------------------------------------------------------------------------------------
# Argument checks (messages name the field, as dataset specs use the same names)


def _check_frames(frames) -> int:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise DatasetError(f"frames: expected a positive integer, got {frames!r}")
    return int(frames)


def _check_shape(shape) -> tuple[int, int]:
    try:
        ny, nx = shape
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (ny, nx))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"shape: expected [ny, nx] with two positive integers, got {shape!r}")
    return int(ny), int(nx)


def _check_dose(dose) -> float:
    if isinstance(dose, bool) or not isinstance(dose, (int, float, np.integer, np.floating)) \
            or not 0 <= float(dose) <= MAX_DOSE:
        raise DatasetError(f"dose: expected a number of e/px/frame in 0..{MAX_DOSE:g}, got {dose!r}")
    return float(dose)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)

