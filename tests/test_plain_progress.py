import io

from distill.plain_progress import PlainProgress, is_terminal


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_period_then_a_final_one() -> None:
    out, clock = io.StringIO(), FakeClock()
    lines = PlainProgress("gen", 200, out, every=10.0, clock=clock)
    for done, at in [(20, 104.0), (50, 110.0), (60, 115.0), (100, 121.0)]:
        clock.now = at
        lines.update(done, "5.0 tok/s")
    clock.now = 130.0
    lines.update(200, "5.0 tok/s", final=True)
    assert out.getvalue().splitlines() == [
        # 50 of 200 in 10 s: 150 left at 5 per second
        "gen: 50/200 (25%), 5.0 tok/s, 10s elapsed, ETA 30s",
        "gen: 100/200 (50%), 5.0 tok/s, 21s elapsed, ETA 21s",
        "gen: 200/200 (100%), 5.0 tok/s, 30s elapsed",
    ]


def test_a_string_buffer_is_not_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not is_terminal(io.StringIO())
    assert is_terminal(Tty())
