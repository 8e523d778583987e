"""What the command line shows while work runs: progress bars and one line per epoch or seed."""
from __future__ import annotations

from tqdm import tqdm

from .challenge import scored
from .engine import Events


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

    def __init__(self, epochs: int, evaluated_on: str, quiet: bool):
        self.epochs, self.evaluated_on, self.quiet, self.bar = epochs, evaluated_on, quiet, None

    def epoch_start(self, epoch: int, steps: int) -> None:
        # disable=None: a bar on a terminal only, never into a log or a pipe
        self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.epochs}", unit="step", leave=False,
                        dynamic_ncols=True, disable=True if self.quiet else None)

    def step(self, step: int, loss: float, acc: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}%", refresh=False)
        self.bar.update(step - self.bar.n)

    def epoch_end(self, record: dict, checkpoint) -> None:
        self.bar.close()
        print(epoch_line(record, self.evaluated_on), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RunProgress:
    """`tinycnn run`: one bar over every step of every seed, and each seed's epoch lines."""

    def __init__(self, total_steps: int, description: str, evaluated_on: str):
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True, desc=description, disable=None)
        self.evaluated_on = evaluated_on

    def __call__(self, seed: int, payload: tuple) -> None:
        kind, value = payload
        if kind == "steps":
            self.bar.update(value)
        else:
            tqdm.write(f"seed {seed} " + epoch_line(value, self.evaluated_on))

    def close(self) -> None:
        self.bar.close()
