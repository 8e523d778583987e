"""Parameters, multiply-accumulates and receptive fields, computed from a model itself, and the
tables `tinycnn summary` and the reports show.

MACs per image count the multiply-accumulates of convolutions and linear layers (output elements
x input channels per group x kernel area; in x out features); batch norm, ReLU and pooling are
not counted. torchinfo's "mult-adds" of those layers agree (a test checks). Leaf layers are found
in execution order with forward hooks (`trace_leaf_calls`); `check_chain` tells whether they form
a straight chain (what the C export needs). Receptive fields come from receptive_field.py, for
chains and branching models alike.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchinfo
from torch import nn

from tinycnn.models.model import count_parameters
from tinycnn.models.receptive_field import NotTraceableError, RFRow, receptive_field_table


class NotAChainError(ValueError):
    """The model is not a straight chain of layers, so an RF chain table would be wrong."""


COLUMNS = ["layer"] + [name for name in RFRow.__dataclass_fields__][2:-1]  # name and kind as one "layer"; no note


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
    """The input row and rows where branches meet have no kernel, stride, padding or dilation:
    those cells stay empty."""
    values = {**asdict(row), "layer": row.layer}
    blank = ("kernel", "stride", "padding", "dilation") if row.kernel == 0 else ()
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


def rf_notes(rows: list[RFRow]) -> str:
    return "\n".join(f"{row.layer}: {row.note}." for row in rows if row.note)


def model_tables_text(model: nn.Module) -> str:
    """What `tinycnn summary MODEL` prints: the torchinfo table, MACs and the RF table."""
    tables = (f"{summary(model)}\n\nMultiply-accumulates per image (convolutions and linear layers): "
              f"{count_macs(model):,}\n\n")
    try:
        rows = receptive_field_table(model)
    except NotTraceableError as e:
        return tables + f"Receptive field: not computed: {e}."
    notes = rf_notes(rows)
    return (tables + f"Receptive field\n{rf_table_text(rows)}\n\n" + (f"{notes}\n" if notes else "")
            + describe_rf(receptive_field_facts(rows)))


def model_tables_markdown(model: nn.Module) -> str:
    """The same tables for a report page."""
    tables = f"**Parameters** ({count_parameters(model):,}; from torchinfo)\n\n```\n{summary(model)}\n```\n\n"
    try:
        rows = receptive_field_table(model)
    except NotTraceableError as e:
        return tables + f"**Receptive field**: not computed: {e}.\n"
    notes = rf_notes(rows)
    return (tables + f"**Receptive field** (n: size, j: jump, r: receptive field, in input pixels)\n\n"
            f"{rf_table_markdown(rows)}\n\n" + (f"{notes}\n\n" if notes else "")
            + f"{describe_rf(receptive_field_facts(rows))}.\n")
