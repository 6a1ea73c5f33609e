"""What an experiment shows on the terminal: one live line per stage, failures as they happen, and a
summary table at the end (rich)."""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from flambe.experiment.progress import ProgressState, StageRecord, VariantRecord, last_line


def _fmt(metric: Optional[float]) -> str:
    return "-" if metric is None else format(metric, ".4g")


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ExperimentView:
    """Listens to a :class:`ProgressState` and draws it.

    Parameters
    ----------
    progress : ProgressState
        The run to show.
    console : rich.console.Console, optional
        Where to draw (standard output by default).
    """

    def __init__(self, progress: ProgressState, console: Any = None) -> None:
        from rich.console import Console
        self.progress = progress
        self.console = console or Console(highlight=False)
        self._live: Any = None
        self._stage: Optional[StageRecord] = None
        progress.listeners.append(self.on_event)

    def _line(self) -> Any:
        from rich.text import Text
        stage = self._stage
        counts = stage.counts()
        total = len(stage.variants)
        best = stage.best()
        text = Text()
        text.append(f"{stage.name}", style="bold")
        text.append(f"  {counts['done']}/{total} done", style="green")
        text.append(f" · {counts['running']} running · {counts['pending']} pending")
        text.append(f" · {counts['failed']} failed", style="red" if counts["failed"] else "")
        if best is not None:
            arrow = "↓" if stage.lower_is_better else "↑"
            text.append(f" · best {arrow} {_fmt(best.metric)} ({best.variant.name})", style="cyan")
        text.append(f" · {_elapsed(time.time() - (stage.started or time.time()))}", style="dim")
        return text

    def __rich__(self) -> Any:
        return self._line()

    def start_stage(self, stage: str) -> None:
        from rich.live import Live
        self._stage = self.progress.stages[stage]
        if self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def stop_stage(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self._stage is not None:
            self.console.print(self._line())  # not a terminal: one line per stage, when it ends

    def on_event(self, event: str, record: VariantRecord) -> None:
        if event == "failed":
            self._failure(f"[red]✗ {record.variant.stage}/{record.variant.name} failed:[/red]", record)
        if self._live is not None:
            self._live.refresh()

    def _failure(self, head: str, record: VariantRecord) -> None:
        """A failed variant: ``head``, the line that says what went wrong, and its log path."""
        self.console.print(f"{head} {last_line(record.error or '')}\n  log: {record.log}", markup=True,
                           soft_wrap=True)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False)

    def summary(self) -> None:
        from rich.table import Table
        table = Table(title=f"Experiment {self.progress.name}", title_justify="left")
        for column in ("stage", "variants", "done", "failed", "best variant", "best metric"):
            table.add_column(column, overflow="fold")
        best_paths = []
        for stage in self.progress.stages.values():
            counts = stage.counts()
            best = stage.best()
            kept = f" (kept {len(stage.kept)})" if stage.kept is not None else ""
            table.add_row(stage.name, f"{len(stage.variants)}{kept}", str(counts["done"]), str(counts["failed"]),
                          best.variant.name if best else "-", _fmt(best.metric) if best else "-")
            if best is not None:
                best_paths.append(f"  {stage.name}: {os.path.relpath(best.checkpoint, self.progress.output)}")
        self.console.print(table)
        if best_paths:
            self.console.print("Best checkpoints (under the output directory):\n" + "\n".join(best_paths),
                               markup=False, soft_wrap=True)
        for record in self.progress.failures():
            self._failure(f"[red]failed[/red] {record.variant.stage}/{record.variant.name}:", record)
        self.console.print(f"Output: {self.progress.output}", markup=False)

