"""Using a trained model: its test-set assessment, and predictions on pictures of digits.

`assess` evaluates exactly as training evaluated (same batches, normalisation and memory format),
so a run's saved weights reproduce the accuracy its metrics record, to the last image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tinycnn.ship.weights import Weights, model_input
from tinycnn.train.augment import BatchLoader
from tinycnn.train.data import MNIST
from tinycnn.train.engine import EVAL_BATCH, evaluate


@dataclass
class Assessment:
    accuracy: float               # % of the test images
    loss: float                   # mean cross-entropy
    per_class: list[float]        # % correct per true digit
    confusion: np.ndarray         # (true, predicted) counts
    misclassified: list[list[int]]  # [index, true, predicted]

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "per_class": self.per_class,
                "confusion": self.confusion.tolist(), "misclassified": len(self.misclassified)}


def misclassified(predicted: np.ndarray, labels: np.ndarray) -> list[list[int]]:
    """[index, true label, predicted label] of every wrong prediction."""
    wrong = np.nonzero(predicted != labels)[0]
    return [[int(i), int(labels[i]), int(predicted[i])] for i in wrong]


def assess(weights: Weights, data: MNIST) -> Assessment:
    channels_last = weights.meta.get("channels_last", True)
    model = weights.model.to(memory_format=torch.channels_last) if channels_last else weights.model
    loader = BatchLoader(torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels), EVAL_BATCH,
                         weights.meta["mean"], weights.meta["std"], channels_last=channels_last)
    result = evaluate(model, loader)
    labels, predicted = data.test_labels, result["predicted"]
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = [float(100.0 * confusion[d, d] / confusion[d].sum()) for d in range(10)]
    return Assessment(result["acc"], result["loss"], per_class, confusion, misclassified(predicted, labels))


@torch.inference_mode()
def probabilities(weights: Weights, images: np.ndarray) -> np.ndarray:
    """(N, 10) class probabilities for (N, 28, 28) uint8 MNIST-style inputs."""
    logits = weights.model.eval()(model_input(torch.from_numpy(np.ascontiguousarray(images)), weights.meta))
    return torch.softmax(logits, dim=1).numpy()
