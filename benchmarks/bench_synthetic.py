"""Synthetic movie generation (mrczbench.movies.synthetic): 10 frames of 1024x1024."""
from benchmarks import FRAMES, SHAPE, require


class Poisson:
    params = ([0.5, 4.0], ["int8", "uint16"])
    param_names = ["dose", "dtype"]

    def setup(self, dose, dtype):
        self.synthetic = require("mrczbench.movies.synthetic")

    def time_poisson_movie(self, dose, dtype):
        self.synthetic.poisson_movie(FRAMES, SHAPE, dose, seed=0, dtype=dtype)

    def time_iter_poisson_frames(self, dose, dtype):
        for frame in self.synthetic.iter_poisson_frames(FRAMES, SHAPE, dose, seed=0, dtype=dtype):
            pass
