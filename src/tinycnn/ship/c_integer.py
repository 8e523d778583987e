"""Integer-only int8 C with a memory plan: tinycnn_model.c and tinycnn_model.h.

    int tinycnn_predict(const uint8_t image[784], void *arena, int32_t logits[10]);

The integer network (integer.py) runs as stages: a convolution, the 1x1 convolution after it (a
separable block's pointwise half, a transition) applied pixel by pixel, and the max pool after
them, fused, so a stage writes only its pooled output. Stages stream rows: each reads a ring of
the last few rows the stage before wrote (as many as one output row's window needs), and the
deepest stage that can make a row does, so no whole map is ever stored after the image. The arena
is planned here from the stages' shapes: the sums of the global average pool, one ring per stage,
and a scratch of two pixels' channels; the header states its size, the caller passes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinycnn.errors import ConfigError
from tinycnn.files import write_text
from tinycnn.ship.c import ends_in_log_softmax, literal, plan, run_written
from tinycnn.ship.c_integer_source import DOT, GAP, HARNESS, HEADER, RUNTIME, TYPES
from tinycnn.ship.integer import Conv, Gap, Network, Pool, quantise_network
from tinycnn.ship.weights import Weights

IMAGE_BYTES = 784


@dataclass
class Stage:
    a: Conv | Gap
    b: Conv | None = None        # a 1x1 conv on a's output, pixel by pixel
    pool: int = 1
    shape_in: tuple = ()
    shape_out: tuple = ()
    rows: int = 0                # rows of the input ring (0: the image)
    ring: int = 0                # its offset in the arena
    to: str = "TO_RING"

    @property
    def name(self) -> str:
        return "+".join(op.name for op in (self.a, self.b) if op is not None) + (f"+pool{self.pool}" if self.pool > 1
                                                                                 else "")


def pointwise(op) -> bool:
    return isinstance(op, Conv) and op.kernel == 1 and op.stride == 1 and op.padding == 0


def stages(network: Network) -> list[Stage]:
    """Group the integer operations into stages (module docstring) and size each stage's ring."""
    ops, found, i = network.ops, [], 0
    while i < len(ops):
        op = ops[i]
        if isinstance(op, Pool):
            raise ConfigError(f"int8 C: max pool {op.name} must follow a convolution (it is fused into one)")
        stage = Stage(op, shape_in=op.shape_in, shape_out=op.shape_out)
        i += 1
        if isinstance(op, Conv) and not op.logits and i < len(ops) and pointwise(ops[i]):
            stage.b, stage.shape_out, i = ops[i], ops[i].shape_out, i + 1
        if isinstance(op, Conv) and i < len(ops) and isinstance(ops[i], Pool):
            stage.pool, stage.shape_out, i = ops[i].kernel, ops[i].shape_out, i + 1
        found.append(stage)
    for stage, after in zip(found, found[1:] + [None]):
        if isinstance(after, Stage) and isinstance(after.a, Gap):
            stage.to = "TO_GAP"
        elif after is None:
            stage.to = "TO_LOGITS"
            if stage.shape_out[1:] != (1, 1) or stage.pool > 1:
                raise ConfigError(f"int8 C: the last layer ({stage.name}) must give 10 logits on a 1x1 map")
    if sum(isinstance(s.a, Gap) for s in found) > 1:
        raise ConfigError("int8 C: one global average pool at most")
    for stage in found[1:]:
        c, h, w = stage.shape_in
        window = 1 if isinstance(stage.a, Gap) else (stage.pool - 1) * stage.a.stride + stage.a.kernel
        stage.rows = 0 if isinstance(stage.a, Gap) else min(h, window)
    return found


@dataclass
class MemoryPlan:
    parts: list[tuple[str, int, int]]   # (what, offset, bytes), in arena order
    arena_bytes: int
    gap_channels: int
    scratch: int                        # offset of the scratch
    scratch_mid: int                    # bytes of its first half (a's channels, for b)


def memory_plan(found: list[Stage]) -> MemoryPlan:
    """Where everything the stages keep goes in the arena: the average pool's int32 sums first (4-byte
    aligned), then each stage's input ring, then the scratch (written by the widest stage last, so
    the arena's last byte is one the engine writes: what the emulator measures)."""
    parts, offset = [], 0
    gap = next((s for s in found if isinstance(s.a, Gap)), None)
    gap_channels = gap.shape_in[0] if gap else 0
    if gap_channels:
        parts.append((f"{gap.a.name}: int32 sums of {gap_channels} channels", 0, 4 * gap_channels))
        offset = 4 * gap_channels
    for stage in found[1:]:
        if stage.rows:
            c, h, w = stage.shape_in
            stage.ring, size = offset, stage.rows * w * c
            parts.append((f"{stage.name}: input ring of {stage.rows} of {h} rows of {w}x{c}", offset, size))
            offset += size
    mid = max([s.a.shape_out[0] for s in found if s.b is not None], default=0)
    widest = max(s.shape_out[0] for s in found if not isinstance(s.a, Gap))
    parts.append((f"scratch: one pixel's channels before the 1x1 conv ({mid}) and the pool's best ({widest})",
                  offset, mid + widest))
    return MemoryPlan(parts, offset + mid + widest, gap_channels, offset, mid)


def check_ram(plan: MemoryPlan, ram_limit: int | None) -> None:
    if ram_limit is not None and plan.arena_bytes > ram_limit:
        name, _, size = max(plan.parts, key=lambda part: part[2])
        raise ConfigError(f"int8 C: the arena needs {plan.arena_bytes:,} bytes, over --ram-limit {ram_limit:,}; "
                          f"its largest part is {name} ({size:,} bytes)")


def conv_init(op: Conv | Gap, prefix: str) -> str:
    """The op's Conv struct (a Gap's: its rescale and zero points)."""
    if isinstance(op, Gap):
        return f"{{0, 0, {prefix}M, {prefix}S, 1, 1, {op.shape_in[0]}, 1, 1, 0, {op.in_zero}, {op.out_zero}, -128}}"
    out_min = op.out_zero if op.relu else -128
    cout, gin = op.weight.shape[:2]
    bias = f"{prefix}B" if op.bias.any() else "0"
    return (f"{{{prefix}W, {bias}, {prefix}M, {prefix}S, {gin}, {cout // op.groups}, {cout}, {op.kernel}, "
            f"{op.stride}, {op.padding}, {op.in_zero}, {op.out_zero}, {out_min}}}")


def arrays(op: Conv | Gap, prefix: str) -> tuple[list[str], int]:
    """The op's constant tables, and their bytes of flash."""
    if isinstance(op, Gap):
        return [f"static const int16_t {prefix}M[1] = {{{op.mult}}};",
                f"static const int8_t {prefix}S[1] = {{{op.shift}}};"], 3
    weight = op.weight.transpose(0, 2, 3, 1)   # [cout][k][k][cin / groups]: the input's channel-last order
    bias = [f"static const int32_t {prefix}B[{op.bias.size}] = {{\n{literal(op.bias, 'int')}\n}};"] \
        if op.bias.any() else []
    return ([f"static const int8_t {prefix}W[{weight.size}] = {{\n{literal(weight, 'int')}\n}};", *bias,
             f"static const int16_t {prefix}M[{op.mult.size}] = {{\n{literal(op.mult, 'int')}\n}};",
             f"static const int8_t {prefix}S[{op.shift.size}] = {{\n{literal(op.shift, 'int')}\n}};"],
            weight.size + (4 * op.bias.size if bias else 0) + 3 * op.mult.size)


def source(network: Network, name: str, ram_limit: int | None = None) -> tuple[str, str, dict]:
    """(tinycnn_model.c, tinycnn_model.h, facts: bytes of the constant tables (flash without the code;
    firmware.py measures the whole), the arena and its parts)."""
    found = stages(network)
    plan = memory_plan(found)
    check_ram(plan, ram_limit)
    tables, convs, rows, flash = [], [], [], 0
    for i, stage in enumerate(found):
        names = []
        for op, prefix in ((stage.a, f"A{i}"), (stage.b, f"B{i}")):
            if op is not None:
                text, size = arrays(op, prefix)
                tables += text
                convs.append(f"static const Conv {prefix} = {conv_init(op, prefix)};")
                flash += size + 28   # + sizeof(Conv) on a 32-bit target
                names.append(f"&{prefix}")
        c, h, w = stage.shape_in
        oc, oh, ow = stage.shape_out
        rows.append(f"    {{{names[0]}, {names[1] if len(names) > 1 else 0}, {h}, {w}, {c}, {oh}, {ow}, {oc}, "
                    f"{stage.ring}, {stage.rows}, {int(isinstance(stage.a, Gap))}, {stage.pool}, {stage.to}}},"
                    f" /* {stage.name} */")
    flash += 24 * len(found)  # sizeof(Stage)
    conv_stages = [s for s in found if isinstance(s.a, Conv)]
    kinds = [("ring", "int8_t", "a ring of int8 rows")] if any(s.rows for s in conv_stages) else []
    kinds.insert(0, ("image", "uint8_t", "the image's pixels"))
    dot_call = ("st->rows ? dot_ring(a, rows + py * a->k, st->w, st->c, xc, first, co) : "
                "dot_image(a, rows + py * a->k, st->w, st->c, xc, first, co)") if len(kinds) == 2 else \
        "dot_image(a, rows + py * a->k, st->w, st->c, xc, first, co)"
    has_gap = plan.gap_channels > 0
    runtime = RUNTIME % {"dots": "".join(DOT % {"name": k, "type": t, "what": what} for k, t, what in kinds),
                         "dot_call": dot_call, "gap": GAP if has_gap else "",
                         "step": ("if (STAGES[i].gap) gap_row(&STAGES[i], bytes);\n        else " if has_gap else "")
                         + "conv_row(&STAGES[i], image, bytes, done[i], logits);"}
    window = max(s.pool * s.a.kernel for s in conv_stages)
    described = "\n".join(f"   {offset:6d} {size:6d}  {what}" for what, offset, size in plan.parts)
    code = "\n".join([
        f"/* {name} as integer-only C99 (int8), written by `tinycnn export --format c --weights int8`.",
        f"   The arena ({plan.arena_bytes} bytes): offset, bytes, what", described, "*/",
        '#include "tinycnn_model.h"', "",
        f"#define TINYCNN_STAGES {len(found)}", f"#define TINYCNN_GAP_CHANNELS {plan.gap_channels}",
        f"#define TINYCNN_SCRATCH {plan.scratch}", f"#define TINYCNN_SCRATCH_MID {plan.scratch_mid}",
        f"#define TINYCNN_WINDOW_ROWS {window}", TYPES, *tables, "", *convs, "",
        "static const Stage STAGES[TINYCNN_STAGES] = {", *rows, "};", runtime])
    header = HEADER.format(model=name, arena=plan.arena_bytes, logit_scale=network.logit_scale)
    facts = {"constant_bytes": flash, "arena_bytes": plan.arena_bytes, "input_bytes": IMAGE_BYTES,
             "arena": [{"part": what, "offset": offset, "bytes": size} for what, offset, size in plan.parts],
             "stages": [s.name for s in found]}
    return code, header, facts


def export(weights: Weights, out_dir: Path, images: np.ndarray, calibration: np.ndarray,
           ram_limit: int | None = None) -> tuple[dict, np.ndarray | None, dict]:
    """Plan, quantise (ranges read on `calibration` pixels) and write the integer C, refusing what
    it cannot hold before a file is written; compile and run it on `images` when a compiler is here.
    Returns ({file name: path}, the logits as real numbers (None when nothing ran), the facts)."""
    network = quantise_network(plan(weights.model), calibration, weights.meta["mean"], weights.meta["std"])
    log_probabilities = ends_in_log_softmax(weights.model)
    code, header, facts = source(network, weights.name, ram_limit)
    files = {"tinycnn_model.c": write_text(out_dir / "tinycnn_model.c", code),
             "tinycnn_model.h": write_text(out_dir / "tinycnn_model.h", header)}
    logits, facts = run_written(weights.model, out_dir, images, facts, log_probabilities, HARNESS, np.int32,
                                network.logit_scale)
    return files, logits, facts
