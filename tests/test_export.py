"""Exports checked by running what was written: onnxruntime for ONNX, the C compiled with
-Wall -Wextra -Werror for C, on all 10,000 test images."""
import json
import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from conftest import one_line_error, run_cli
from tinycnn.errors import ConfigError
from tinycnn.export import calibration_images, export, onnx_logits
from tinycnn.export_c import plan
from tinycnn.weights import Weights, load_model


@pytest.fixture(scope="module")
def model3():
    return load_model("Model_3")


def check_model_json(out, described):
    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk == described
    for name, facts in on_disk["files"].items():
        data = (out / name).read_bytes()
        assert facts == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert on_disk["parameters"] == 7712 and on_disk["macs_per_image"] == 968_168
    assert on_disk["input"]["shape"] == [1, 28, 28] and on_disk["normalisation"]["applied"] == "inside the model"


def test_onnx_gives_pytorchs_predictions_on_every_test_image(model3, mnist, tmp_path):
    described = export(model3, "onnx", tmp_path, mnist)
    check_model_json(tmp_path, described)
    assert described["predictions_equal_to_pytorch"] == 10_000
    assert described["test_accuracy"] == described["pytorch_test_accuracy"]
    assert described["largest_logit_difference"] < 1e-3
    for batch in (1, 7):  # the batch dimension is free
        assert onnx_logits(tmp_path / "model.onnx", mnist.test_images[:batch]).shape == (batch, 10)


def test_int8_onnx_is_smaller_and_close_calibrated_on_training_images_only(model3, mnist, tmp_path):
    described = export(model3, "int8", tmp_path, mnist)
    check_model_json(tmp_path, described)
    fp32 = export(model3, "onnx", tmp_path / "fp32", mnist)
    assert described["files"]["model.int8.onnx"]["bytes"] < fp32["files"]["model.onnx"]["bytes"]
    assert abs(described["test_accuracy"] - described["pytorch_test_accuracy"]) < 0.3
    calibration = calibration_images(mnist)[:, 0].astype(np.uint8)
    train = {row.tobytes() for row in mnist.train_images}
    assert all(image.tobytes() in train for image in calibration)


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_c_compiles_cleanly_and_matches(model3, mnist, tmp_path, weights):
    described = export(model3, "c", tmp_path, mnist, weights)
    check_model_json(tmp_path, described)
    header = (tmp_path / "tinycnn_model.h").read_text()
    assert "int tinycnn_predict(const uint8_t image[784], float logits[10]);" in header
    code = (tmp_path / "tinycnn_model.c").read_text()
    assert "malloc" not in code and "#include <" not in code.replace("#include <stdint.h>", "")
    c = described["c"]
    assert c["returned_digit_is_argmax"] and c["images_per_second_one_core"] > 0 and "-Werror" in c["checked"]
    if weights == "fp32":  # the same sums in another order: identical predictions, logits equal to float noise
        assert described["predictions_equal_to_pytorch"] == 10_000 and described["largest_logit_difference"] < 1e-3
        convs = [m for m in model3.model.modules() if isinstance(m, nn.Conv2d)]  # BN folded in: weights + a bias each
        assert c["flash_bytes"] == 4 * sum(m.weight.numel() + m.out_channels for m in convs)
    else:
        assert abs(described["test_accuracy"] - described["pytorch_test_accuracy"]) < 0.3
        assert c["flash_bytes"] < 0.4 * 4 * 7712


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 10, 3)

    def forward(self, x):
        y = self.a(x)
        return (self.b(y) + self.b(y)).mean((2, 3))


def test_c_export_refuses_what_it_cannot_express():
    with pytest.raises(ConfigError, match="straight-chain models only"):
        plan(Branching())
    with pytest.raises(ConfigError, match=r"layer 1 \(Tanh\) has no C translation"):
        plan(nn.Sequential(nn.Conv2d(1, 10, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def test_export_command(tmp_path):
    result = run_cli("export", "Model_4", "--format", "c", "--weights", "int8", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test accuracy of the exported model" in result.stdout and (tmp_path / "tinycnn_model.c").exists()
    assert "--format" in one_line_error(run_cli("export", "Model_3", "--format", "png", "--out", tmp_path))
