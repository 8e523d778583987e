"""Receptive fields of any model that torch.fx can trace: chains, residual adds, concatenations,
and functional ops (F.relu, F.max_pool2d, F.adaptive_avg_pool2d, flatten, view, mean, ...).

Per spatial layer with kernel k, stride s, padding p, dilation d, from the input row n=28, j=1,
r=1, start=0:
    n_out = floor((n_in + 2p - d(k-1) - 1) / s) + 1     spatial size
    j_out = j_in * s                                   jump: input pixels between neighbours
    r_out = r_in + d(k-1) * j_in                       receptive field in input pixels
    start_out = start_in + (d(k-1)/2 - p) * j_in       centre of the first output cell's field,
                                                       in input pixel indices (input: start 0)
Output cell i sees the input pixels centred on start + i*j, r of them (clipped at the borders).

Where branches meet (an add, a concatenation), a cell sees what any branch sees: with equal jumps
the union of the branches' fields is the same span for every cell, so the row gives that span
(r from its first to its last pixel, start at its centre). With different jumps the union's width
changes from cell to cell: the row gives the widest, the jump and start of the coarsest branch,
and says so in its note. The model is traced once (symbolic, then one zero image through it for
the shapes); a model whose forward depends on the data (Python `if` on a tensor) cannot be traced,
and `NotTraceableError` says why.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

CONVS = (nn.Conv2d,)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
POOL_FUNCTIONS = (F.max_pool2d, F.avg_pool2d)
GLOBAL_POOL_FUNCTIONS = (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)
MERGES = (operator.add, operator.iadd, operator.sub, operator.mul, torch.add, torch.sub, torch.mul, torch.cat,
          torch.stack, torch.maximum)
FLATTENS = (torch.flatten, torch.reshape)
FLATTEN_METHODS = ("flatten", "view", "reshape")
GLOBAL_METHODS = ("mean", "amax", "sum")  # over both spatial dimensions: a global pool


class NotTraceableError(ValueError):
    """torch.fx cannot trace the model (its forward depends on the data): no RF table."""


@dataclass
class RFRow:
    name: str        # the layer's path in the model ("conv1.0") or the traced op's name ("add_1"); "input"
    kind: str        # its class or function ("Conv2d", "add", "cat"); "" for the input row
    kernel: int      # 0 where a row has no geometry of its own (the input, where branches meet)
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
    note: str = ""   # what a row where branches meet with different jumps shows

    @property
    def layer(self) -> str:
        """As the tables show it, e.g. "conv1.0 Conv2d"."""
        return f"{self.name} {self.kind}".strip()

    @property
    def block(self) -> str:
        """The model's top-level child that holds the layer, e.g. "conv1"."""
        return self.name.split(".")[0]


@dataclass(frozen=True)
class Field:
    """What each cell of a tensor sees: size n, jump j, field r, first cell's centre start."""
    n: int
    j: int
    r: int
    start: float


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def square(value, what: str, layer: str) -> int:
    a, b = pair(value)
    if a != b:
        raise ValueError(f"{layer}: non-square {what} {value} is not supported by the RF table")
    return int(a)


def traced(model: nn.Module, input_size: tuple[int, int, int]) -> fx.GraphModule:
    """The model's graph, each node's output shape in node.meta["tensor_meta"]."""
    try:
        graph = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many kinds; all mean "cannot trace"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotTraceableError(f"torch.fx cannot trace {type(model).__name__} ({reason}): its forward depends on "
                                f"the data, so no receptive-field table") from None
    was_training = model.training
    try:
        graph.eval()
        with torch.no_grad():
            device = next(model.parameters(), torch.zeros(())).device
            ShapeProp(graph).propagate(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
    return graph


def size(node) -> int | None:
    """Spatial size of a node's output: its last dimension for an (N, C, H, W) map, else 1."""
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return int(meta.shape[-1]) if len(meta.shape) == 4 else 1


def argument(node: fx.Node, index: int, name: str, default):
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def geometry(graph: fx.GraphModule, node: fx.Node, n_in: int) -> tuple[int, int, int, int] | str:
    """(kernel, stride, padding, dilation) of a spatial op; "merge" where branches meet; "pass"
    for an op that keeps each cell's field (activations, norms, dropout, reshapes of a vector)."""
    name = str(node.target) if node.op == "call_module" else node.name
    if node.op == "call_module":
        module = graph.get_submodule(node.target)
        if isinstance(module, CONVS):
            k, d = square(module.kernel_size, "kernel", name), square(module.dilation, "dilation", name)
            p = {"same": d * (k - 1) // 2, "valid": 0}.get(module.padding) if isinstance(module.padding, str) \
                else square(module.padding, "padding", name)
            return k, square(module.stride, "stride", name), p, d
        if isinstance(module, POOLS):
            k = square(module.kernel_size, "kernel", name)
            s = square(module.stride if module.stride is not None else k, "stride", name)
            return k, s, square(module.padding, "padding", name), square(getattr(module, "dilation", 1), "dilation", name)
        if isinstance(module, GLOBAL_POOLS):
            return global_pool(n_in, module.output_size, name)
        if isinstance(module, nn.Flatten):
            return flatten(n_in)
        return "pass"
    target = node.target
    if target in POOL_FUNCTIONS:
        k = square(argument(node, 1, "kernel_size", None), "kernel", name)
        stride = argument(node, 2, "stride", None)
        s = square(stride if stride not in (None, [], ()) else k, "stride", name)
        d = square(argument(node, 4, "dilation", 1), "dilation", name) if target is F.max_pool2d else 1
        return k, s, square(argument(node, 3, "padding", 0), "padding", name), d
    if target in GLOBAL_POOL_FUNCTIONS:
        return global_pool(n_in, argument(node, 1, "output_size", None), name)
    if target is F.conv2d:
        weight = argument(node, 1, "weight", None)
        k = square(tuple(weight.meta["tensor_meta"].shape[-2:]), "kernel", name)
        d = square(argument(node, 5, "dilation", 1), "dilation", name)
        padding = argument(node, 4, "padding", 0)
        p = {"same": d * (k - 1) // 2, "valid": 0}[padding] if isinstance(padding, str) else square(padding, "padding", name)
        return k, square(argument(node, 3, "stride", 1), "stride", name), p, d
    if target in MERGES:
        return "merge"
    if target in FLATTENS or (node.op == "call_method" and target in FLATTEN_METHODS):
        return flatten(n_in)
    if node.op == "call_method" and target in GLOBAL_METHODS:
        dims = argument(node, 1, "dim", None)
        dims = {d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims])} if dims is not None else set()
        return global_pool(n_in, 1, name) if dims >= {2, 3} else "pass"
    return "pass"


def global_pool(n_in: int, output_size, name: str) -> tuple[int, int, int, int]:
    out = square(output_size if output_size is not None else n_in, "output size", name)
    stride = n_in // out
    return n_in - (out - 1) * stride, stride, 0, 1  # exact when out divides n_in


def flatten(n_in: int) -> tuple[int, int, int, int] | str:
    return (n_in, 1, 0, 1) if n_in > 1 else "pass"  # flattening a map = seeing all of it


def merged(fields: list[Field], n: int) -> tuple[Field, str]:
    """Where branches meet: each cell sees the union of what the branches' cells see."""
    def span(f: Field, i: int) -> tuple[float, float]:
        centre = f.start + i * f.j
        return centre - (f.r - 1) / 2, centre + (f.r - 1) / 2

    jumps = sorted({f.j for f in fields})
    cells = range(n) if len(jumps) > 1 else range(1)  # equal jumps: every cell's union is the same span
    unions = [(min(span(f, i)[0] for f in fields), max(span(f, i)[1] for f in fields)) for i in cells]
    widest = max(int(round(hi - lo)) + 1 for lo, hi in unions)
    lo, hi = unions[0]
    note = "" if len(jumps) == 1 else (f"branches with jumps {', '.join(map(str, jumps))} meet here: r is the "
                                       f"widest field over the {n}x{n} cells, j that of the coarsest branch")
    return Field(n, jumps[-1], widest, (lo + hi) / 2), note


def receptive_field_table(model: nn.Module, input_size: tuple[int, int, int] = (1, 28, 28)) -> list[RFRow]:
    """One row for the input, one per spatial op (conv, pool, global pool, flatten of a map) and
    one where branches meet; raises NotTraceableError for a model torch.fx cannot trace."""
    graph = traced(model, input_size)
    fields: dict[fx.Node, Field] = {}
    rows: list[RFRow] = []
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            fields[node] = Field(input_size[-1], 1, 1, 0.0)
            rows.append(RFRow("input", "", 0, 0, 0, 0, input_size[-1], input_size[-1], 1, 1, 1, 1, 0.0))
            continue
        inputs = [fields[a] for a in node.all_input_nodes if a in fields]
        if node.op == "output" or not inputs:
            continue  # parameters, constants, and what is computed from them alone
        name, kind = ((str(node.target), type(graph.get_submodule(node.target)).__name__) if node.op == "call_module"
                      else (node.name, getattr(node.target, "__name__", str(node.target))))
        first = fields[node.args[0]] if isinstance(node.args[0], fx.Node) and node.args[0] in fields else inputs[0]
        shape = geometry(graph, node, first.n)
        if shape == "merge" and len(inputs) > 1:
            field, note = merged(inputs, size(node) or first.n)
            rows.append(RFRow(name, kind, 0, 0, 0, 0, first.n, field.n, first.j, field.j, first.r, field.r,
                              field.start, note))
        elif isinstance(shape, tuple):
            k, s, p, d = shape
            n = (first.n + 2 * p - d * (k - 1) - 1) // s + 1
            field = Field(n, first.j * s, first.r + d * (k - 1) * first.j, first.start + (d * (k - 1) / 2 - p) * first.j)
            rows.append(RFRow(name, kind, k, s, p, d, first.n, n, first.j, field.j, first.r, field.r, field.start))
        else:
            field = first
        fields[node] = field
    return rows
