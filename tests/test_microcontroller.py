"""The integer-only int8 C and its firmware: the C built for this machine against a PyTorch
reference of the same integer arithmetic, the firmware built with arm-none-eabi-gcc and run in
qemu-system-arm against the host build, the arena the header states against what the emulator
sees written, and each refusal, before anything is written."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from conftest import call_cli, one_line_error
from torch import nn

from tinycnn.errors import ConfigError
from tinycnn.ship import c_integer, firmware
from tinycnn.ship.c import compile_and_run, plan
from tinycnn.ship.c_integer_source import HARNESS
from tinycnn.ship.integer import quantise_network, reference_logits
from tinycnn.ship.onnx import calibration_images
from tinycnn.ship.weights import Weights, load_model

NORMALISATION = {"mean": 0.1307, "std": 0.3081}


def need(*tools):
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        message = f"needs {', '.join(missing)} (.ci/run installs them)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def host_build(network, folder, images):
    """Write the integer C of `network` into folder and run it on images: (digits, int32 logits)."""
    code, header, facts = c_integer.source(network, "test")
    folder.mkdir(exist_ok=True)
    (folder / "tinycnn_model.c").write_text(code), (folder / "tinycnn_model.h").write_text(header)
    ran = compile_and_run(folder, images, HARNESS, np.int32)
    assert ran is not None, "no C compiler"
    return ran[0], ran[1], code, facts


@pytest.fixture(scope="module")
def model7():
    return load_model("Model_7")


def test_the_integer_c_is_the_integer_reference_logit_for_logit(model7, mnist, tmp_path):
    need("cc")
    network = quantise_network(plan(model7.model), calibration_images(mnist)[:, 0].astype(np.uint8), **NORMALISATION)
    images = mnist.test_images[:1000]
    digits, logits, code, facts = host_build(network, tmp_path / "c", images)
    assert np.array_equal(logits, reference_logits(network, images))   # every logit, exactly
    assert (digits == logits.argmax(1)).all()
    assert "float" not in code and "double" not in code                 # no float at run time
    assert facts["arena_bytes"] == sum(part["bytes"] for part in facts["arena"]) < 4096
    real = torch.from_numpy(logits * network.logit_scale)               # and it is the model, in integers
    with torch.no_grad():
        expected = model7.model.eval()((torch.from_numpy(images).float()[:, None] / 255 - 0.1307) / 0.3081)
    assert (real.argmax(1) == expected.argmax(1)).float().mean() > 0.99


def test_course_style_layers_become_integer_stages(mnist, tmp_path):
    """A batch norm after a ReLU (a per-channel 1x1 conv), a padded conv, a 1x1 conv and a pool
    fused after a conv, and a linear layer on a flattened 6x6 map (a conv whose kernel is the map),
    with made-up batch-norm statistics: the C equals the reference, and follows the float model."""
    need("cc")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2),
                          nn.Conv2d(8, 12, 3), nn.ReLU(), nn.Conv2d(12, 8, 1), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 10)).eval()
    bn = model[2]
    bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.uniform_(0.5, 1.5)
    network = quantise_network(plan(model), calibration_images(mnist)[:, 0].astype(np.uint8), **NORMALISATION)
    images = mnist.test_images[:300]
    digits, logits, code, facts = host_build(network, tmp_path / "c", images)
    assert facts["stages"] == ["0+2+pool2", "4+6+pool2", "9"]
    assert np.array_equal(logits, reference_logits(network, images))
    with torch.no_grad():
        expected = model((torch.from_numpy(images).float()[:, None] / 255 - 0.1307) / 0.3081)
    assert (logits.argmax(1) == expected.argmax(1).numpy()).mean() > 0.9
    assert np.corrcoef(logits.reshape(-1) * network.logit_scale, expected.numpy().reshape(-1))[0, 1] > 0.99


def test_the_firmware_on_an_emulated_cortex_m0_and_m4_gives_the_hosts_answers(mnist, tmp_path, capsys):
    need("cc", "make", "arm-none-eabi-gcc", "qemu-system-arm")
    out = tmp_path / "m0"
    exported = call_cli(capsys, "export", "Model_7", "--format", "c", "--target", "cortex-m0", "--out", out)
    assert exported.returncode == 0, exported.stderr
    assert "200 of 200 digits equal to the host build's, logits equal" in exported.stdout
    built = json.loads((out / "model.json").read_text())["firmware"]
    stated = int((out / "tinycnn_model.h").read_text().split("#define TINYCNN_ARENA_BYTES ")[1].split()[0])
    assert built["images"] == built["predictions_equal_to_host"] == firmware.DIGITS and built["logits_equal_to_host"]
    assert built["arena_bytes_measured"] == built["arena_bytes_stated"] == stated  # what the header says is what runs
    assert 100 < built["stack_bytes"] < 1024
    assert built["ram_bytes"] == stated + built["stack_bytes"] + 784 <= 4096
    assert built["flash_model_bytes"] < built["flash_firmware_bytes"]
    assert built["instructions_per_digit"] > 367_272 and built["instructions_per_tick"] == 62.5  # 16 MHz SysTick
    ran = subprocess.run(["make", "-s", "-C", str(out), "run"], capture_output=True, text=True, timeout=300)
    answers = [int(line.split()[0]) for line in ran.stdout.splitlines() if not line.startswith("#")]
    assert ran.returncode == 0 and len(answers) == 200  # the project runs as written
    assert (np.array(answers) == mnist.test_labels[:200]).mean() > 0.98
    m4 = tmp_path / "m4"
    m4.mkdir()
    for name in ("tinycnn_model.c", "tinycnn_model.h"):
        shutil.copyfile(out / name, m4 / name)
    _, on_m4 = firmware.measure(m4, "cortex-m4", "Model_7", mnist.test_images[:200])
    assert on_m4["predictions_equal_to_host"] == 200 and on_m4["logits_equal_to_host"]
    assert on_m4["arena_bytes_measured"] == stated and on_m4["instructions_per_tick"] == 40.0  # 25 MHz


def test_what_the_integer_path_cannot_hold_is_refused_before_anything_is_written(model7, mnist, tmp_path, capsys):
    calibration = calibration_images(mnist)[:, 0].astype(np.uint8)[:100]
    refused = call_cli(capsys, "export", "Model_7", "--format", "c", "--weights", "int8", "--ram-limit", "1000",
                       "--out", tmp_path / "small")
    line = one_line_error(refused)
    assert "the arena needs 2,696 bytes, over --ram-limit 1,000" in line and "sep2.0+sep2.2: input ring" in line
    assert not (tmp_path / "small").exists()
    assert "--target is for the integer-only C" in one_line_error(
        call_cli(capsys, "export", "Model_7", "--format", "c", "--weights", "fp32", "--target", "cortex-m0",
                 "--out", tmp_path / "x"))
    pooled = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(4, 10, 12), nn.Flatten())
    with pytest.raises(ConfigError, match=r"max pool 2 has kernel 3 and stride 2"):
        quantise_network(plan(pooled), calibration, **NORMALISATION)
    overflowing = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 10, 26), nn.Flatten())
    with torch.no_grad():
        overflowing[0].weight.fill_(1e-7), overflowing[0].bias.fill_(1.0)
    with pytest.raises(ConfigError, match=r"layer 0 could reach [\d,]+ in its int32 accumulator"):
        quantise_network(plan(overflowing), calibration, **NORMALISATION)
    unknown = Weights(nn.Sequential(nn.Conv2d(1, 10, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten()),
                      {"model": "tanh", **NORMALISATION}, None)
    with pytest.raises(ConfigError, match=r"layer 1 \(Tanh\) has no C translation"):
        c_integer.export(unknown, tmp_path / "tanh", mnist.test_images[:10], calibration)
    assert not (tmp_path / "tanh").exists()
