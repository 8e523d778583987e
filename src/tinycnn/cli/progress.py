"""What the command line shows while work runs: progress bars and one line per epoch or seed."""
from __future__ import annotations

import warnings

from tqdm import tqdm

from tinycnn.evidence.challenge import scored
from tinycnn.evidence.experiment import EpochDone, RunEvents, StepsDone
from tinycnn.models.model import count_parameters
from tinycnn.models.spec import ModelSpec
from tinycnn.models.tables import count_macs
from tinycnn.train.engine import Events, Training

with warnings.catch_warnings():  # in Jupyter without ipywidgets: the text bar, which renders there too
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm as tqdm_auto


def epoch_line(record: dict, evaluated_on: str = "test") -> str:
    return (f"epoch {record['epoch']:2d}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.2f}% | "
            f"{evaluated_on} loss {record['eval_loss']:.4f} acc {record['eval_acc']:.2f}% | "
            f"lr {record['lr']:.4f} | {record['seconds']:.1f}s")


def scored_line(history: list[dict], evaluated_on: str = "test") -> str:
    """E.g. "last 3 test accuracies: 99.52%, 99.48%, 99.48%" (the epochs the challenge scores)."""
    values = scored(history)
    return f"last {len(values)} {evaluated_on} accuracies: " + ", ".join(f"{a:.2f}%" for a in values)


class TrainProgress(Events):
    """`tinycnn train`: a progress bar per epoch with the running loss, then the epoch's line."""

    def __init__(self, epochs: int, evaluated_on: str, quiet: bool, notebook: bool = False):
        self.epochs, self.evaluated_on, self.quiet, self.bar = epochs, evaluated_on, quiet, None
        self.notebook = notebook  # the Python API: Jupyter's own bar where it can draw one, and always a bar

    def start(self, training: Training) -> None:
        print(f"{ModelSpec.of(training.cfg).label}: {count_parameters(training.model):,} parameters, "
              f"{count_macs(training.model):,} MACs per image; {len(training.loaders.train.labels):,} training "
              f"images; evaluating on the {self.evaluated_on} set", flush=True)

    def epoch_start(self, epoch: int, steps: int) -> None:
        # the command line: a bar on a terminal only (disable=None), never into a log or a pipe; a
        # notebook's output is no terminal, so the API asks for one (a widget with ipywidgets)
        bar = tqdm_auto if self.notebook else tqdm
        self.bar = bar(total=steps, desc=f"epoch {epoch}/{self.epochs}", unit="step", leave=False, dynamic_ncols=True,
                       disable=True if self.quiet else False if self.notebook else None)

    def step(self, step: int, loss: float, acc: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}%", refresh=False)
        self.bar.update(step - self.bar.n)

    def epoch_end(self, training: Training) -> None:
        self.bar.close()
        print(epoch_line(training.history[-1], self.evaluated_on), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RunProgress(RunEvents):
    """`tinycnn run`: one bar over every step the run trains (seeds already finished are not in
    it; an interrupted seed counts only the epochs it has left), and each seed's epoch lines."""

    def __init__(self, description: str, evaluated_on: str):
        self.description, self.evaluated_on, self.bar = description, evaluated_on, None
        self.trained: list[int] = []  # the seeds this command trains (the others were complete)

    def planned(self, steps: int, seeds: list[int]) -> None:
        self.trained = seeds
        self.bar = tqdm(total=steps, unit="step", dynamic_ncols=True, disable=None,
                        desc=f"{self.description}, training seeds {', '.join(map(str, seeds)) or 'none'}")

    def message(self, seed: int, message: StepsDone | EpochDone) -> None:
        if isinstance(message, StepsDone):
            self.bar.update(message.steps)
        else:
            tqdm.write(f"seed {seed} " + epoch_line(message.record, self.evaluated_on))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
