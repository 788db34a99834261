import io

from distill.gen.progress import GenProgress


def test_not_a_terminal_prints_plain_lines_not_a_bar() -> None:
    out = io.StringIO()
    with GenProgress(total=6, label="score", stream=out, every=0.0) as bar:
        bar.advance(4, 40)
        bar.advance(2, 10)
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "score: 4/6 (67%)",
        "score: 6/6 (100%)",
        "score: 6/6 (100%)",  # the closing line
    ]
    assert "ETA" in lines[0] and "ETA" not in lines[-1]
    assert all(" tok/s" in line for line in lines)
    assert "\x1b" not in out.getvalue()  # no control codes in a log file


def test_disabled_prints_nothing() -> None:
    out = io.StringIO()
    with GenProgress(total=2, enabled=False, stream=out, every=0.0) as bar:
        bar.advance(2, 5)
    assert out.getvalue() == ""
