"""Peak memory of reading a large stack: streaming (iter_frames) vs reading it all.

asv's peakmem_* is the peak RSS of the whole benchmark process (interpreter, numpy and
imports included), so compare the streaming number with the read-all number: read-all
grows by the stack size (64 MiB here), streaming must stay near the baseline (one frame
is 1 MiB). The file is written by streaming in setup_cache, which asv runs in a separate
process, so writing it does not count here.
"""
import os

from benchmarks import iter_movie_frames, optional, require

LARGE_FRAMES = 64  # 64 x 1024 x 1024 int8 = 64 MiB raw


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

    def peakmem_iter_frames(self, path):
        total = 0
        for frame in self.mrcz.iter_frames(path):
            total += int(frame[0, 0])

    def peakmem_read_all(self, path):
        self.mrcz.read(path)

    def peakmem_python_mrcz_read(self, path):
        # The peer reads everything at once (readMRC has no streaming mode).
        require("mrcz").readMRC(path, n_threads=2)

    def time_iter_frames(self, path):
        for frame in self.mrcz.iter_frames(path):
            pass
