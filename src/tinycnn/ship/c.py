"""Dependency-free fp32 C99 for a trained straight-chain model: tinycnn_model.c and tinycnn_model.h
(the integer-only int8 flavour: c_integer.py, on this module's layer plan).

    int tinycnn_predict(const uint8_t image[784], float logits[10]);

takes raw 0-255 pixels in row-major order, normalises them as in training, writes the ten logits
and returns the predicted digit (for a model ending in log_softmax: the scores before it). Batch
norm is folded into the convolution before it (one after a ReLU or a pool: a per-channel scale and
shift of its own); weights are `const` arrays of exact hex-float literals; activations ping-pong
between two static float buffers: no
malloc, no library beyond <stdint.h>.
The layer plan comes from tracing the model (analysis.trace_leaf_calls), so any straight chain
of convolutions (grouped and depthwise ones too), batch norms, ReLUs, max pools, global average
pooling (adaptive, or an AvgPool2d over the whole map) and linear layers works; anything else is
refused with a clear message.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tinycnn.errors import ConfigError
from tinycnn.files import write_text
from tinycnn.models.receptive_field import square
from tinycnn.models.tables import NotAChainError, check_chain, count_macs, trace_leaf_calls
from tinycnn.ship.c_source import HARNESS, HEADER, RUNTIME
from tinycnn.ship.weights import Weights

CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror"]
SKIPPED = (nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten)


@dataclass
class Layer:
    kind: str                  # conv | batchnorm | maxpool | gap | linear
    shape_in: tuple            # (C, H, W)
    shape_out: tuple
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1            # conv: input and output channels split into this many groups (depthwise: Cin)
    weight: np.ndarray | None = None   # conv (Cout, Cin / groups, k, k) / linear (out, in), batch norm folded in;
    # a batch norm that cannot be folded (after a ReLU or a pool): per-channel scale (weight) and shift (bias)
    bias: np.ndarray | None = None
    relu: bool = False
    name: str = ""


def fold(weight: np.ndarray, bias: np.ndarray, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """conv then BN(eval) as one conv: w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta."""
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
    return (weight.astype(np.float64) * scale[:, None, None, None],
            (bias.astype(np.float64) - bn.running_mean.double().numpy()) * scale + bn.bias.detach().double().numpy())


def covers_map(pool: nn.AvgPool2d, shape_in: tuple) -> bool:
    """An AvgPool2d that averages its whole input map (a course model's GAP), and nothing else."""
    kernel = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
    return tuple(kernel) == tuple(shape_in[-2:]) and pool.padding in (0, (0, 0))


def plan(model: nn.Module) -> list[Layer]:
    """The model as C layers, in execution order; ConfigError for what C cannot express here."""
    calls = trace_leaf_calls(model, (1, 28, 28))
    try:
        check_chain(calls)
    except NotAChainError as e:
        raise ConfigError(f"C export: straight-chain models only ({e})") from None
    layers: list[Layer] = []
    for call in calls[1:]:
        module, shape_in, shape_out = call.module, tuple(call.input.shape[1:]), tuple(call.output.shape[1:])
        if isinstance(module, nn.Conv2d):
            if module.dilation != (1, 1) or module.kernel_size[0] != module.kernel_size[1] \
                    or isinstance(module.padding, str) or module.padding[0] != module.padding[1]:
                raise ConfigError(f"C export: conv {call.name} needs square kernels, no dilation")
            bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_channels)
            layers.append(Layer("conv", shape_in, shape_out, module.kernel_size[0], module.stride[0],
                                module.padding[0], module.groups, module.weight.detach().numpy(), bias,
                                name=call.name))
        elif isinstance(module, nn.BatchNorm2d):
            if layers and layers[-1].kind == "conv" and not layers[-1].relu:
                layers[-1].weight, layers[-1].bias = fold(layers[-1].weight, layers[-1].bias, module)
            else:  # after a ReLU (as many course models have it) or a pool: its own per-channel step
                scale, shift = fold(np.ones((module.num_features, 1, 1, 1)), np.zeros(module.num_features), module)
                layers.append(Layer("batchnorm", shape_in, shape_out, weight=scale.reshape(-1), bias=shift,
                                    name=call.name))
        elif isinstance(module, nn.ReLU) and layers and layers[-1].kind in ("conv", "linear", "batchnorm") \
                and not layers[-1].relu:
            layers[-1].relu = True
        elif isinstance(module, nn.MaxPool2d) and module.padding == 0 and module.dilation == 1:
            kernel = square(module.kernel_size, "kernel", call.name)
            layers.append(Layer("maxpool", shape_in, shape_out, kernel,
                                square(module.stride or kernel, "stride", call.name), name=call.name))
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)) and shape_out[-2:] == (1, 1) \
                and (isinstance(module, nn.AdaptiveAvgPool2d) or covers_map(module, shape_in)):
            layers.append(Layer("gap", shape_in, shape_out, name=call.name))
        elif isinstance(module, nn.Linear):
            bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_features)
            layers.append(Layer("linear", shape_in, shape_out, weight=module.weight.detach().numpy(), bias=bias,
                                name=call.name))
        elif not isinstance(module, SKIPPED):
            raise ConfigError(f"C export: layer {call.name} ({type(module).__name__}) has no C translation here")
    if int(np.prod(layers[-1].shape_out)) != 10:
        raise ConfigError("C export: the model must end in 10 logits")
    return layers


def ends_in_log_softmax(model: nn.Module) -> bool:
    """Whether the model returns log_softmax of its last layer's output (many course models do; C
    returns the scores before it, which give the same digit); any other arithmetic after the last
    layer (functional code the layer trace cannot see) is refused rather than left out of the C."""
    last = trace_leaf_calls(model, (1, 28, 28))[-1].name  # what the C computes last
    seen = []
    handle = model.get_submodule(last).register_forward_hook(lambda mod, inputs, output: seen.append(output))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            returned = model(torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    finally:
        model.train(was_training)
        handle.remove()
    scores = seen[-1].reshape(len(returned), -1)
    if torch.equal(returned, scores):
        return False
    if torch.allclose(returned, torch.log_softmax(scores, 1), atol=1e-6):
        return True
    raise ConfigError(f"C export: the model computes something after its last layer ({last}) besides "
                      f"log_softmax; C reproduces layers only, so export to ONNX instead")


def literal(values: np.ndarray, kind: str) -> str:
    """A C initialiser: float32 values as exact hex literals, or integers, eight to a line."""
    flat = values.reshape(-1)
    items = [f"{float(np.float32(v)).hex()}f" for v in flat] if kind == "float" else [str(int(v)) for v in flat]
    return ",\n".join("    " + ", ".join(items[i:i + 8]) for i in range(0, len(items), 8))


def source(layers: list[Layer], weights: Weights) -> tuple[str, str, dict]:
    """(tinycnn_model.c, tinycnn_model.h, facts: flash and RAM in bytes)."""
    biggest = max(int(np.prod(layer.shape_out)) for layer in layers)
    biggest = max(biggest, 28 * 28)
    arrays, calls, flash = [], [], 0
    src, dst = "buffer_a", "buffer_b"
    for i, layer in enumerate(layers):
        c, h, w = (layer.shape_in + (1, 1))[:3]
        oc, oh, ow = (layer.shape_out + (1, 1))[:3]
        if layer.kind in ("conv", "linear"):
            weight = layer.weight if layer.kind == "conv" else layer.weight.reshape(*layer.weight.shape, 1, 1)
            k = weight.shape[-1]
            arrays.append(f"static const float W{i}[{weight.size}] = {{\n{literal(weight, 'float')}\n}};")
            flash += 4 * weight.size
            arrays.append(f"static const float B{i}[{layer.bias.size}] = {{\n{literal(layer.bias, 'float')}\n}};")
            flash += 4 * layer.bias.size
            cin = c if layer.kind == "conv" else int(np.prod(layer.shape_in))
            calls.append(f"    conv({src}, {dst}, W{i}, B{i}, {cin}, {h}, {w}, {oc}, {k}, "
                         f"{layer.stride}, {layer.padding}, {layer.groups}, {oh}, {ow}, {int(layer.relu)});"
                         f" /* {layer.name} */")
        elif layer.kind == "batchnorm":
            arrays += [f"static const float S{i}[{c}] = {{\n{literal(layer.weight, 'float')}\n}};",
                       f"static const float B{i}[{c}] = {{\n{literal(layer.bias, 'float')}\n}};"]
            flash += 8 * c
            calls.append(f"    batchnorm({src}, {dst}, S{i}, B{i}, {c}, {h * w}, {int(layer.relu)});"
                         f" /* {layer.name} */")
        elif layer.kind == "maxpool":
            calls.append(f"    maxpool({src}, {dst}, {c}, {h}, {w}, {layer.kernel}, {layer.stride}, {oh}, {ow});"
                         f" /* {layer.name} */")
        else:
            calls.append(f"    global_average({src}, {dst}, {c}, {h}, {w}); /* {layer.name} */")
        src, dst = dst, src
    mean, std = np.float32(weights.meta["mean"]), np.float32(weights.meta["std"])
    header = HEADER.format(model=weights.name)
    code = "\n".join([
        f"/* {weights.name} as C99 (fp32), written by `tinycnn export --format c`. */",
        '#include "tinycnn_model.h"', "",
        f"#define TINYCNN_BUFFER_FLOATS {biggest}", "",
        *arrays, "", RUNTIME["buffers"],
        *[RUNTIME[part] for part in ("conv", "batchnorm", "maxpool", "gap")
          if any(layer.kind == part or (part == "conv" and layer.kind == "linear") for layer in layers)],
        "int tinycnn_predict(const uint8_t image[784], float logits[10]) {",
        "    int i, best = 0;",
        "    for (i = 0; i < 784; i++)",
        f"        buffer_a[i] = ((float)image[i] / 255.0f - {float(mean).hex()}f) / {float(std).hex()}f;",
        *calls,
        "    for (i = 0; i < 10; i++) {",
        f"        logits[i] = {src}[i];",
        "        if (logits[i] > logits[best]) best = i;",
        "    }",
        "    return best;",
        "}", ""])
    facts = {"flash_bytes": flash, "largest_buffer_bytes": 4 * biggest, "static_ram_bytes": 2 * 4 * biggest}
    return code, header, facts


def compile_and_run(folder: Path, images: np.ndarray, harness: str = HARNESS,
                    logit_type=np.float32) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Build folder's C with a harness (cc, CFLAGS) and run `images` through it: (digits, logits,
    seconds in tinycnn_predict). The harness writes a digit byte and ten 4-byte logits per image.
    None when no C compiler is installed; CalledProcessError if the code does not compile cleanly."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "harness.c").write_text(harness)
        program = Path(tmp) / "harness"
        subprocess.run([compiler, *CFLAGS, "-I", str(folder), str(folder / "tinycnn_model.c"),
                        str(Path(tmp) / "harness.c"), "-o", str(program)], check=True, capture_output=True, text=True)
        run = subprocess.run([str(program)], input=np.ascontiguousarray(images, dtype=np.uint8).tobytes(),
                             capture_output=True, check=True)
    out = np.frombuffer(run.stdout, dtype=np.uint8).reshape(len(images), 41)
    logits = out[:, 1:].copy().view(logit_type)
    return out[:, 0].astype(np.int64), logits, float(run.stderr.decode())


def export(weights: Weights, out_dir: Path, images: np.ndarray) -> tuple[dict, np.ndarray | None, dict]:
    """Write the fp32 C files; compile and run them on `images` when a compiler is there.
    Returns ({file name: path}, the logits (None when no compiler ran them), the C model's facts)."""
    layers = plan(weights.model)
    log_probabilities = ends_in_log_softmax(weights.model)
    code, header, facts = source(layers, weights)
    files = {"tinycnn_model.c": write_text(out_dir / "tinycnn_model.c", code),
             "tinycnn_model.h": write_text(out_dir / "tinycnn_model.h", header)}
    logits, facts = run_written(weights.model, out_dir, images, facts, log_probabilities)
    return files, logits, facts


def run_written(model: nn.Module, out_dir: Path, images: np.ndarray, facts: dict, log_probabilities: bool,
                harness: str = HARNESS, logit_type=np.float32, scale: float | None = None) -> tuple:
    """Compile and run the C just written in out_dir on `images` (either flavour: its harness, its
    logits' type, and for integer logits their scale): (the logits as real numbers, log_softmax'd
    when the model ends in it; None when no compiler is here), and the facts with how it was checked."""
    facts["macs_per_image"] = count_macs(model)
    start = time.perf_counter()
    ran = compile_and_run(out_dir, images, harness, logit_type)
    if ran is None:
        return None, {**facts, "checked": "no C compiler found: not compiled or run"}
    digits, logits, seconds = ran
    real = torch.from_numpy(logits if scale is None else logits.astype(np.float64) * scale)
    if log_probabilities:  # compared with the model as it is: log_softmax of the C scores (the same digit)
        real = torch.log_softmax(real, 1)
        facts["returns"] = "the scores before the model's log_softmax (the same digit); compared after it"
    facts.update(images_per_second_one_core=len(images) / seconds, checked=f"compiled with {' '.join(CFLAGS)}, "
                 f"run on {len(images)} images in {time.perf_counter() - start:.1f}s",
                 returned_digit_is_argmax=bool((digits == logits.argmax(1)).all()))
    return real.numpy(), facts
