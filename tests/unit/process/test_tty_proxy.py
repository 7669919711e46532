"""The foreground proxy's copy loop: what the process wrote before it ended is not lost."""

import os
import select

from kago.process import tty


def test_output_written_just_before_the_end_is_copied(capfd):
    r, w = os.pipe()  # stands in for the pty master
    os.write(w, b"last words\n")
    try:
        tty._copy_loop(r, select, lambda: False)  # the process is already gone
    finally:
        os.close(r)
        os.close(w)
    assert capfd.readouterr().out == "last words\n"


def test_the_copy_after_the_end_is_bounded(capfd):
    r, w = os.pipe()
    os.write(w, b"y" * 4096)  # something the process left keeps writing: always readable
    reads = []
    real_read = os.read

    def one_byte(fd, _n):
        reads.append(fd)
        return real_read(fd, 1)
    try:
        os.read = one_byte
        tty._copy_loop(r, select, lambda: False)
    finally:
        os.read = real_read
        os.close(r)
        os.close(w)
    assert len(reads) == 1024
    assert capfd.readouterr().out == "y" * 1024
