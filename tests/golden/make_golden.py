"""Regenerate the golden files that pin the MRC/MRCZ format (see tests/test_mrcz_golden.py).

    .venv/bin/python tests/golden/make_golden.py

The `pm_*` files are written by python-mrcz (the reference implementation; the committed ones
by mrcz 0.6.0 with one thread, so they are reproducible byte for byte). The `ours_*` files
pin the parts of the format that are mrczbench's own choices (the "clevel" metadata key,
msgpack metadata under exttyp b'mpk ', 4-bit odd-width rows, the "dtype": "uint8" key;
and IMOD's unsigned-bytes stamp; ours_plain_uint8.mrc is a uint8 file from before both, which
reads back as int8, and ours_plain_uint8_imod.mrc carries only the IMOD stamp). Only regenerate
them on purpose:
a diff here means the on-disk format changed.
"""
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
DTYPES = ("int8", "int16", "uint16", "float32", "complex64")
CODECS = ("blosclz", "lz4", "lz4hc", "zlib", "zstd")
META = {"dose": 1.5, "detector": "K2", "frames": [0, 1]}


def pattern(dtype: str, shape=(2, 16, 24)) -> np.ndarray:
    """Deterministic test pixels (no RNG, so any numpy version gives the same values)."""
    values = (np.arange(int(np.prod(shape))).reshape(shape) * 7) % 23
    if dtype == "complex64":
        return (values + 1j * (values % 5)).astype(np.complex64)
    return values.astype(dtype)


def golden_cases():
    """(file name, dtype, python-mrcz writeMRC keyword arguments)."""
    for dtype in DTYPES:
        yield f"pm_plain_{dtype}.mrc", dtype, {}
        yield f"pm_zstd_{dtype}.mrcz", dtype, {"compressor": "zstd"}
    for codec in CODECS:
        yield f"pm_{codec}_int8.mrcz", "int8", {"compressor": codec, "clevel": 3}
    yield "pm_zstd_int16_meta.mrcz", "int16", {"compressor": "zstd", "meta": META,
                                               "voltage": 300.0, "C3": 2.7, "gain": 1.5}
    yield "pm_plain_int16_be.mrc", "int16", {"endian": "be"}
    yield "pm_zstd_int16_be.mrcz", "int16", {"compressor": "zstd", "endian": "be"}
    yield "pm_plain_uint4.mrc", "int8", {"dtype": "uint4"}


def main() -> None:
    import mrcz as python_mrcz

    from mrczbench import mrcz

    written = set()
    for name, dtype, kwargs in golden_cases():
        if name in written:
            continue
        written.add(name)
        python_mrcz.writeMRC(pattern(dtype) % 16 if "uint4" in name else pattern(dtype),
                             str(HERE / name), pixelsize=[0.1, 0.1, 0.1], n_threads=1, **kwargs)
    mrcz.write(HERE / "ours_zstd_int16_clevel.mrcz", pattern("int16"), codec="zstd", level=5,
               threads=1, meta=META)
    mrcz.write(HERE / "ours_lz4_float32_msgpack.mrcz", pattern("float32"), codec="lz4",
               threads=1, meta=META, meta_format="msgpack")
    mrcz.write(HERE / "ours_plain_4bit_odd.mrc", pattern("uint8", (2, 5, 7)) % 16, mode101=True)
    mrcz.write(HERE / "ours_plain_uint8_imod.mrc", pattern("uint8") * 11, threads=1,
               record_dtype=False)
    legacy = bytearray((HERE / "ours_plain_uint8_imod.mrc").read_bytes())
    legacy[152:160] = bytes(8)  # as written before the IMOD stamp: no marker at all
    (HERE / "ours_plain_uint8.mrc").write_bytes(bytes(legacy))
    mrcz.write(HERE / "ours_zstd_uint8_dtype.mrcz", pattern("uint8") * 11, codec="zstd",
               threads=1)
    print(f"wrote {len(written) + 6} files to {HERE}")


if __name__ == "__main__":
    main()
