"""Issue 27: no false "safe to delete", no command that destroys what it reads. Real files,
real CLI calls (in-process and as subprocesses), real kills."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mrczbench import mrcz
from mrczbench import store as results
from mrczbench.cli import main
from mrczbench.convert import manifest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def movie(seed, frames=3, shape=(32, 24)):
    return np.random.default_rng(seed).poisson(1.0, (frames, *shape)).astype(np.int8)


@pytest.fixture
def movies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "M").mkdir()
    for i in range(3):
        mrcz.write(tmp_path / f"M/m{i}.mrc", movie(i))
    return tmp_path


def stdout_and_code(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- 1. verify checks every movie of the batch --------------------------------------------------
def test_verify_never_passes_an_empty_partial_or_foreign_manifest(movies, capsys):
    assert main(["convert", "M", "--out", "C"]) == 0
    assert main(["verify", "C"]) == 0
    lines = (movies / "C/manifest.jsonl").read_text().splitlines()
    # a manifest cut short (kill -9, a full disk, a careless `: >`) never verifies
    (movies / "C/manifest.jsonl").write_text("")
    code, out, err = stdout_and_code(capsys, ["verify", "C"])
    assert code != 0 and "lists no movies" in err
    # a partial manifest: given the movies, every one without a record is named
    (movies / "C/manifest.jsonl").write_text("\n".join(lines[:4]) + "\n")  # 3 planned + 1 done
    code, out, _ = stdout_and_code(capsys, ["verify", "C"])
    assert code == 1 and out.count("NOT CONVERTED") == 2
    (movies / "C/manifest.jsonl").write_text(lines[-1] + "\n")  # one done record only
    code, out, _ = stdout_and_code(capsys, ["verify", "C", "M"])
    assert code == 1 and out.count("NOT CONVERTED") == 2 and "not in the manifest" in out
    # a foreign manifest (another folder's): its outputs are not here
    (movies / "D").mkdir()
    (movies / "D/manifest.jsonl").write_text("\n".join(lines) + "\n")
    code, out, _ = stdout_and_code(capsys, ["verify", "D"])
    assert code == 1 and out.count("missing") == 3
    # a shard part that never ran
    assert main(["convert", "M", "--out", "S", "--shard", "0/2"]) == 0
    code, out, _ = stdout_and_code(capsys, ["verify", "S"])
    assert code == 1 and "MISSING manifest.part-1-of-2.jsonl" in out


def test_verify_after_kill_9_during_convert_names_every_unconverted_movie(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(6):
        mrcz.write(folder / f"m{i}.mrc", movie(i, frames=8, shape=(384, 384)))
    out = tmp_path / "C"
    command = [sys.executable, "-m", "mrczbench", "convert", str(folder), "--out", str(out),
               "--jobs", "1", "--codec", "zlib", "--level", "9"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not part.exists() or '"done"' not in part.read_text()):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = [r for r in manifest.records(out) if r["status"] == "done"]
    assert 1 <= len(done) < 6, "killed part-way"
    result = subprocess.run([sys.executable, "-m", "mrczbench", "verify", str(out)], env=ENV,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout.count("NOT CONVERTED") == 6 - len(done)
    assert f"verified {len(done)} of 6 movies" in result.stdout
    for record in done:  # nothing lost: every recorded output is whole
        np.testing.assert_array_equal(mrcz.read(out / record["output"]), mrcz.read(record["input"]))


# --- 2 (and issue 26 item 1). no command writes over one of its inputs --------------------------
def _result_run(tmp_path) -> Path:
    from test_compare import two_runs
    base, new = two_runs(tmp_path)
    return base, new


def test_no_command_writes_over_its_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base, new = _result_run(tmp_path)
    before = base.read_bytes()
    for target in (base, tmp_path / "hard.jsonl", tmp_path / "soft.jsonl"):
        if target.name == "hard.jsonl":
            os.link(base, target)
        elif target.name == "soft.jsonl":
            target.symlink_to(base)
        code, _, err = stdout_and_code(capsys, ["compare", str(base), str(new), "--csv", str(target)])
        assert code == 2 and "refusing to write over an input" in err, err
        assert base.read_bytes() == before
    # estimate-gain X --out X (same file, and under a hard link)
    gain_movie = tmp_path / "f.mrc"
    mrcz.write(gain_movie, np.ones((2, 8, 8), np.float32))
    original = gain_movie.read_bytes()
    os.link(gain_movie, tmp_path / "g.mrc")
    for out in (gain_movie, tmp_path / "g.mrc"):
        code, _, err = stdout_and_code(capsys, ["estimate-gain", str(gain_movie), "--out", str(out)])
        assert code == 2 and "refusing to write over an input" in err
        assert gain_movie.read_bytes() == original
        assert not (tmp_path / f"{out.stem}_state.npz").exists()
    # compress / decompress through a hard link or a symlink to the input
    os.link(gain_movie, tmp_path / "h.mrcz")
    (tmp_path / "s.mrc").symlink_to(gain_movie)
    assert stdout_and_code(capsys, ["compress", str(gain_movie), str(tmp_path / "h.mrcz")])[0] == 2
    assert stdout_and_code(capsys, ["decompress", str(gain_movie), str(tmp_path / "s.mrc")])[0] == 2
    assert gain_movie.read_bytes() == original
    # report: a file of the report folder that is a hard link to a result file
    (tmp_path / "R").mkdir()
    os.link(base, tmp_path / "R/summary.csv")
    code, _, err = stdout_and_code(capsys, ["report", str(base), "--out", str(tmp_path / "R")])
    assert code == 2 and base.read_bytes() == before
    # convert: a STAR list inside --out whose name the rewritten list would take
    (tmp_path / "M").mkdir()
    mrcz.write(tmp_path / "M/m.mrc", movie(0))
    (tmp_path / "O").mkdir()
    star = tmp_path / "O/movies.star"
    star.write_text("# written by mrczbench convert\ndata_movies\nloop_\n_rlnMicrographMovieName #1\n"
                    f"{tmp_path / 'M/m.mrc'}\n")
    text = star.read_text()
    code, _, err = stdout_and_code(capsys, ["convert", str(star), "--out", str(tmp_path / "O")])
    assert code == 2 and "refusing to write over an input" in err
    assert star.read_text() == text


# --- 3. report removes only what it can prove it wrote ------------------------------------------
def test_report_never_deletes_a_file_a_forged_manifest_lists(tmp_path, capsys):
    from mrczbench.analysis.report import writer
    base, _ = _result_run(tmp_path)
    out = tmp_path / "R"
    out.mkdir()
    victim = out / "thesis.md"
    victim.write_text("two years of work\n")
    other = out / "notes.csv"
    other.write_text("mine\n")
    (out / writer.MANIFEST).write_text(json.dumps(
        {"written_by": writer.MANIFEST_OWNER, "files": {"thesis.md": None, "notes.csv": [None]}}))
    assert main(["report", str(base), "--out", str(out)]) == 0
    assert victim.read_text() == "two years of work\n" and other.read_text() == "mine\n"
    # a report's own stale file (digest recorded) is still removed
    recorded = json.loads((out / writer.MANIFEST).read_text())["files"]
    assert all(isinstance(d, list) and len(d) == 1 and len(d[0]) == 64 for d in recorded.values())


# --- 4. a refused run --resume touches nothing; harness errors never pass -----------------------
def test_a_refused_resume_touches_nothing_and_a_lost_scratch_fails_the_run(tmp_path):
    suite = tmp_path / "meta.toml"
    suite.write_text(textwrap.dedent("""
        ops = ["encode", "write", "read_warm"]
        repeats = 400
        min_batch_seconds = 0.01
        [dataset]
        kind = "metadata"
        megabytes = 0.1
        [format]
        format = "metadata"
        level = 1
        [sweep]
        serializer = ["json", "msgpack"]
        """))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mrczbench", "run", "--suite", str(suite), "--out", str(out),
               "--no-progress"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=ENV, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                list(out.glob("*.jsonl")) and list(out.glob("*.jsonl"))[0].stat().st_size):
            time.sleep(0.02)
        run_file = list(out.glob("*.jsonl"))[0]
        scratch = next(out.glob(".scratch-*"))
        second = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True,
                                text=True, env=ENV, timeout=120)
        assert first.poll() is None, "the first run must still be running"
        assert second.returncode == 2 and "another mrczbench run is writing" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert scratch.is_dir()  # the refused run left the running one's scratch alone
        size = run_file.stat().st_size
        while time.monotonic() < deadline and run_file.stat().st_size < size + 1000:
            time.sleep(0.02)
        assert not any(row.get("error") for row in results.iter_rows(run_file))
        # the scratch removed under the running run: it stops, non-zero, with no error rows
        shutil.rmtree(scratch)
        first.wait(timeout=120)
        assert first.returncode == 2, first.stderr.read()
        assert "scratch folder disappeared" in first.stderr.read()
        assert not any(row.get("error") for row in results.iter_rows(run_file))
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


# --- 5. stored checksums are checked on every read that writes a new file -----------------------
def test_a_corrupt_checksummed_file_is_never_copied(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "a.mrcz"
    mrcz.write(source, movie(3, frames=4, shape=(64, 64)), codec="zstd", checksum=True)
    clean = source.read_bytes()
    for position in range(len(clean) - 1, len(clean) - 400, -1):  # a flip that still decodes
        data = bytearray(clean)
        data[position] ^= 0x04
        source.write_bytes(bytes(data))
        try:
            mrcz.read(source)
            break
        except mrcz.MRCZError:
            continue
    else:
        pytest.fail("no flip in the last chunk decodes")
    for argv in (["decompress", "a.mrcz", "b.mrc"], ["compress", "a.mrcz", "c.mrcz", "--checksum"]):
        code, _, err = stdout_and_code(capsys, argv)
        assert code == 2 and "stored SHA-256" in err, err
    assert not (tmp_path / "b.mrc").exists() and not (tmp_path / "c.mrcz").exists()
    code, _, _ = stdout_and_code(capsys, ["convert", "a.mrcz", "--out", "C", "--checksum"])
    assert code == 1 and not (tmp_path / "C/a.mrcz").exists()
    assert "stored SHA-256" in manifest.records(tmp_path / "C")[0]["error"]


# --- 6. verify stays in its folder; corruption is one line per movie ----------------------------
def test_verify_reads_nothing_outside_its_folder(movies, capsys):
    assert main(["convert", "M", "--out", "C"]) == 0
    records = manifest.records(movies / "C")
    secret = movies / "secret.mrcz"
    secret.write_bytes(b"root:SECRETHASH:19000:0:99999:7:::\n")
    (movies / "C/link.mrcz").symlink_to(secret)
    forged = [{**records[0], "output": str(secret)}, {**records[1], "output": "../secret.mrcz"},
              {**records[2], "output": "link.mrcz"}]
    (movies / "C/manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in forged))
    code, out, err = stdout_and_code(capsys, ["verify", "C"])
    assert code == 1 and out.count("outside") == 3
    assert "SECRET" not in out + err and "19000" not in out + err


def test_verify_reports_a_corrupt_tiff_strip_in_one_line(movies, capsys):
    assert main(["convert", "M", "--out", "T", "--format", "tiff", "--compression", "lzw"]) == 0
    target = movies / "T/M/m1.tif"
    with tifffile.TiffFile(target) as tif:
        page = tif.pages[1]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    data = bytearray(target.read_bytes())
    for i in range(offset + 2, offset + count - 2, 3):  # garble the LZW codes
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    code, out, err = stdout_and_code(capsys, ["verify", "T", "--no-progress"])
    assert code == 1, err
    bad = [line for line in out.splitlines() if line.startswith("BAD")]
    assert len(bad) == 1 and bad[0].startswith("BAD M/m1.tif:") and not err.strip()


# --- 7. deep nesting and wrong-typed rows: one line, exit 2 -------------------------------------
def test_deeply_nested_toml_is_one_line(tmp_path, capsys):
    suite = tmp_path / "deep.toml"
    suite.write_text("a = " + "[" * 50000 + "]" * 50000 + "\n")
    for argv in (["suites", "show", str(suite)], ["run", "--suite", str(suite), "--out", str(tmp_path / "o")]):
        code, _, err = stdout_and_code(capsys, argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "nested too deeply" in err


@pytest.mark.parametrize("change", [{"sample": "abc"}, {"case_id": ["x"]}, {"op": None, "drop": "op"},
                                    {"sample": True}])
def test_wrong_typed_result_rows_are_one_line_everywhere(tmp_path, capsys, change):
    base, new = _result_run(tmp_path)
    rows = [json.loads(line) for line in base.read_text().splitlines()]
    if change.get("drop"):
        del rows[3][change["drop"]]
    else:
        rows[3].update(change)
    base.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for argv in (["report", str(base), "--out", str(tmp_path / "R")], ["compare", str(base), str(new)]):
        code, _, err = stdout_and_code(capsys, argv)
        assert code == 2 and ":4: not a result row" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(results.ResultsError, match=":4: not a result row"):
        results.case_progress(base)


# --- 8. suite values checked before anything runs; a case-count cap -----------------------------
SUITE_HEAD = """ops = ["encode"]
[dataset]
kind = "counting"
frames = 2
shape = [16, 16]
[format]
format = "mrcz"
"""


@pytest.mark.parametrize("line,needle", [
    ("min_batch_seconds = inf", "min_batch_seconds"), ("min_batch_seconds = 1e308", "min_batch_seconds"),
    ("min_batch_seconds = nan", "min_batch_seconds"), ("timeout = nan", "timeout"),
    ("[sweep]\ndose = [inf]", "sweep.dose"), ("[sweep]\ndose = [nan]", "sweep.dose"),
    ("[sweep]\nthreads = [100000]", "at most 256|1-256"),
    ("[sweep]\nshape = [[2147483647, 1]]\nframes = [1000]", "GiB of memory"),
])
def test_bad_suite_values_are_one_line_before_anything_runs(tmp_path, capsys, line, needle):
    head, _, tail = SUITE_HEAD.partition("[dataset]")
    top, table = (line, "") if not line.startswith("[") else ("", line)
    suite = tmp_path / "s.toml"
    suite.write_text(head + top + "\n[dataset]" + tail + table + "\n")
    for argv in (["suites", "show", str(suite)], ["run", "--suite", str(suite), "--out", str(tmp_path / "o")]):
        code, _, err = stdout_and_code(capsys, argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert any(part in err for part in needle.split("|")), err
    assert not (tmp_path / "o").exists()


def test_a_huge_sweep_is_refused_at_once_naming_the_limit(tmp_path, capsys, monkeypatch):
    values = ", ".join(str(i) for i in range(100))
    suite = tmp_path / "huge.toml"
    suite.write_text(SUITE_HEAD + f"[sweep]\nseed = [{values}]\nlevel = [{', '.join(['1'] * 1)}]\n"
                     f"dose = [{values}]\nframes = [{', '.join(str(i) for i in range(1, 101))}]\n"
                     f"blocksize = [{', '.join(str(1024 * i) for i in range(1, 101))}]\n")
    # in a subprocess with a deadline: listing 10^8 cases would take ~13 days
    shown = subprocess.run([sys.executable, "-m", "mrczbench", "suites", "show", str(suite)],
                           env=ENV, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 2 and "100,000,000 cases" in shown.stderr
    assert "MRCZBENCH_MAX_CASES" in shown.stderr and len(shown.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("MRCZBENCH_MAX_CASES", "100000000")
    small = tmp_path / "small.toml"
    small.write_text(SUITE_HEAD + "[sweep]\nlevel = [1, 2]\n")
    assert main(["suites", "show", str(small)]) == 0


# --- 9. hostile labels in figures; a folder holding a symlink to a movie elsewhere --------------
def test_mathtext_in_a_label_is_plain_text_in_the_report(tmp_path, capsys):
    from test_report import RunWriter
    run = RunWriter(tmp_path, "dose-sweep")
    run.case(label="$\\undefinedmacro{$ x")
    run.case(label="mrcz lz4-1", codec="lz4")
    folder = run.save()
    code, _, err = stdout_and_code(capsys, ["report", str(folder), "--out", str(tmp_path / "R")])
    assert code == 0, err
    svgs = list((tmp_path / "R").glob("*.svg"))
    assert svgs and any("undefinedmacro" in svg.read_text() for svg in svgs)


def test_a_folder_input_with_a_symlink_to_a_movie_elsewhere_converts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    mrcz.write(tmp_path / "elsewhere/x.mrc", movie(7))
    (tmp_path / "M").mkdir()
    (tmp_path / "M/link.mrc").symlink_to(tmp_path / "elsewhere/x.mrc")
    assert main(["convert", "M", "--out", "O"]) == 0
    np.testing.assert_array_equal(mrcz.read(tmp_path / "O/M/link.mrcz"), movie(7))
    assert (tmp_path / "elsewhere/x.mrc").is_file() and not (tmp_path / "O/elsewhere").exists()


# --- 10. recommend --data: no float64 copy of a frame, a dark movie named -----------------------
def test_recommend_measures_the_dose_without_copying_frames(tmp_path, capsys):
    import tracemalloc
    from mrczbench.commands.recommend import measure_movies
    path = tmp_path / "big.mrc"
    frame = np.ones((2048, 2048), np.int8)
    mrcz.write(path, np.stack([frame] * 2), codec=None)
    tracemalloc.start()
    facts = measure_movies([str(path)], frames=2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert facts["dose"] == 1.0
    assert peak < 3 * frame.nbytes  # a float64 copy alone is 8 x the frame
    dark = tmp_path / "dark.mrc"
    mrcz.write(dark, np.zeros((2, 16, 16), np.int8), codec=None)
    code, _, err = stdout_and_code(capsys, ["recommend", "--data", str(dark), "--out", str(tmp_path / "o")])
    assert code == 2 and "is 0.0, not a dose" in err and "--dose" in err
    assert "empty movie" not in err


# --- 11. contradictory flags refused up front ---------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["convert", "M", "--out", "X", "--format", "tiff", "--checksum"], "--checksum: MRCZ only"),
    (["convert", "M", "--out", "X", "--blocksize", "5"], "--blocksize"),
    (["convert", "M", "--out", "X", "--format", "tiff", "--blocksize", "4096"], "--blocksize: MRCZ only"),
    (["run", "--suite", "metadata", "--quick", "--profile", "reference", "--out", "X"], "contradict"),
    (["suites", "show", "metadata", "--quick", "--profile", "full"], "contradict"),
    (["estimate-gain", "M/m0.mrc", "--out", "g.mrcz"], "name it .mrc"),
])
def test_contradictory_flags_are_refused_before_any_work(movies, capsys, argv, needle):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (movies / "X").exists() and not list(movies.glob("g*"))


# --- 12. CSV/TSV cells a spreadsheet would run as formulas --------------------------------------
def test_csv_and_tsv_cells_are_safe_from_formula_injection(tmp_path, monkeypatch, capsys):
    import csv
    from test_compare import two_runs
    monkeypatch.chdir(tmp_path)
    base, new = two_runs(tmp_path)
    for run in (base, new):
        run.write_text(run.read_text().replace('"mrcz zstd-1"', '"=HYPERLINK(\\"http://x\\")"'))
    main(["compare", str(base), str(new), "--csv", "c.csv"])
    main(["report", str(base), "--out", "R"])
    mrcz.write(tmp_path / "@evil.mrc", movie(1))
    mrcz.write(tmp_path / "-cmd.mrc", movie(2))
    assert main(["convert", "@evil.mrc", "./-cmd.mrc", "--out", "C"]) == 0
    tables = [(tmp_path / "c.csv", ","), *[(p, ",") for p in (tmp_path / "R").glob("*.csv")],
              (tmp_path / "C/manifest.tsv", "\t")]
    seen = 0
    for path, delimiter in tables:
        for row in csv.reader(path.read_text().splitlines(), delimiter=delimiter):
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), (path, cell)
                if cell.startswith("-"):
                    float(cell)  # only numbers may start with '-'
                seen += cell.startswith("'=") or cell.startswith("'-") or cell.startswith("'@")
    assert seen >= 4


# --- 13. errors are one line on stderr -----------------------------------------------------------
def test_disk_full_names_the_file_and_errors_come_alone(movies):
    import resource

    def small_files():  # writes past 300 bytes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    result = subprocess.run([sys.executable, "-m", "mrczbench", "convert", "M", "--out", "C"],
                            cwd=movies, env=ENV, capture_output=True, text=True,
                            preexec_fn=small_files, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "C/manifest.jsonl: cannot write: file too large" in result.stderr
    # a manifest name that is a device is refused at once, never read or written
    (movies / "D").mkdir()
    (movies / "D/manifest.jsonl").symlink_to("/dev/full")
    result = subprocess.run([sys.executable, "-m", "mrczbench", "convert", "M", "--out", "D"],
                            cwd=movies, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_python_warnings_are_one_line(movies, capsys):
    path = movies / "trailing.mrc"
    mrcz.write(path, movie(1), codec=None)
    with open(path, "ab") as handle:
        handle.write(b"1234567")
    code, _, err = stdout_and_code(capsys, ["compress", str(path), str(movies / "t.mrcz")])
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("mrczbench: warning: ") for line in lines), err
    assert not any(".py:" in line for line in lines)


def test_datasets_generate_failure_is_one_line(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o500)
    if os.access(cache, os.W_OK):
        pytest.skip("running as a user that writes anywhere")
    code, _, err = stdout_and_code(capsys, ["datasets", "generate", "poisson-d1", "--cache-dir", str(cache)])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
