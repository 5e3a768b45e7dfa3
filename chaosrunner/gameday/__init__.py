"""Game days: run a sequence of experiments (`run`), one at a time per state directory
(`lock`), report on the day (`report`), and start them on their cron schedules
(`schedule`)."""

from chaosrunner.app.load import LoadedGameDay, load_gameday
from chaosrunner.gameday.lock import gameday_lock
from chaosrunner.gameday.report import ExperimentOutcome, GameDayReport
from chaosrunner.gameday.run import run_gameday

__all__ = ["ExperimentOutcome", "GameDayReport", "LoadedGameDay", "gameday_lock",
           "load_gameday", "run_gameday"]
