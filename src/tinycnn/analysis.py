"""Parameters, multiply-accumulates and receptive fields, computed from a model itself.

MACs per image count the multiply-accumulates of convolutions and linear layers (output elements
x input channels per group x kernel area; in x out features); batch norm, ReLU and pooling are
not counted. torchinfo's "mult-adds" of those layers agree (a test checks).

The receptive field (RF) recursion, per spatial layer with kernel k, stride s, padding p,
dilation d, from the input row n=28, j=1, r=1:
    n_out = floor((n_in + 2p - d(k-1) - 1) / s) + 1     spatial size
    j_out = j_in * s                                   jump: input pixels between neighbours
    r_out = r_in + d(k-1) * j_in                       receptive field in input pixels
    start_out = start_in + (d(k-1)/2 - p) * j_in       centre of the first output cell's field,
                                                       in input pixel indices (input: start 0)
Output cell i of a layer sees the input pixels centred on start + i*j, r of them (clipped at the
borders): the demo outlines exactly those.
Layers are found in execution order with forward hooks on the leaf modules; each must read the
tensor the previous one wrote, otherwise the model branches and no chain table is given.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchinfo
from torch import nn

from .model import count_parameters

PASS_THROUGH = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d,
                nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid,
                nn.Tanh, nn.Softmax, nn.LogSoftmax, nn.Hardswish, nn.Mish,
                nn.Dropout, nn.Dropout2d, nn.Identity)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class NotAChainError(ValueError):
    """The model is not a straight chain of layers, so an RF chain table would be wrong."""


@dataclass
class RFRow:
    name: str        # the layer's path in the model, e.g. "conv1.0"; "input" for the input row
    kind: str        # its class, e.g. "Conv2d"; "" for the input row
    kernel: int
    stride: int
    padding: int
    dilation: int
    n_in: int
    n_out: int
    j_in: int
    j_out: int
    r_in: int
    r_out: int
    start: float

    @property
    def layer(self) -> str:
        """As the tables show it, e.g. "conv1.0 Conv2d"."""
        return f"{self.name} {self.kind}".strip()

    @property
    def block(self) -> str:
        """The model's top-level child that holds the layer, e.g. "conv1"."""
        return self.name.split(".")[0]


COLUMNS = ["layer"] + [name for name in RFRow.__dataclass_fields__][2:]  # name and kind shown as one "layer"


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def square(value, what: str, layer: str) -> int:
    a, b = pair(value)
    if a != b:
        raise ValueError(f"{layer}: non-square {what} {value} is not supported by the RF table")
    return int(a)


@dataclass
class Call:
    name: str
    module: nn.Module
    input: torch.Tensor
    output: torch.Tensor


def trace_leaf_calls(model: nn.Module, input_size: tuple[int, ...]) -> list[Call]:
    """Run one sample through the model and list its leaf modules in execution order."""
    calls: list[Call] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            def hook(mod, inputs, output, name=name):
                calls.append(Call(name, mod, inputs[0] if inputs else None, output))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            sample = torch.zeros(1, *input_size, device=next(model.parameters(), torch.zeros(())).device)
            model(sample)
    finally:
        model.train(was_training)
        for handle in hooks:
            handle.remove()
    calls.insert(0, Call("input", nn.Identity(), None, sample))
    return calls


def check_chain(calls: list[Call]) -> None:
    """Every layer must read exactly the tensor the previous layer wrote, and each tensor once."""
    consumed: set[int] = set()
    for previous, call in zip(calls, calls[1:]):
        if call.input is not previous.output:
            raise NotAChainError(
                f"layer {call.name!r} ({type(call.module).__name__}) does not read the output of the "
                f"layer before it ({previous.name!r}): the model branches (shared inputs, residual adds "
                f"or functional ops between layers). The RF table supports straight chains only.")
        if id(call.input) in consumed:
            raise NotAChainError(f"layer {call.name!r} reads a tensor another layer already read: the "
                                 f"model branches. The RF table supports straight chains only.")
        if call.output is not call.input:  # in-place layers (ReLU(inplace), eval Dropout) pass it on
            consumed.add(id(call.input))


def layer_geometry(call: Call, n_in: int) -> tuple[int, int, int, int] | None:
    """(kernel, stride, padding, dilation) of a spatial layer; None for a pass-through layer."""
    module, name = call.module, call.name
    if isinstance(module, nn.Conv2d):
        k = square(module.kernel_size, "kernel", name)
        d = square(module.dilation, "dilation", name)
        if module.padding == "same":
            p = d * (k - 1) // 2
        elif module.padding == "valid":
            p = 0
        else:
            p = square(module.padding, "padding", name)
        return k, square(module.stride, "stride", name), p, d
    if isinstance(module, POOLS):
        k = square(module.kernel_size, "kernel", name)
        s = square(module.stride if module.stride is not None else k, "stride", name)
        d = square(getattr(module, "dilation", 1), "dilation", name)
        return k, s, square(module.padding, "padding", name), d
    if isinstance(module, GLOBAL_POOLS):
        out = square(module.output_size if module.output_size is not None else n_in, "output size", name)
        stride = n_in // out
        return n_in - (out - 1) * stride, stride, 0, 1  # exact when out divides n_in
    if isinstance(module, nn.Flatten) and call.input.dim() == 4:
        return (n_in, 1, 0, 1) if n_in > 1 else None  # flattening a map = seeing all of it
    if isinstance(module, (nn.Linear, nn.Flatten) + PASS_THROUGH):
        return None
    raise ValueError(f"layer {name!r} ({type(module).__name__}) is not supported by the RF table")


def receptive_field_table(model: nn.Module, input_size: tuple[int, int, int] = (1, 28, 28)) -> list[RFRow]:
    """One row for the input and one per spatial layer (conv, pool, global pool)."""
    calls = trace_leaf_calls(model, input_size)
    check_chain(calls)
    n, j, r, start = input_size[-1], 1, 1, 0.0
    rows = [RFRow("input", "", 0, 0, 0, 0, n, n, j, j, r, r, start)]
    for call in calls[1:]:
        geometry = layer_geometry(call, n)
        if geometry is None:
            continue
        k, s, p, d = geometry
        n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        j_out, r_out, start = j * s, r + d * (k - 1) * j, start + (d * (k - 1) / 2 - p) * j
        rows.append(RFRow(call.name, type(call.module).__name__, k, s, p, d, n, n_out, j, j_out, r, r_out, start))
        n, j, r = n_out, j_out, r_out
    return rows


@dataclass
class RFFacts:
    last_spatial_layer: str   # the last layer whose output is still a map larger than 1x1
    last_spatial_rf: int
    final_rf: int
    covers_input: bool        # final RF >= input size


def receptive_field_facts(rows: list[RFRow], input_px: int = 28) -> RFFacts:
    spatial = [row for row in rows if row.n_out > 1]
    last = spatial[-1]
    return RFFacts(last.layer, last.r_out, rows[-1].r_out, rows[-1].r_out >= input_px)


def layer_macs(model: nn.Module, input_size: tuple[int, int, int] = (1, 28, 28)) -> dict[str, int]:
    """Multiply-accumulates per image of each convolution and linear layer, by layer name."""
    macs = {}
    for call in trace_leaf_calls(model, input_size)[1:]:
        module, out = call.module, call.output[0]
        if isinstance(module, nn.Conv2d):
            macs[call.name] = out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            macs[call.name] = out.numel() * module.in_features
    return macs


def count_macs(model: nn.Module, input_size: tuple[int, int, int] = (1, 28, 28)) -> int:
    return sum(layer_macs(model, input_size).values())


def summary(model: nn.Module, input_size: tuple[int, int, int] = (1, 28, 28)):
    """torchinfo's layer / output shape / parameter table (a ModelStatistics; str() prints it)."""
    return torchinfo.summary(model, input_size=(1, *input_size), verbose=0, device="cpu",
                             col_names=("output_size", "num_params"), row_settings=("var_names",))


def table_cells(row: RFRow) -> list[str]:
    """The input row has no kernel, stride, padding or dilation: those cells stay empty."""
    values = {**asdict(row), "layer": row.layer}
    blank = ("kernel", "stride", "padding", "dilation") if row.name == "input" else ()
    return ["" if c in blank else f"{values[c]:g}" if c == "start" else str(values[c]) for c in COLUMNS]


def rf_table_markdown(rows: list[RFRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(table_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def rf_table_text(rows: list[RFRow]) -> str:
    cells = [COLUMNS] + [table_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
            for line in cells]
    return "\n".join([text[0], "-" * len(text[0]), *text[1:]])


def describe_rf(facts: RFFacts, input_px: int = 28) -> str:
    verdict = "covers" if facts.covers_input else "does NOT cover"
    return (f"RF at the last spatial layer ({facts.last_spatial_layer}): {facts.last_spatial_rf} px; "
            f"final RF: {facts.final_rf} px, which {verdict} the whole {input_px}x{input_px} input")


def model_tables_text(model: nn.Module) -> str:
    """What `tinycnn summary MODEL` prints: the torchinfo table, MACs and the RF table."""
    rows = receptive_field_table(model)
    return (f"{summary(model)}\n\nMultiply-accumulates per image (convolutions and linear layers): "
            f"{count_macs(model):,}\n\nReceptive field\n{rf_table_text(rows)}\n\n"
            f"{describe_rf(receptive_field_facts(rows))}")


def model_tables_markdown(model: nn.Module) -> str:
    """The same tables for a report page."""
    rows = receptive_field_table(model)
    return (f"**Parameters** ({count_parameters(model):,}; from torchinfo)\n\n```\n{summary(model)}\n```\n\n"
            f"**Receptive field** (n: size, j: jump, r: receptive field, in input pixels)\n\n"
            f"{rf_table_markdown(rows)}\n\n{describe_rf(receptive_field_facts(rows))}.\n")
