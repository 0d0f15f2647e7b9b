import logging

import pytest

from emoreason.console import EVERY_S_VARIABLE, RateLog, progress_interval_s


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_rate_and_eta_then_a_closing_line(caplog):
    clock = Clock()
    progress = RateLog("test scoring", 600, every_s=30, enabled=True, clock=clock)
    with caplog.at_level(logging.INFO, logger="emoreason.console"):
        for _ in range(6):
            clock.now += 10
            progress.advance(100)
        progress.finish()
    assert caplog.messages == [
        "test scoring: 300/600 rows (50%, 10.0/s, ETA 30 s)",
        "test scoring: 600/600 rows (100%, 10.0/s, ETA 0 s)",
        "test scoring: done, 600 rows in 60 s (10.0/s)",
    ]


def test_silent_in_a_terminal_and_for_runs_shorter_than_one_interval(caplog):
    clock = Clock()
    quick = RateLog("val scoring", 10, every_s=30, enabled=True, clock=clock)
    terminal = RateLog("val scoring", 10, every_s=30, enabled=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="emoreason.console"):
        clock.now = 5
        quick.advance(10)
        quick.finish()
        clock.now = 100
        terminal.advance(10)
        terminal.finish()
    assert caplog.messages == []


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(EVERY_S_VARIABLE, "2.5")
    assert progress_interval_s() == 2.5
    monkeypatch.setenv(EVERY_S_VARIABLE, "soon")
    with pytest.raises(ValueError, match=f"{EVERY_S_VARIABLE}='soon'"):
        progress_interval_s()


def test_generation_without_its_bar_logs_plain_progress_lines(monkeypatch, caplog):
    from emoreason.generation.progress import ProgressBar

    monkeypatch.setenv(EVERY_S_VARIABLE, "0")  # a line at every step
    with caplog.at_level(logging.INFO, logger="emoreason.console"):
        with ProgressBar(2, "gpt-4o-mini (online)", enabled=False) as bar:
            bar.advance(0.01)
            bar.set_completed(2)
        with ProgressBar(2, "gpt-4o-mini (online)", enabled=True) as bar:  # the bar shows it instead
            bar.advance(0.01)
    assert [m.split(" (")[0] for m in caplog.messages] == ["gpt-4o-mini"] * 3
    assert caplog.messages[0].startswith("gpt-4o-mini (online): 1/2 items (50%")
    assert caplog.messages[2].startswith("gpt-4o-mini (online): done, 2 items in")
