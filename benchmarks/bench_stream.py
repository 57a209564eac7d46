"""Peak memory of reading a large stack: streaming (iter_frames) vs reading it all.

Two measures:
- peakmem_*: asv's peak RSS of the whole benchmark process (interpreter, numpy and imports
  included, about 60 MiB here). Reading all grows it by the stack size (64 MiB here);
  streaming must stay near the baseline. Good for "read-all doubled", too coarse for the
  streaming working set itself (a doubled 1 MiB frame buffer is +2 % of the RSS).
- track_traced_peak_*: the peak of the memory Python and numpy allocate during the read
  alone (tracemalloc; numpy reports its buffers to it), in MiB. Deterministic to a few bytes
  (a warm-up read runs first) and without the baseline, so a doubled streaming working set
  doubles it. Blosc's internal C buffers are not traced.
The file is written by streaming in setup_cache, which asv runs in a separate process, so
writing it does not count here.
"""
import os
import tracemalloc

from benchmarks import iter_movie_frames, optional, require

LARGE_FRAMES = 64  # 64 x 1024 x 1024 int8 = 64 MiB raw


def traced_peak_mib(func, *args):
    """Peak traced allocation (MiB) while func(*args) runs, after one untraced warm-up call
    (first-call caches and thread pools are not the read's working set)."""
    func(*args)
    tracemalloc.start()
    try:
        func(*args)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


class LargeStack:
    timeout = 300

    def setup_cache(self):
        mrcz = optional("mrczbench.mrcz")
        if mrcz is None:
            return ""  # not None: asv would then not pass the argument at all
        path = os.path.abspath("large.mrcz")
        mrcz.write(path, iter_movie_frames(LARGE_FRAMES), codec="zstd", level=1, threads=2)
        return path

    def setup(self, path):
        self.mrcz = require("mrczbench.mrcz")

    def stream(self, path):
        total = 0
        for frame in self.mrcz.iter_frames(path):
            total += int(frame[0, 0])
        return total

    def peakmem_iter_frames(self, path):
        self.stream(path)

    def peakmem_read_all(self, path):
        self.mrcz.read(path)

    def peakmem_python_mrcz_read(self, path):
        # The peer reads everything at once (readMRC has no streaming mode).
        require("mrcz").readMRC(path, n_threads=2)

    def track_traced_peak_iter_frames(self, path):
        return traced_peak_mib(self.stream, path)

    track_traced_peak_iter_frames.unit = "MiB"

    def track_traced_peak_read_all(self, path):
        return traced_peak_mib(self.mrcz.read, path)

    track_traced_peak_read_all.unit = "MiB"

    def time_iter_frames(self, path):
        for frame in self.mrcz.iter_frames(path):
            pass
