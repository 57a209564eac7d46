"""mrczbench.progress: one printer for long work, on a terminal and in logs."""
import io
import re
import time

from mrczbench.progress import Progress, duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_whole_lines_every_interval_and_at_the_end():
    log = io.StringIO()
    progress = Progress(4, "run", stream=log, interval=0.05)
    progress.update(0, "first")
    progress.update(1, "second")  # within the interval: not printed
    time.sleep(0.06)
    progress.update(2.5, "third", bytes_done=5 * 2**20)
    progress.update(4)
    progress.update(4)  # the end is printed once
    progress.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("run [0/4]   0%  elapsed 0:00  ETA ?") and lines[0].endswith("first")
    assert re.match(r"run \[2/4\]  62%  elapsed 0:00  ETA 0:00  [\d,]+ MiB/s  third$", lines[1])
    assert lines[2].startswith("run [4/4] 100%")


def test_a_terminal_gets_one_rewritten_line_and_a_newline_at_close():
    screen = Terminal()
    progress = Progress(2, stream=screen)
    progress.update(1, "half")
    progress.update(2)
    progress.close()
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1


def test_disabled_or_empty_work_prints_nothing():
    log = io.StringIO()
    Progress(3, stream=log, enabled=False).update(3)
    Progress(0, stream=log).update(0)
    assert log.getvalue() == ""


def test_durations_read_as_clock_times():
    assert duration(59.6) == "1:00" and duration(3599) == "59:59" and duration(3661) == "1:01:01"


def test_units_write_sizes_and_tables_one_way():
    from mrczbench.units import format_bytes, format_table
    assert [format_bytes(n) for n in (512, 1536, 3 * 2 ** 20 // 2, 5 * 2 ** 30)] == \
        ["512 bytes", "1.5 KiB", "1.5 MiB", "5.0 GiB"]
    text = format_table(["name", "n", "note"], [["a", 1, "x"], ["long", 100, ""]], align="lr",
                        rule=True)
    assert text.splitlines() == ["name    n  note", "----  ---  ----", "a       1  x",
                                 "long  100"]
