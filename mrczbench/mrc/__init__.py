"""The MRC/MRCZ file layer shared by the codec (`mrczbench.mrcz`), the MRC contenders
(`mrczbench.formats.mrc`, `mrczbench.formats.mrcraw`) and the benchmarks.

- `header`: the 1024-byte MRC2014 header as ONE declarative table (a numpy structured dtype,
  as mrcfile's dtypes.py, with python-mrcz's fields in the extra space), and the mode, codec,
  filter, IMOD and metadata constants, each defined once.
- `chunks`: MRCZ's blosc chunks: encode frames to chunks, read and check the chunk table,
  decode chunks into a caller's buffer.

Neither module imports blosc or blosc2 at import time (they load on first use), so
`mrczbench --help` stays fast.
"""
