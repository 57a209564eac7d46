"""Valid small inputs for every reader the project owns, with a map of their regions.

A Seed is the bytes of one valid file plus where its parts lie (header, extended header,
chunk headers, payload, TIFF IFDs, ...) and where its size fields are, so the mutators can
truncate at each boundary, flip bytes in one region and write absurd sizes into one field.
Seeds are made by the project's own writers (mrcz.write, tifffile, numpy, the framed
formats), except EER, which no library here can encode: `encode_eer_frame`/`write_eer` write
its 7-2-2 bitstream (the same helpers tests/test_datasets.py uses).
"""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Region:
    """Bytes [start, end) of one part of a file. `unchecked`: pixel bytes that no checksum
    covers, so a flipped byte there may legitimately decode to other pixels."""

    kind: str
    start: int
    end: int
    unchecked: bool = False


@dataclasses.dataclass(frozen=True)
class Field:
    """A size field at `offset`, struct format `fmt` (e.g. '<i', '<Q'). `pointer`: an offset
    to pixel data that no checksum covers (moving it reads other bytes, undetectably)."""

    name: str
    offset: int
    fmt: str
    pointer: bool = False


@dataclasses.dataclass
class Seed:
    name: str                 # file name the input is written under
    data: bytes
    regions: list[Region] = dataclasses.field(default_factory=list)
    fields: list[Field] = dataclasses.field(default_factory=list)
    text: bool = False        # mutated by lines as well as bytes
    extras: dict[str, bytes] = dataclasses.field(default_factory=dict)  # files written beside
    expected: np.ndarray | None = None  # the array a reader must return (binary movie seeds)


# ----------------------------------------------------------------- MRC and MRCZ

def _stack(shape, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.poisson(1.0, shape).astype(dtype) * np.float32(0.5)
    if dtype.kind == "c":
        return (rng.poisson(1.0, shape) + 1j * rng.poisson(1.0, shape)).astype(dtype)
    return rng.poisson(1.5, shape).astype(dtype)


def _mrc_regions(data: bytes, compressed: bool) -> tuple[list[Region], list[Field]]:
    nsymbt = struct.unpack("<i", data[92:96])[0]
    start = 1024 + nsymbt
    regions = [Region("header", 0, 1024)]
    if nsymbt:
        regions.append(Region("extended-header", 1024, start))
    fields = [Field("nx", 0, "<i"), Field("ny", 4, "<i"), Field("nz", 8, "<i"),
              Field("mode", 12, "<i"), Field("nsymbt", 92, "<i")]
    if not compressed:
        regions.append(Region("payload", start, len(data), unchecked=True))
        return regions, fields
    fields.append(Field("packedBytes", 144, "<q"))
    offset, index = start, 0
    while offset + 16 <= len(data):
        cbytes = struct.unpack("<I", data[offset + 12:offset + 16])[0]
        regions.append(Region("chunk-header", offset, offset + 16))
        regions.append(Region("payload", offset + 16, offset + cbytes, unchecked=True))
        fields += [Field(f"chunk{index}.nbytes", offset + 4, "<I"),
                   Field(f"chunk{index}.blocksize", offset + 8, "<I"),
                   Field(f"chunk{index}.cbytes", offset + 12, "<I")]
        offset += cbytes
        index += 1
    return regions, fields


def mrc_seeds(folder: Path) -> list[Seed]:
    """Plain MRC in modes 0 (int8 and uint8), 1, 2, 6 and 101 (4-bit)."""
    from mrczbench import mrcz
    seeds = []
    for number, (dtype, mode101, meta) in enumerate([
            (np.int8, False, None), (np.uint8, False, None), (np.int16, False, {"a": 1}),
            (np.float32, False, None), (np.uint16, False, {"dose": 1.5}), (np.uint8, True, None)]):
        stack = _stack((3, 10, 14), dtype, number)
        path = folder / f"plain{number}.mrc"
        mrcz.write(path, stack, mode101=mode101, meta=meta)
        data = path.read_bytes()
        regions, fields = _mrc_regions(data, compressed=False)
        seeds.append(Seed(path.name, data, regions, fields, expected=stack))
    return seeds


def mrcz_seeds(folder: Path) -> list[Seed]:
    """MRCZ with every codec, JSON and msgpack metadata, several dtypes and filters."""
    from mrczbench import mrcz
    dtypes = (np.int8, np.uint8, np.int16, np.uint16, np.float32)
    filters = ("bitshuffle", "shuffle", "none")
    seeds = []
    for number, codec in enumerate(mrcz.CODECS):
        for meta_format in ("json", "msgpack"):
            index = len(seeds)
            dtype = dtypes[index % len(dtypes)]
            stack = _stack((3, 16, 24), dtype, 100 + index)
            path = folder / f"{codec}-{meta_format}.mrcz"
            mrcz.write(path, stack, codec=codec, level=1 + index % 9, threads=1,
                       meta={"n": index}, meta_format=meta_format,
                       filter=filters[index % len(filters)])
            data = path.read_bytes()
            regions, fields = _mrc_regions(data, compressed=True)
            seeds.append(Seed(path.name, data, regions, fields, expected=stack))
    return seeds


# ----------------------------------------------------------------- TIFF and EER

def _tiff_regions(path: Path, unchecked: bool) -> tuple[list[Region], list[Field]]:
    import tifffile
    regions: list[Region] = []
    fields: list[Field] = []
    with tifffile.TiffFile(path) as tif:
        order = tif.byteorder
        for number, page in enumerate(tif.pages):
            regions.append(Region("ifd", page.offset, page.offset + 8))
            for tag in page.tags.values():
                if tag.name in ("ImageWidth", "ImageLength", "StripByteCounts", "StripOffsets",
                                "RowsPerStrip", "BitsPerSample") and tag.count == 1:
                    fmt = {3: "H", 4: "I", 16: "Q"}.get(tag.dtype)
                    if fmt:
                        fields.append(Field(f"page{number}.{tag.name}", tag.valueoffset, order + fmt,
                                            pointer=tag.name == "StripOffsets" and unchecked))
                regions.append(Region("tag", tag.offset, tag.offset + 12))
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                regions.append(Region("payload", offset, offset + count, unchecked=unchecked))
    return sorted(regions, key=lambda r: r.start), fields


def tiff_seeds(folder: Path) -> list[Seed]:
    """Multi-page TIFF movies: uncompressed, LZW and deflate; int8-range uint8 and uint16."""
    import tifffile
    seeds = []
    for number, (dtype, compression) in enumerate([(np.uint8, None), (np.uint16, "lzw"),
                                                   (np.uint8, "zlib"), (np.int16, None)]):
        stack = _stack((4, 12, 20), dtype, 200 + number)
        path = folder / f"movie{number}.tif"
        tifffile.imwrite(path, stack, photometric="minisblack", compression=compression,
                         metadata=None, contiguous=False)
        regions, fields = _tiff_regions(path, unchecked=True)
        seeds.append(Seed(path.name, path.read_bytes(), regions, fields, expected=stack))
    return seeds


def encode_eer_frame(pixels, sub_x, sub_y, npix) -> bytes:
    """EER 7-2-2 bitstream (TIFF compression 65001) as imagecodecs.eer_decode reads it:
    LSB-first codes of a 7-bit skip (127 = skip on, no event) then, for an event, 2 bits of
    sub-pixel column and row, each stored XOR 2."""
    acc, bit, pos = 0, 0, 0

    def put(value, nbits):
        nonlocal acc, bit
        acc |= int(value) << bit
        bit += nbits

    for p, h, v in zip(pixels, sub_x, sub_y):
        skip = int(p) - pos
        while skip >= 127:
            put(127, 7)
            skip -= 127
        put(skip, 7)
        put(int(h) ^ 2, 2)
        put(int(v) ^ 2, 2)
        pos = int(p) + 1
    rest = npix - pos
    while rest >= 127:
        put(127, 7)
        rest -= 127
    put(rest, 7)
    nbytes = (bit + 7) // 8 + 2
    return acc.to_bytes(nbytes + nbytes % 2, "little")


def write_eer(path, events, shape, integrated=None) -> None:
    """An EER file of `events` ((pixels, sub_x, sub_y) per internal frame) on a `shape` grid,
    after an uncompressed `integrated` image page if given (as some EER files have).
    tifffile has no EER encoder: the strips are written under a stand-in compression, then
    the Compression tag is set to EER 7-2-2 with tifffile's tag patching."""
    import tifffile
    strips = [encode_eer_frame(*frame, shape[0] * shape[1]) for frame in events]
    meta = b"<metadata><item name='sensorPixelSize.width'>1</item></metadata>"
    eer_tag = [(65001, 7, len(meta), meta, True)]
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        if integrated is not None:
            tif.write(integrated, photometric="minisblack", metadata=None, extratags=eer_tag)
        tif.write(data=iter(strips), shape=(len(strips), *shape), dtype=np.uint8,
                  compression="zlib", rowsperstrip=shape[0], photometric="minisblack",
                  metadata=None, extratags=eer_tag)
    with tifffile.TiffFile(path, mode="r+") as tif:
        for page in tif.pages[0 if integrated is None else 1:]:
            page.tags["Compression"].overwrite(65001)


EER_GROUPING = 4  # internal frames per fraction, as the eer reader target renders them


def eer_seeds(folder: Path) -> list[Seed]:
    seeds = []
    shape = (16, 24)
    for number, internal in enumerate((8, 9)):
        rng = np.random.default_rng(300 + number)
        events, expected = [], np.zeros((internal // EER_GROUPING, shape[0] * shape[1]), np.uint8)
        for frame in range(internal):
            pixels = np.sort(rng.choice(shape[0] * shape[1], 20, replace=False))
            events.append((pixels, rng.integers(0, 4, 20), rng.integers(0, 4, 20)))
            if frame < expected.shape[0] * EER_GROUPING:
                expected[frame // EER_GROUPING, pixels] += 1
        path = folder / f"movie{number}.eer"
        write_eer(path, events, shape)
        regions, fields = _tiff_regions(path, unchecked=True)
        seeds.append(Seed(path.name, path.read_bytes(), regions, fields,
                          expected=expected.reshape(-1, *shape)))
    return seeds


# ----------------------------------------------------------------- .npy

def npy_seeds(folder: Path) -> list[Seed]:
    seeds = []
    for number, dtype in enumerate((np.int8, ">u2", np.float32)):
        stack = _stack((3, 6, 10), dtype, 400 + number)
        path = folder / f"stack{number}.npy"
        np.save(path, stack)
        data = path.read_bytes()
        header_end = data.index(b"\n") + 1
        seeds.append(Seed(path.name, data,
                          [Region("header", 0, header_end),
                           Region("payload", header_end, len(data), unchecked=True)],
                          [Field("header_len", 8, "<H")],
                          expected=stack.astype(np.dtype(dtype).newbyteorder("="))))
    return seeds


# ----------------------------------------------------------------- framed containers

def framed_seeds(folder: Path) -> list[Seed]:
    """The per-frame containers (CRC-32 per payload: payload flips must be caught)."""
    from mrczbench.formats import framed_formats, get_format
    from mrczbench.errors import FormatError
    seeds = []
    for suffix, name in framed_formats().items():
        stack = _stack((3, 16, 16), np.uint16, 500 + len(seeds))
        path = folder / f"movie{suffix}"
        try:
            get_format(name).write(path, stack)
        except FormatError:  # a coder library missing here: no seed for it
            continue
        data = path.read_bytes()
        header_len = struct.unpack("<I", data[8:12])[0]
        layout_end = 12 + header_len + 20 * stack.shape[0]
        regions = [Region("header", 0, 12 + header_len), Region("index", 12 + header_len, layout_end)]
        fields = [Field("header_len", 8, "<I")]
        for frame in range(stack.shape[0]):
            entry = 12 + header_len + 20 * frame
            offset, length = struct.unpack("<QQ", data[entry:entry + 16])
            regions.append(Region("payload", offset, offset + length))
            fields += [Field(f"frame{frame}.offset", entry, "<Q"),
                       Field(f"frame{frame}.length", entry + 8, "<Q")]
        seeds.append(Seed(path.name, data, regions, fields, expected=stack))
    return seeds


# ----------------------------------------------------------------- text formats

def _movie_extras(folder: Path) -> dict[str, bytes]:
    import tifffile
    from mrczbench import mrcz
    mrcz.write(folder / "a.mrc", _stack((2, 8, 8), np.int16, 600))
    mrcz.write(folder / "b.mrcz", _stack((2, 8, 8), np.uint16, 601), codec="zstd", threads=1)
    tifffile.imwrite(folder / "c.tif", _stack((2, 8, 8), np.uint8, 602), photometric="minisblack")
    return {name: (folder / name).read_bytes() for name in ("a.mrc", "b.mrcz", "c.tif")}


def list_seeds(folder: Path) -> list[Seed]:
    extras = _movie_extras(folder)
    text = "# movies of one session\na.mrc\n\nb.mrcz\nc.tif\n"
    return [Seed("movies.lst", text.encode(), text=True, extras=extras)]


def star_seeds(folder: Path) -> list[Seed]:
    extras = _movie_extras(folder)
    text = ("# RELION\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n1 300.0\n\n"
            "data_movies\n\nloop_\n_rlnMicrographMovieName #1\n_rlnOpticsGroup #2\n"
            "a.mrc 1\nb.mrcz 1\n\"c.tif\" 1\n\n")
    return [Seed("movies.star", text.encode(), text=True, extras=extras)]


def suite_seeds(folder: Path) -> list[Seed]:
    from mrczbench.bench.suites import suite_paths
    paths = suite_paths()
    return [Seed(f"{name}.toml", paths[name].read_bytes(), text=True)
            for name in ("dose-sweep", "level-sweep", "metadata") if name in paths]


def dataset_seeds(folder: Path) -> list[Seed]:
    from mrczbench.movies.datasets import spec_paths
    paths = spec_paths()
    return [Seed(f"{name}.toml", paths[name].read_bytes(), text=True)
            for name in ("quick-counting", "quick-eer", "k2-specimen") if name in paths]


def results_seeds(folder: Path) -> list[Seed]:
    from mrczbench.store import dumps_row, make_row
    rows = []
    for number, codec in enumerate(("zstd", "lz4", "zlib")):
        rows.append(make_row(run_id="fuzz", suite="fuzz", case_id=f"case{number}", dataset="quick",
                             format="mrcz", label=f"mrcz {codec}-1", params={"codec": codec},
                             op="encode", sample=0, seconds=0.01 * (number + 1),
                             raw_bytes=1000, stored_bytes=400 + number, ratio=0.4))
    text = "".join(dumps_row(row) + "\n" for row in rows)
    return [Seed("run.jsonl", text.encode(), text=True)]


def make_seeds(group: str, folder: Path) -> list[Seed]:
    """The seeds of one group (a key of SEED_GROUPS), their files made in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return SEED_GROUPS[group](folder)


SEED_GROUPS = {
    "mrc": mrc_seeds, "mrcz": mrcz_seeds, "tiff": tiff_seeds, "eer": eer_seeds,
    "npy": npy_seeds, "framed": framed_seeds, "lst": list_seeds, "star": star_seeds,
    "suite": suite_seeds, "dataset": dataset_seeds, "results": results_seeds,
}


__all__ = ["Region", "Field", "Seed", "SEED_GROUPS", "make_seeds", "encode_eer_frame",
           "write_eer", "EER_GROUPING"]
