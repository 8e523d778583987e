"""Ship a trained model: ONNX (fp32), int8 ONNX, or dependency-free C (c.py: fp32, c_integer.py: int8).

Every exported model takes raw pixels (0-255, 28x28, one channel) and does the training
normalisation itself, so a caller never needs the mean and std. Each export is checked on the
10,000 test images by running what was written (onnxruntime, or the compiled C), and described
in model.json: model, parameters, MACs, input, normalisation, the test accuracy of the exported
model, and the SHA-256 of every file written.

int8 is static post-training quantisation with onnxruntime (QDQ, per-channel int8 weights, uint8
activations), calibrated on training images only, never on test images. The weights use 7 bits
(`reduce_range`, integers in [-64, 64]) so that the model computes the same on every CPU: x86
CPUs without VNNI (AVX2, and AVX-512 before Cascade Lake) multiply uint8 by int8 with
`vpmaddubsw`, which adds two products into an int16 and saturates; with full-range weights a
pair reaches 2 * 255 * 127 = 64,770 and clips (measured: 99.19% instead of 99.53% for step 3's first model on
an emulated Haswell). With 7-bit weights a pair is at most 2 * 255 * 64 = 32,640 < 32,767, so
every kernel (vpmaddubsw, VNNI's vpdpbusd, ARM's dot products) computes the exact integer sums.
Each int8 export is checked twice: its largest weight against that bound (`int16_pair_bound`),
and its predictions against the same quantised graph run as float operations with no integer
kernels at all (`onnx_logits(..., fused=False)`), which is what an exact kernel must give.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.fx
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quant_pre_process, quantize_static
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from tinycnn.errors import ConfigError
from tinycnn.files import write_bytes, write_json
from tinycnn.machine import int8_kernels
from tinycnn.models.model import count_parameters
from tinycnn.models.tables import count_macs
from tinycnn.ship import c as export_c
from tinycnn.ship import c_integer
from tinycnn.ship.weights import Weights
from tinycnn.train.data import MNIST, normalise

FORMATS = ("onnx", "int8", "c")
CALIBRATION_IMAGES = 1000     # training images the int8 activation ranges are measured on
CALIBRATION_SEED = 0
INPUT = "pixels"
INT16_MAX = 32767             # a u8 x s8 pair sum must fit an int16 on CPUs without VNNI


class Deployable(nn.Module):
    """Raw pixels in (N, 1, 28, 28, 0-255), logits out; with `feature_maps`, also every block's output."""

    def __init__(self, model: nn.Module, mean: float, std: float, feature_maps: bool = False):
        super().__init__()
        self.model, self.mean, self.std, self.feature_maps = model, mean, std, feature_maps
        if feature_maps and not isinstance(model, nn.Sequential):
            self.model = with_block_outputs(model)

    def forward(self, pixels: torch.Tensor):
        x = normalise(pixels, self.mean, self.std)
        if not self.feature_maps:
            return self.model(x)
        if not isinstance(self.model, nn.Sequential):
            return self.model(x)  # with_block_outputs: (logits, *maps)
        maps = []
        for block in self.model.children():
            x = block(x)
            maps.append(x)
        return (maps[-1], *maps[:-1])  # logits first, then each block's map in order


class TopLevelTracer(torch.fx.Tracer):
    """Traces a model down to its top-level children: each child's call is one node (a block)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return "." not in qualified_name or super().is_leaf_module(module, qualified_name)


def block_calls(model: nn.Module) -> tuple[torch.fx.Graph, list[torch.fx.Node]]:
    """A model of any shape (your own): its graph, and the calls of its top-level children that
    output a map (N, C, H, W) larger than 1x1, in the order forward makes them, each child once."""
    try:
        graph = TopLevelTracer().trace(model)
    except Exception as e:  # noqa: BLE001 - torch.fx raises many kinds; the user's code is the cause
        raise ConfigError(f"feature maps: torch.fx cannot trace the model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    module = torch.fx.GraphModule(model, graph)
    shapes = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ShapeProp(module).propagate(torch.zeros(1, 1, 28, 28))
    model.train(was_training)
    for node in graph.nodes:
        if "tensor_meta" in node.meta and hasattr(node.meta["tensor_meta"], "shape"):
            shapes[node] = tuple(node.meta["tensor_meta"].shape)
    calls, seen = [], set()
    for node in graph.nodes:
        shape = shapes.get(node, ())
        if node.op == "call_module" and node.target not in seen and len(shape) == 4 and shape[2] * shape[3] > 1:
            calls.append(node)
            seen.add(node.target)
    return graph, calls


def with_block_outputs(model: nn.Module) -> nn.Module:
    """The model rewritten to return (logits, *every block's map) (see block_calls)."""
    graph, calls = block_calls(model)
    output = next(node for node in graph.nodes if node.op == "output")
    output.args = ((output.args[0], *calls),)
    module = torch.fx.GraphModule(model, graph)
    module.recompile()
    return module


def block_names(model: nn.Module) -> list[str]:
    """The blocks whose outputs the demo shows: every block but the classifier head of a chain of
    named blocks (a TinyNet); for any other model, its top-level children that output a map."""
    if isinstance(model, nn.Sequential):
        return [name for name, _ in model.named_children()][:-1]
    return [node.target for node in block_calls(model)[1]]


def onnx_bytes(weights: Weights, feature_maps: bool = False) -> bytes:
    """The model as one self-contained ONNX file (batch size free), without build noise or stack traces."""
    # a copy in the default memory format: a model fresh from training (the API's) is channels_last,
    # which torch.export would specialise the batch size on
    model = copy.deepcopy(weights.model).to(memory_format=torch.contiguous_format)
    deployable = Deployable(model, weights.meta["mean"], weights.meta["std"], feature_maps).eval()
    outputs = ["logits"] + (block_names(weights.model) if feature_maps else [])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), quiet():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(deployable, (torch.zeros(1, 1, 28, 28),), input_names=[INPUT],
                                    output_names=outputs, dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},
                                    dynamo=True, verbose=False)
        program.save(Path(tmp) / "model.onnx", external_data=False)
        proto = onnx.load(Path(tmp) / "model.onnx")
    for node in proto.graph.node:  # exporter provenance (source lines, stack traces): not part of the model
        del node.metadata_props[:]
    del proto.metadata_props[:]
    proto.producer_name, proto.producer_version = "tinycnn", ""
    return proto.SerializeToString()


@contextlib.contextmanager
def quiet():
    """The exporter reports its progress on stdout and through logging; a user sees our lines only."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class Calibration(CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch: int = 100):
        self.batches = iter([{INPUT: images[i:i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def calibration_images(data: MNIST) -> np.ndarray:
    """A fixed random sample of training images (never test images), as the model's input."""
    pick = np.random.default_rng(CALIBRATION_SEED).choice(len(data.train_images), CALIBRATION_IMAGES, replace=False)
    return data.train_images[np.sort(pick)].astype(np.float32)[:, None]


def int8_bytes(fp32: bytes, data: MNIST) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, quiet():
        src, pre, out = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(fp32)
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(out), Calibration(calibration_images(data)), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        reduce_range=True)  # 7-bit weights: no int16 saturation on any CPU (module docstring)
        return out.read_bytes()


def int16_pair_bound(model: bytes) -> int:
    """The largest |a1*w1 + a2*w2| an int8 model's integer kernels can meet (a: uint8 activation,
    w: its int8 weights); at most INT16_MAX means no CPU's kernel can saturate."""
    proto = onnx.load_from_string(model)
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    return 2 * 255 * max(int(np.abs(w.astype(np.int32)).max()) for w in weights)


def onnx_logits(model: bytes | Path, images: np.ndarray, fused: bool = True) -> np.ndarray:
    """Logits of an ONNX model (bytes or file) on uint8 images (N, 28, 28), on one CPU thread.

    `fused=False` turns off onnxruntime's graph optimisations: an int8 model then runs as written,
    dequantise -> float convolution -> quantise, without the integer kernels chosen by CPU.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if not fused:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                   providers=["CPUExecutionProvider"])
    batches = [session.run(["logits"], {INPUT: images[i:i + 1000].astype(np.float32)[:, None]})[0]
               for i in range(0, len(images), 1000)]
    return np.concatenate(batches)


@torch.inference_mode()
def torch_logits(weights: Weights, images: np.ndarray) -> np.ndarray:
    deployable = Deployable(weights.model, weights.meta["mean"], weights.meta["std"]).eval()
    return np.concatenate([deployable(torch.from_numpy(images[i:i + 1000]).float()[:, None]).numpy()
                           for i in range(0, len(images), 1000)])


def integer_kernel_check(model: bytes, logits: np.ndarray, images: np.ndarray) -> dict:
    """How the int8 model's integer kernels (as this CPU picks them) agree with the same graph in float."""
    emulated = onnx_logits(model, images, fused=False)
    return {"kernels": int8_kernels(), "int16_pair_bound": int16_pair_bound(model),
            "predictions_equal_to_float_emulation": int((logits.argmax(1) == emulated.argmax(1)).sum()),
            "largest_logit_difference_to_float_emulation": float(np.abs(logits - emulated).max())}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Agreement:
    """An exported model run on the 10,000 test images, against PyTorch on the same images."""
    test_accuracy: float
    pytorch_test_accuracy: float
    predictions_equal_to_pytorch: int
    largest_logit_difference: float


@dataclass(frozen=True)
class Exported:
    files: dict[str, Path]          # file name -> where it was written
    description: dict               # model.json, as written
    agreement: Agreement | None     # None only for C with no compiler here (nothing ran)
    c: dict | None = None           # the C model's facts: flash, RAM, speed, how it was checked
    int8: dict | None = None        # int8 ONNX: the integer-kernel check (integer_kernel_check)


def agreement(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> Agreement:
    return Agreement(float(100.0 * (logits.argmax(1) == labels).mean()),
                     float(100.0 * (reference.argmax(1) == labels).mean()),
                     int((logits.argmax(1) == reference.argmax(1)).sum()), float(np.abs(logits - reference).max()))


def export(weights: Weights, fmt: str, out_dir: Path, data: MNIST, c_weights: str = "fp32",
           ram_limit: int | None = None) -> Exported:
    """Write `fmt` into `out_dir`, check it on the test images, write model.json."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    images, labels = data.test_images, data.test_labels
    c_facts = int8 = None
    if fmt == "c":
        if c_weights not in ("fp32", "int8"):
            raise ConfigError(f"--weights must be fp32 or int8, not {c_weights!r}")
        files, logits, c_facts = (export_c.export(weights, out_dir, images) if c_weights == "fp32" else
                                  c_integer.export(weights, out_dir, images, calibration_images(data)[:, 0].astype(np.uint8),
                                                   ram_limit))  # the int8 ONNX's calibration, as pixels
    else:
        model = onnx_bytes(weights)
        if fmt == "int8":
            model = int8_bytes(model, data)
        name = "model.onnx" if fmt == "onnx" else "model.int8.onnx"
        files = {name: write_bytes(out_dir / name, model)}
        logits = onnx_logits(model, images)
        if fmt == "int8":
            int8 = integer_kernel_check(model, logits, images)
    agreed = agreement(logits, torch_logits(weights, images), labels) if logits is not None else None
    described = {
        "model": weights.name, "format": fmt if fmt != "c" else "c (fp32 weights)" if c_weights == "fp32" else "c (int8, integers only)",
        "parameters": count_parameters(weights.model), "macs_per_image": count_macs(weights.model),
        "input": {"shape": [1, 28, 28], "pixels": "0-255 (uint8 for C, float32 for ONNX), row-major, white on black"},
        "normalisation": {"mean": weights.meta["mean"], "std": weights.meta["std"], "applied": "inside the model"},
        "source_weights": ({"file": str(weights.path), "sha256": sha256(Path(weights.path).read_bytes())}
                           if weights.path is not None else {"file": None, "note": "a model held in Python (the API)"}),
        "files": {name: {"bytes": path.stat().st_size, "sha256": sha256(path.read_bytes())} for name, path in files.items()},
        **(asdict(agreed) if agreed else {}),
        **({"c": c_facts} if c_facts is not None else {}),
        **({"int8": int8} if int8 is not None else {}),
    }
    write_json(out_dir / "model.json", described)
    return Exported(files, described, agreed, c_facts, int8)
