"""`mrczbench estimate-gain`: the gain of gain-normalised float32 movies (the estimation is
mrczbench.movies.gain's)."""
from __future__ import annotations

import sys
from pathlib import Path

from mrczbench.argtypes import add_eer_grouping, non_negative_number, positive_int
from mrczbench.movies import gain
from mrczbench.movies.readers import open_movies


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "estimate-gain", help="estimate the gain of gain-normalised float32 movies",
        description="Estimate the per-pixel gain of gain-normalised float32 movies (K2/K3 saved "
        "by EPU/DigitalMicrograph) as relion_convert_to_tiff --estimate_gain does: the smallest "
        "positive value per pixel, reliable after --thresh consistent observations. Prints one "
        "line per frame (#Changed #Mismatch #Negative #Unreliable). Writes OUT (float32 MRC, 1.0 "
        "at unreliable pixels), OUT_reliability.mrc (uint8, 1 = reliable), and OUT_state.npz "
        "after every movie: run the same command again to resume; use the gain with "
        "`mrczbench compress IN OUT.mrcz --gain OUT`.")
    parser.add_argument("movies", metavar="MOVIES", nargs="+",
                        help="movie files (.mrc/.mrcs/.mrcz/.tif/.npy), folders, .lst lists or "
                        "RELION .star files (rlnMicrographMovieName)")
    parser.add_argument("--out", required=True, metavar="GAIN.mrc", help="gain reference to write")
    parser.add_argument("--thresh", type=positive_int, default=50, metavar="N",
                        help="consistent observations before a pixel is reliable (default: 50)")
    parser.add_argument("--tolerance", type=non_negative_number, default=1e-4, metavar="T",
                        help="|gain x round(v/gain) - v| above this is a mismatch (default: 1e-4)")
    parser.add_argument("--restart", action="store_true",
                        help="ignore a saved state and start again")
    add_eer_grouping(parser)
    parser.set_defaults(func=cmd_estimate_gain)


def cmd_estimate_gain(args) -> int:
    from mrczbench.atomic import check_target, protect_inputs
    out = Path(args.out)
    if out.suffix.lower() == ".mrcz":
        raise gain.GainError(f"--out {out}: the gain reference is plain MRC (RELION reads it so): "
                             f"name it .mrc")
    if not out.resolve().parent.is_dir():
        raise gain.GainError(f"{out}: folder {out.resolve().parent} does not exist")
    state = gain.state_path(out)
    movies = open_movies(args.movies, eer_grouping=args.eer_grouping)
    # every output refused now, before the state file is written: an input, a folder, a device
    outputs = [out, gain.reliability_path(out), state]
    protect_inputs([*args.movies, *(movie.path for movie in movies)], outputs)
    for target in outputs:
        check_target(target)
    if args.restart and state.exists():
        state.unlink()
    done = set()
    if state.exists():
        done = set(gain.GainEstimate.load(state, args.thresh, args.tolerance).movies_done)
        print(f"resuming from {state}: {len(done)} movie(s) done", flush=True)
    total = sum(m.shape[0] for m in movies if gain.movie_key(m) not in done)
    seen = [0]

    def progress(stats: gain.FrameStats) -> None:
        seen[0] += 1
        print(f"{stats.line()}  [{seen[0]}/{total} frames]", flush=True)

    try:
        result = gain.estimate(movies, args.thresh, args.tolerance, state=state, progress=progress)
    except KeyboardInterrupt:  # as RELION: stop any time, the finished movies count
        if state.exists():
            saved = gain.GainEstimate.load(state, args.thresh, args.tolerance)
            gain.write_reference(out, saved)
            print(f"interrupted: wrote {out} from the {len(saved.movies_done)} finished movie(s);"
                  " run the same command again to continue", file=sys.stderr, flush=True)
        raise
    gain_file, reliability = gain.write_reference(out, result)
    print(f"{gain_file}: gain reference ({result.frames} frames, {len(result.movies_done)} movies,"
          f" {result.unreliable} of {result.minimum.size} pixels unreliable); {reliability}: "
          f"reliability map; state {state}")
    warning = gain.too_few_frames(result)
    if warning:
        print(f"mrczbench estimate-gain: warning: {warning}", file=sys.stderr, flush=True)
    return 0
