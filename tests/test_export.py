"""Exports checked by running what was written: onnxruntime for ONNX, the C compiled with
-Wall -Wextra -Werror for C, on all 10,000 test images."""
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error, run_cli
from onnxruntime.quantization import QuantFormat, quantize_static
from torch import nn

from tinycnn.errors import ConfigError
from tinycnn.machine import int8_kernels
from tinycnn.models.blocks import TinyNet
from tinycnn.ship.c import compile_and_run, plan, source
from tinycnn.ship.onnx import (
    INT16_MAX,
    Calibration,
    calibration_images,
    export,
    int16_pair_bound,
    onnx_bytes,
    onnx_logits,
)
from tinycnn.ship.weights import Weights, load_model


@pytest.fixture(scope="module")
def model3():
    return load_model("Model_3")


def check_model_json(out, described):
    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk == described
    for name, facts in on_disk["files"].items():
        data = (out / name).read_bytes()
        assert facts == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert on_disk["parameters"] == 7696 and on_disk["macs_per_image"] == 432_160
    assert on_disk["input"]["shape"] == [1, 28, 28] and on_disk["normalisation"]["applied"] == "inside the model"


def test_onnx_gives_pytorchs_predictions_on_every_test_image(model3, mnist, tmp_path):
    exported = export(model3, "onnx", tmp_path, mnist)
    check_model_json(tmp_path, exported.description)
    agreed = exported.agreement
    assert agreed.predictions_equal_to_pytorch == 10_000
    assert agreed.test_accuracy == agreed.pytorch_test_accuracy and agreed.largest_logit_difference < 1e-3
    for batch in (1, 7):  # the batch dimension is free
        assert onnx_logits(tmp_path / "model.onnx", mnist.test_images[:batch]).shape == (batch, 10)


@pytest.fixture(scope="module")
def int8_export(model3, mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    return out, export(model3, "int8", out, mnist)


def test_int8_onnx_is_smaller_and_close_calibrated_on_training_images_only(int8_export, model3, mnist, tmp_path):
    out, exported = int8_export
    check_model_json(out, exported.description)
    fp32 = export(model3, "onnx", tmp_path, mnist)
    assert exported.files["model.int8.onnx"].stat().st_size < fp32.files["model.onnx"].stat().st_size
    assert abs(exported.agreement.test_accuracy - exported.agreement.pytorch_test_accuracy) < 0.3
    calibration = calibration_images(mnist)[:, 0].astype(np.uint8)
    train = {row.tobytes() for row in mnist.train_images}
    assert all(image.tobytes() in train for image in calibration)


def test_int8_onnx_cannot_saturate_on_any_cpu(int8_export, model3, mnist):
    """Machine-independent: x86 CPUs without VNNI add two uint8 x int8 products into an int16
    (vpmaddubsw), which clips above 32,767; the exported weights must keep every pair below that.
    Full-range int8 weights (|w| up to 127) fail this on every machine, VNNI or not."""
    assert int8_export[1].int8["int16_pair_bound"] <= INT16_MAX
    with tempfile.TemporaryDirectory() as tmp:  # the same model with full-range weights, as exported before
        (Path(tmp) / "fp32.onnx").write_bytes(onnx_bytes(model3))
        quantize_static(str(Path(tmp) / "fp32.onnx"), str(Path(tmp) / "int8.onnx"),
                        Calibration(calibration_images(mnist)[:100]), quant_format=QuantFormat.QDQ, per_channel=True)
        assert int16_pair_bound((Path(tmp) / "int8.onnx").read_bytes()) > INT16_MAX  # the check can fail


def test_int8_onnx_integer_kernels_agree_with_the_graph_in_float(int8_export):
    """On the machine that runs it: onnxruntime's integer kernels (picked by this CPU) against the
    same quantised graph run as float operations with no integer kernel. Saturation (the AVX2 bug)
    changed 66 of 10,000 predictions and logits by up to 8.9; exact kernels change at most an
    activation's last bit where float rounding lands on a half step."""
    check = int8_export[1].int8
    assert check["predictions_equal_to_float_emulation"] >= 9_995, check
    assert check["largest_logit_difference_to_float_emulation"] < 0.5, check


ON_HASWELL = """import sys, numpy as np, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = options.inter_op_num_threads = 1
images = np.load(sys.argv[1]).astype(np.float32)[:, None]
for model in sys.argv[2:]:
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    np.save(model + ".logits.npy", session.run(["logits"], {"pixels": images})[0])
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="runs the x86-64 interpreter under qemu's x86 CPU models")
@pytest.mark.skipif(not shutil.which("qemu-x86_64") and not os.environ.get("CI"), reason="no qemu-user; CI installs it")
def test_int8_onnx_gives_the_same_logits_on_an_avx2_cpu_without_vnni(int8_export, model3, mnist, tmp_path):
    """The int8 model run on an emulated Haswell (qemu-user: AVX2, no AVX-512, no VNNI, so
    onnxruntime picks its int16-pair kernels) gives exactly this machine's logits. The control: the
    same model with full-range weights gives other logits there whenever this machine's kernels
    do not saturate (VNNI, ARM), which shows the emulated CPU really runs the saturating kernels."""
    images = mnist.test_images[:2000]
    np.save(tmp_path / "images.npy", images)
    shutil.copyfile(int8_export[1].files["model.int8.onnx"], tmp_path / "fixed.onnx")
    (tmp_path / "fp32.onnx").write_bytes(onnx_bytes(model3))
    quantize_static(str(tmp_path / "fp32.onnx"), str(tmp_path / "full_range.onnx"), Calibration(calibration_images(mnist)),
                    quant_format=QuantFormat.QDQ, per_channel=True)  # the export before 7-bit weights
    (tmp_path / "run.py").write_text(ON_HASWELL)
    run = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "run.py", "images.npy", "fixed.onnx",
                          "full_range.onnx"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("fixed", "full_range"):
        here, haswell = onnx_logits((tmp_path / f"{name}.onnx").read_bytes(), images), np.load(tmp_path / f"{name}.onnx.logits.npy")
        if name == "fixed":
            assert np.array_equal(here, haswell), np.abs(here - haswell).max()
        elif not int8_kernels().startswith("x86 AVX2"):  # this machine's kernels do not saturate
            assert (here.argmax(1) != haswell.argmax(1)).sum() > 0 or np.abs(here - haswell).max() > 1.0


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_c_compiles_cleanly_and_matches(model3, mnist, tmp_path, weights):
    exported = export(model3, "c", tmp_path, mnist, weights)
    check_model_json(tmp_path, exported.description)
    agreed = exported.agreement
    header = (tmp_path / "tinycnn_model.h").read_text()
    code = (tmp_path / "tinycnn_model.c").read_text()
    assert "malloc" not in code and "#include <" not in code.replace("#include <stdint.h>", "")
    c = exported.c
    assert c["returned_digit_is_argmax"] and c["images_per_second_one_core"] > 0 and "-Werror" in c["checked"]
    if weights == "fp32":  # the same sums in another order: identical predictions, logits equal to float noise
        assert "int tinycnn_predict(const uint8_t image[784], float logits[10]);" in header
        assert agreed.predictions_equal_to_pytorch == 10_000 and agreed.largest_logit_difference < 1e-3
        convs = [m for m in model3.model.modules() if isinstance(m, nn.Conv2d)]  # BN folded in: weights + a bias each
        assert c["flash_bytes"] == 4 * sum(m.weight.numel() + m.out_channels for m in convs)
    else:  # integers only (test_microcontroller checks them against a reference, logit for logit)
        assert "int tinycnn_predict(const uint8_t image[784], void *arena, int32_t logits[10]);" in header
        assert f"#define TINYCNN_ARENA_BYTES {c['arena_bytes']}" in header
        assert "float" not in code and "double" not in code
        assert abs(agreed.test_accuracy - agreed.pytorch_test_accuracy) < 0.2
        assert c["arena_bytes"] < 8192 and c["constant_bytes"] < 0.4 * 4 * 7696


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
    with pytest.raises(ConfigError, match=r"layer 2 \(AvgPool2d\) has no C translation"):  # only over the whole map
        plan(nn.Sequential(nn.Conv2d(1, 10, 3), nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def test_c_export_plans_batchnorm_after_relu_as_its_own_step():
    """Folded into the convolution before it, BatchNorm after a ReLU would scale what the ReLU had
    not yet clipped: it becomes a per-channel scale and shift after the ReLU (the course model in
    test_model_file checks the C against PyTorch on all 10,000 test images)."""
    layers = plan(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 10, 26), nn.Flatten()))
    assert [(layer.kind, layer.relu) for layer in layers] == [("conv", True), ("batchnorm", False), ("conv", False)]
    folded = plan(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 10, 26), nn.Flatten()))
    assert [(layer.kind, layer.relu) for layer in folded] == [("conv", True), ("conv", False)]
    with pytest.raises(ConfigError, match=r"layer 1 \(Tanh\) has no C translation"):
        plan(nn.Sequential(nn.Conv2d(1, 10, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten()))


def test_c_export_runs_depthwise_separable_and_5x5_layers_as_pytorch_does(mnist, tmp_path):
    """The record's layouts: a 5x5 first layer and depthwise 3x3 convs (groups = channels) with a
    batch norm between them and the 1x1 after, padded and not; batch-norm statistics are made up so
    that folding them matters. fp32 C against PyTorch on 500 test images."""
    torch.manual_seed(0)
    model = TinyNet("c6pk5,c8k5,m,s10,s12p,m,s14")
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.uniform_(0.5, 1.5)
    model.eval()
    layers = plan(model)
    assert [layer.groups for layer in layers if layer.kind == "conv"] == [1, 1, 8, 1, 10, 1, 12, 1, 1]
    code, header, facts = source(layers, Weights(model, {"model": "separable", "mean": 0.1307, "std": 0.3081}, None))
    (tmp_path / "tinycnn_model.c").write_text(code), (tmp_path / "tinycnn_model.h").write_text(header)
    images = mnist.test_images[:500]
    ran = compile_and_run(tmp_path, images)
    if ran is None:
        pytest.skip("no C compiler") if not os.environ.get("CI") else pytest.fail("CI needs a C compiler")
    digits, logits, _ = ran
    with torch.no_grad():
        expected = model(((torch.from_numpy(images).float() / 255 - 0.1307) / 0.3081).unsqueeze(1)).numpy()
    assert np.abs(logits - expected).max() < 1e-3 and (digits == expected.argmax(1)).all()
    convs = [layer for layer in layers if layer.kind == "conv"]
    assert facts["flash_bytes"] == 4 * sum(layer.weight.size + layer.bias.size for layer in convs)


def test_export_command(tmp_path):
    result = run_cli("export", "Model_4", "--format", "c", "--weights", "int8", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test accuracy of the exported model" in result.stdout and (tmp_path / "tinycnn_model.c").exists()
    assert "--format" in one_line_error(run_cli("export", "Model_3", "--format", "png", "--out", tmp_path))
