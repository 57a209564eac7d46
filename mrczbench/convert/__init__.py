"""Batch conversion of a facility's movies (`mrczbench convert`, `mrczbench verify`).

Data flows one way: `inputs` expands MOVIES (files, globs, folders, .lst, RELION .star) into
tasks with mirrored output paths -> `job.convert_one` converts, verifies and checksums one
movie (in a local process pool or on Dask workers; the same function) -> `manifest` appends
one JSON line per movie (JSONL + a TSV copy), one part per shard -> `verify` re-reads every
output against the merged manifest.
"""
