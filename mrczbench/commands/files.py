"""Single-file conversion and inspection: `mrczbench compress`, `decompress` and `info`.

Inputs are opened through mrczbench.movies.readers (the one reader of users' movies, with
its checks: regular files only, compressed files named, frame counts checked) and streamed
frame by frame, so converting a movie never needs the whole stack in memory. Outputs go
through mrczbench.atomic (temporary file + rename, regular files only).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from mrczbench import mrcz
from mrczbench.argtypes import positive_int, zero_or_range
from mrczbench.errors import MrczbenchError
from mrczbench.progress import Progress
from mrczbench.movies import gain

INPUT_SUFFIXES = (".mrc", ".mrcz", ".mrcs", ".tif", ".tiff", ".npy")
MRCZ_SUFFIX = ".mrcz"
# What `info` says about integrity: MRC and MRCZ (blosc1 chunks) store no payload checksum.
CHECKSUM_NOTE = ("none: MRC/MRCZ store no payload checksum, so corruption inside a "
                 "compressed chunk can decode silently to wrong pixels")
PLAIN_CHECKSUM_NOTE = "none: plain MRC stores no checksum (a flipped bit changes one pixel)"
UINT8_WARNING = ("uint8 values above 127 are stored as MRC mode 0, which MRC readers that "
                 "ignore IMOD's unsigned flag (RELION, mrcfile, python-mrcz) see as signed "
                 "int8: values above 127 appear negative (mrczbench and IMOD read uint8)")


def add_commands(subparsers) -> None:
    compress = subparsers.add_parser(
        "compress", help="write a movie as compressed MRCZ",
        description="Compress a movie (.mrc/.mrcs/.mrcz, .tif/.tiff, .npy) into an MRCZ file "
        "(blosc chunks, one per frame, bitshuffle), readable by python-mrcz. The input is read "
        "one frame at a time; the output appears only when complete.")
    compress.add_argument("input", metavar="IN", help="input movie: .mrc, .mrcs, .mrcz, .tif, "
                          ".tiff or .npy (2-D frame or 3-D z,y,x stack)")
    compress.add_argument("output", metavar="OUT", help="output file; must end in .mrcz")
    compress.add_argument("--codec", default="zstd", choices=mrcz.CODECS,
                          help="blosc codec (default: zstd)")
    compress.add_argument("--level", type=int, default=1, choices=range(1, 10), metavar="1-9",
                          help="compression level, 1 fastest ... 9 smallest (default: 1)")
    compress.add_argument("--threads", type=positive_int, default=None, metavar="N",
                          help="compression threads (default: all cores)")
    compress.add_argument("--blocksize", type=zero_or_range(mrcz.MIN_BLOCKSIZE, mrcz.MAX_BLOCKSIZE, "bytes"), default=None, metavar="BYTES",
                          help="blosc block size: 0 = blosc's automatic choice, or "
                          f"{mrcz.MIN_BLOCKSIZE}-{mrcz.MAX_BLOCKSIZE} bytes (default: "
                          "python-mrcz's rule, min(65536, pixels per frame / threads))")
    compress.add_argument("--filter", default="bitshuffle", choices=tuple(mrcz.FILTERS),
                          help="blosc pre-filter (default: bitshuffle, MRCZ's)")
    compress.add_argument("--meta-format", default="json", choices=tuple(mrcz.META_FORMATS),
                          help="encoding of the metadata in the extended header (default: json; "
                          "only json is read by python-mrcz)")
    compress.add_argument("--checksum", action="store_true",
                          help="store a SHA-256 per frame in the metadata (python-mrcz ignores it) "
                          "so `info --verify` and mrcz.read(verify=True) detect a corrupted chunk")
    compress.add_argument("--gain", metavar="GAIN.mrc", default=None,
                          help="store a gain-normalised float32 movie as integer counts with this "
                          "gain reference (from `mrczbench estimate-gain`; its _reliability.mrc "
                          "beside it); unreliable pixels keep their float32 values, and "
                          "`decompress --normalise` gives the movie back bit-exactly")
    compress.add_argument("--gain-ref", metavar="GAIN.mrc", default=None,
                          help="as --gain, but the output names the gain reference (file name "
                          "and SHA-256 of it and its _reliability.mrc) instead of holding it: "
                          "one gain file per session, as RELION's gain-reference.mrc; "
                          "`decompress --normalise` and `info` look for it beside the movie or in "
                          "a folder above (or take --gain-ref) and check its SHA-256")
    compress.add_argument("--ignore-error", action="store_true",
                          help="with --gain: round values that are not exact multiples of their "
                          "reliable gain instead of stopping (the output is then NOT lossless)")
    compress.set_defaults(func=cmd_compress)

    decompress = subparsers.add_parser(
        "decompress", help="write a movie as plain MRC for legacy software",
        description="Decompress an MRCZ file (or convert any supported input) to plain MRC2014, "
        "readable by IMOD, RELION, mrcfile and other MRC software.")
    decompress.add_argument("input", metavar="IN", help="input .mrcz (or .mrc, .tif, .npy)")
    decompress.add_argument("output", metavar="OUT",
                            help="output plain MRC file (.mrc, .mrcs; not .mrcz)")
    decompress.add_argument("--no-meta", action="store_true",
                            help="drop the JSON metadata (strict MRC2014 validators such as "
                            "mrcfile.validate do not know the 'json' extended header type); "
                            "uint8 data then read back as int8")
    decompress.add_argument("--normalise", action="store_true",
                            help="for a file written by `compress --gain`: multiply the counts "
                            "by the stored gain (float32, bit-exact to the original movie); "
                            "without it a counts file decompresses to its integer counts and "
                            "keeps the gain in its metadata")
    decompress.add_argument("--gain-ref", metavar="GAIN.mrc", default=None,
                            help="with --normalise, for a file written by `compress --gain-ref`: "
                            "its gain reference (default: the file it names, beside it or in a "
                            "folder above); its SHA-256 must match")
    decompress.set_defaults(func=cmd_decompress)

    info = subparsers.add_parser(
        "info", help="show the header of an MRC/MRCZ file",
        description="Show shape, dtype, mode, codec, level (if the file recorded it), stored "
        "bytes, compression ratio (stored/raw, 0.37 = 37 % of the raw size), metadata, and "
        "that MRC/MRCZ files carry no payload checksum.")
    info.add_argument("file", metavar="FILE", help=".mrc or .mrcz file")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--verify", action="store_true", help="also decode every frame and check "
                      "it against the per-frame SHA-256 stored by `compress --checksum`; exit 1 "
                      "on a mismatch")
    info.add_argument("--gain-ref", metavar="GAIN.mrc", default=None,
                      help="for a file written by `compress --gain-ref`: its gain reference "
                      "(default: the file it names, beside it or in a folder above)")
    info.set_defaults(func=cmd_info)


# ---------------------------------------------------------------- commands

def cmd_compress(args) -> int:
    _check_output(args.input, args.output, compressed=True)
    if args.gain and args.gain_ref:
        raise MrczbenchError("--gain and --gain-ref: give one (--gain stores the gain in the "
                             "file, --gain-ref names a gain file kept beside the movies)")
    if args.gain or args.gain_ref:
        from mrczbench.atomic import protect_inputs
        reference = args.gain or args.gain_ref
        protect_inputs([reference, gain.reliability_path(reference)], [args.output])
        return _compress_counts(args)  # counts + gain + unreliable pixels (issue 11)
    if args.ignore_error:
        raise MrczbenchError("--ignore-error only applies with --gain or --gain-ref")
    source = open_input(args.input)
    frames = _warn_uint8(source.frames, "compress")
    # a counts file's gain section is binary: it travels only as msgpack
    meta_format = "msgpack" if "gain_counts" in (source.meta or {}) else args.meta_format
    frames = _progress(frames, source.count, "compress")
    written = mrcz.write(args.output, mrcz.CountedFrames(frames, source.count) if args.checksum else frames,
                         codec=args.codec, level=args.level, threads=args.threads,
                         blocksize=args.blocksize, filter=args.filter, meta=source.meta,
                         meta_format=meta_format, checksum=args.checksum, **source.microscope)
    _report(args.output, source, written)
    return 0


def _compress_counts(args) -> int:
    """`mrczbench compress IN OUT.mrcz --gain|--gain-ref GAIN.mrc [--ignore-error]`: integer
    counts and the unreliable pixels' values (mrczbench.movies.gain), with the gain (--gain)
    or naming the gain reference by name and SHA-256 (--gain-ref)."""
    gain_file = args.gain or args.gain_ref
    source = open_input(args.input)
    shape = _source_shape(args.input)
    gain_map, reliable = gain.read_reference(gain_file, shape)
    reference = gain.reference_record(gain_file) if args.gain_ref else None
    dtype, section, frames = gain.convert_source(
        str(args.input), lambda: open_input(args.input).frames, source.count, gain_map, reliable,
        ignore_error=args.ignore_error, tolerance=gain.reference_tolerance(gain_file),
        reference=reference)
    if reference is None:
        section["gain_file"] = Path(gain_file).name
    if dtype == np.uint8:
        print(f"mrczbench compress: warning: counts up to 255 are stored as uint8: {UINT8_WARNING}",
              file=sys.stderr, flush=True)
    meta = dict(source.meta or {})
    meta[gain.META_KEY] = section
    written = mrcz.write(args.output, frames, codec=args.codec, level=args.level,
                         threads=args.threads, blocksize=args.blocksize, filter=args.filter,
                         meta=meta, meta_format="msgpack", **source.microscope)
    movie = source.count * shape[0] * shape[1] * 4   # the float32 movie: movie_bytes
    held = (f"naming the gain reference {gain_file} (SHA-256 {reference['sha256'][:16]})"
            if reference else f"with the gain of {gain_file}")
    moved = (f"; {section['ulps_pixels']} value(s) within the estimate's tolerance kept exactly"
             if section.get("ulps_pixels") else "")
    print(f"{args.output}: {source.count} frames of {dtype.name} counts {held} "
          f"({section['unreliable_pixels']} unreliable pixels kept as float32{moved}), "
          f"{written} bytes, ratio {written / movie:.3f} of the float32 movie")
    if section["changed_values"]:
        print(f"{args.output}: NOT LOSSLESS: --ignore-error rounded {section['changed_values']} "
              "value(s) that were not exact multiples of their reliable gain")
    return 0


def _source_shape(path) -> tuple[int, int]:
    from mrczbench.movies import readers

    return tuple(readers.open_movies([path])[0].shape[1:])


def cmd_decompress(args) -> int:
    _check_output(args.input, args.output, compressed=False)
    source = open_input(args.input)
    meta = None if args.no_meta else source.meta
    frames = _warn_uint8(source.frames, "decompress")
    meta_format = "json"
    section = (source.meta or {}).get("gain_counts")
    if args.normalise:
        if section is None:
            raise MrczbenchError(f"{args.input}: --normalise needs a file written by "
                                 "`mrczbench compress --gain` (this one holds no gain)")
        frames = gain.normalised_frames(args.input, source.frames, section, args.gain_ref)
        if meta:  # the output holds the float32 movie: the gain section no longer applies
            meta = {k: v for k, v in meta.items() if k != "gain_counts"} or None
    elif args.gain_ref:
        raise MrczbenchError("--gain-ref only applies with --normalise")
    elif meta and section is not None:
        meta_format = "msgpack"  # the counts keep their gain, in binary metadata
    written = mrcz.write(args.output, _progress(frames, source.count, "decompress"),
                         codec=None, meta=meta, meta_format=meta_format,
                         record_dtype=not args.no_meta, **source.microscope)
    _report(args.output, source, written)
    return 0


def cmd_info(args) -> int:
    header = mrcz.read_header(_checked_mrc_path(Path(args.file)))
    summary = describe(header)
    section = (header.meta or {}).get("gain_counts")
    if isinstance(section, dict) and "gain_ref" in section:
        from mrczbench.movies import gain

        found = gain.find_reference(args.file, section["gain_ref"], args.gain_ref)
        summary["gain_reference"] = f"{found} (SHA-256 matches)"
    elif args.gain_ref:
        raise MrczbenchError(f"{args.file}: --gain-ref applies to files written by "
                             "`compress --gain-ref` (this one names no gain reference)")
    if args.verify:
        stored = mrcz.CHECKSUM_KEY in (header.meta or {})
        try:
            count = sum(1 for _ in mrcz.iter_frames(args.file, verify=stored))
        except mrcz.MRCZError as exc:
            print(f"{args.file}: VERIFY FAILED: {exc}")
            return 1
        summary["verified"] = (f"{count} frames match their stored SHA-256" if stored else
                               f"not possible: no checksums stored (written without --checksum); "
                               f"all {count} frames decode, their pixels cannot be checked")
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        if key == "metadata":
            value = json.dumps(value, default=str) if value is not None else "none"
        print(f"{key:<{width}}  {value}")
    return 0


def _checked_mrc_path(path: Path) -> Path:
    """`info` reads MRC headers: refuse non-regular, compressed, TIFF and EER files first."""
    from mrczbench.movies import readers

    readers.check_regular_file(path, "MRC/MRCZ")
    readers.check_not_compressed(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        kind = "EER" if path.suffix.lower() == ".eer" else "TIFF/EER"
        raise MrczbenchError(f"{path}: this is a {kind} movie, not MRC/MRCZ: use "
                             f"'mrczbench datasets inspect {path}'")
    return path


def describe(header: mrcz.Header) -> dict:
    """The fields `mrczbench info` shows, as a JSON-ready dict."""
    return {
        "file": header.path,
        "shape": list(header.shape),
        "dtype": str(header.dtype),
        "mode": header.mode,
        "codec": header.codec,
        "level": header.level,
        "filter": header.filter,
        "blocksize_bytes": header.blocksize,
        "stored_bytes": header.file_bytes,
        "raw_bytes": movie_bytes(header),
        "ratio": round(header.file_bytes / movie_bytes(header), 6) if movie_bytes(header) else 0.0,
        "pixelsize_angstrom": [round(p, 6) for p in header.pixelsize],
        "voltage_kv": header.voltage,
        "c3_mm": header.C3,
        "gain": header.gain,
        "label": header.label + (" (python-mrcz's format mark, which mrczbench writes into "
                                 "every file; this one is plain, uncompressed MRC)"
                                 if header.codec is None and header.label.startswith("MRCZ") else ""),
        "checksum": (f"per-frame SHA-256 stored ({mrcz.CHECKSUM_KEY}): check with info --verify"
                     if mrcz.CHECKSUM_KEY in (header.meta or {}) else
                     CHECKSUM_NOTE if header.codec else PLAIN_CHECKSUM_NOTE),
        "content": _content(header.meta),
        "metadata": _summarised_meta(header.meta),
    }


def movie_bytes(header: mrcz.Header) -> int:
    """The uncompressed size of the movie a file holds, the denominator of every ratio
    mrczbench prints: the pixels as stored, except for a counts file (compress --gain), whose
    movie is the float32 one that decompress --normalise gives back (counts x gain)."""
    if isinstance((header.meta or {}).get("gain_counts"), dict):
        return int(np.prod(header.shape)) * 4
    return header.raw_bytes


def _content(meta) -> str:
    section = (meta or {}).get("gain_counts")
    if not isinstance(section, dict):
        return "pixel values"
    lossless = "lossless" if section.get("lossless") else "NOT lossless (--ignore-error rounded values)"
    return (f"integer counts with a gain reference ({section.get('unreliable_pixels')} unreliable "
            f"pixels kept as float32; {lossless}); decompress --normalise gives the float32 movie")


def _summarised_meta(meta):
    """The metadata for `info`, binary sections and per-frame checksums summarised."""
    if meta and mrcz.CHECKSUM_KEY in meta:
        meta = {**meta, mrcz.CHECKSUM_KEY: f"{len(meta[mrcz.CHECKSUM_KEY])} SHA-256 digests"}
    if meta and "gain_counts" in meta:
        return gain.describe_section(meta)
    return meta


# ---------------------------------------------------------------- inputs

class Source:
    """A movie to convert: frames (an iterator of 2-D arrays), how many, and what to carry
    over into the output header."""

    def __init__(self, frames: Iterator[np.ndarray], count: int, meta: dict | None = None,
                 microscope: dict | None = None, raw_bytes: int = 0):
        self.frames = frames
        self.count = count
        self.meta = meta
        self.microscope = microscope or {}
        self.raw_bytes = raw_bytes


def open_input(path: str | os.PathLike) -> Source:
    """Open a .mrc/.mrcs/.mrcz, .tif/.tiff or .npy movie for streaming, through
    mrczbench.movies.readers (the one reader of users' movies)."""
    from mrczbench.movies import readers

    path = Path(path)
    if path.suffix.lower() not in INPUT_SUFFIXES:
        readers.check_regular_file(path)
        readers.check_not_compressed(path)
        raise MrczbenchError(f"{path}: unsupported input type {path.suffix or '(none)'!r}; "
                             f"use one of {', '.join(INPUT_SUFFIXES)}")
    movie = readers.open_movie(path)
    if movie.dtype not in mrcz.DTYPE_MODES:
        raise MrczbenchError(f"{path}: the input's dtype {movie.dtype} cannot be stored in "
                             "MRC(Z); it stores int8, uint8 (as mode 0), int16, uint16, "
                             "float32 and complex64")
    raw = getattr(movie, "raw_bytes", movie.nbytes)
    if isinstance((movie.meta or {}).get("gain_counts"), dict):
        raw = int(np.prod(movie.shape)) * 4   # a counts file holds the float32 movie (movie_bytes)
    return Source(movie.iter_frames(), movie.shape[0], movie.meta, movie.microscope, raw)


def _check_output(input_path, output_path, compressed: bool) -> None:
    suffix = Path(output_path).suffix.lower()
    if compressed and suffix != MRCZ_SUFFIX:
        raise MrczbenchError(f"{output_path}: the output name must end in .mrcz: MRCZ is "
                             "compressed, and MRC software would misread it under another name")
    if not compressed and suffix == MRCZ_SUFFIX:
        raise MrczbenchError(f"{output_path}: the output is plain MRC, so its name must not "
                             "end in .mrcz (MRCZ readers expect compressed data); use .mrc "
                             "or .mrcs")
    from mrczbench.atomic import protect_inputs
    protect_inputs([input_path], [output_path])  # the same file, a hard link or a symlink to it
    folder = Path(output_path).resolve().parent
    if not folder.is_dir():
        raise MrczbenchError(f"{output_path}: folder {folder} does not exist")


def _warn_uint8(frames: Iterator[np.ndarray], verb: str) -> Iterator[np.ndarray]:
    """Pass frames through; print one warning line on stderr at the first uint8 frame with
    values above 127 (legacy readers see mode 0 as int8)."""
    warned = False
    for frame in frames:
        if not warned and frame.dtype == np.uint8 and frame.size and frame.max() > 127:
            print(f"mrczbench {verb}: warning: {UINT8_WARNING}", file=sys.stderr, flush=True)
            warned = True
        yield frame


def _progress(frames: Iterator[np.ndarray], count: int, verb: str) -> Iterator[np.ndarray]:
    """Pass frames through, showing the frame count on stderr when it is a terminal."""
    bar = Progress(count, verb, enabled=sys.stderr.isatty())
    for done, frame in enumerate(frames, 1):
        bar.update(done)
        yield frame
    bar.close()


def _report(output, source: Source, written: int) -> None:
    ratio = f", ratio {written / source.raw_bytes:.3f}" if source.raw_bytes else ""
    print(f"{output}: {source.count} frames, {written} bytes{ratio}")
