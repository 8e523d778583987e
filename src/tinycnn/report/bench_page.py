"""The benchmark's page, reports/bench/bench.md and bench.png, from the measurements in bench.json."""
from __future__ import annotations

import statistics
from pathlib import Path

from tinycnn.evidence.plots import plot_bench
from tinycnn.files import write_text
from tinycnn.report.template import render

NO_GPU = "none on this machine (no GPU was lent to this task)"


def rounds(result: dict) -> str:
    p = result["pipeline"]
    lines = [f"| {i + 1} | {a:.0f} | {b:.0f} |" for i, (a, b) in enumerate(zip(p["tinycnn_img_s"], p["reference_img_s"]))]
    return "\n".join(lines + [f"| **median** | **{p['tinycnn_median']:.0f}** | **{p['reference_median']:.0f}** |"])


def phases(result: dict) -> str:
    total = sum(result["breakdown_ms"].values())
    return "\n".join(f"| {k} | {v:.2f} | {100 * v / total:.0f}% |" for k, v in result["breakdown_ms"].items())


def scaling(result: dict) -> str:
    by = {(r["batch"], r["threads"]): r["img_s"] for r in result["scaling"]}
    return "\n".join(f"| {b} | {by[(b, 1)]:.0f} | {by[(b, 2)]:.0f} |" for b in sorted({r["batch"] for r in result["scaling"]}))


def processes(result: dict) -> str:
    procs = {r["processes"]: r["total_img_s"] for r in result["processes"]}
    if 2 not in procs:
        return ""
    return (f"Single-thread processes side by side (batch {result['batch']}): "
            + ", ".join(f"{n} process(es): {v:.0f} img/s in total" for n, v in procs.items())
            + f" ({procs[2] / procs[1]:.2f}x for 2).")


def isa(result: dict) -> str:
    """The speed cost of pinning kernels to AVX2 (the same numbers on x86-64 CPUs with AVX2)."""
    if "isa" not in result:
        return ""
    i = result["isa"]
    pinned, native = statistics.median(i["pinned_img_s"]), statistics.median(i["native_img_s"])
    change = 100 * (pinned / native - 1)
    cost = (f"the pin costs {-change:.1f}% of the speed here" if change < 0
            else f"the pin costs no speed here (pinned is {change:.1f}% faster)")
    return (f"\n\nSame numbers across x86-64 CPUs: tinycnn pins oneDNN and ATen to AVX2 kernels (see the README). "
            f"One thread, batch {result['batch']}, medians of {len(i['pinned_img_s'])} alternations in fresh "
            f"processes: **{pinned:,.0f} img/s** pinned ({i['pinned_kernels']}) against **{native:,.0f} img/s** with "
            f"this CPU's own kernels ({i['native_kernels']}): {cost}."
            + (f" What it buys, seed 0's first epoch of the step-3 recipe: train loss "
               f"{i['pinned_epoch1']['train_loss']:.6f} and test accuracy {i['pinned_epoch1']['eval_acc']:.2f}% pinned "
               f"(what an AVX2 machine computes), {i['native_epoch1']['train_loss']:.6f} and "
               f"{i['native_epoch1']['eval_acc']:.2f}% with {i['native_kernels']} kernels."
               if i.get("pinned_epoch1") else ""))


def real_epoch(result: dict) -> str:
    """A real epoch beside the bare step (bench.json files from before it have none)."""
    if "real_epoch" not in result:
        return ""
    r, p = result["real_epoch"], result["pipeline"]
    bare_ms = 1000 * result["batch"] / p["tinycnn_median"]
    return (f"\n## 5. A real epoch, evaluation included\n\n"
            f"The second epoch of a step-3 `tinycnn train` ({result['model']}), as the engine times it: "
            f"{r['train_images']:,} training images in {r['steps']:,} steps, then the {r['eval_images']:,} "
            f"evaluation images: **{r['seconds']:.1f} s**, {r['ms_per_step']:.1f} ms a step. The bare step of "
            f"section 1 takes {bare_ms:.1f} ms ({r['steps']:,} of them: {bare_ms * r['steps'] / 1000:.1f} s); "
            f"evaluation, the weight average and the epoch's bookkeeping make up the rest.\n" + processes_epoch(result))


def processes_epoch(result: dict) -> str:
    """Step 3's epoch on one process and on its two (bench.json files from before it have none)."""
    if "processes_epoch" not in result:
        return ""
    one, two = result["processes_epoch"]["processes_1"], result["processes_epoch"]["processes_2"]
    return (f"\nThe same epoch on one process: **{one['seconds']:.1f} s**, against **{two['seconds']:.1f} s** on "
            f"step 3's two sharing each batch ({one['seconds'] / two['seconds']:.2f}x; the two are two recipes, "
            f"see docs/speed.md).\n")


def end_to_end(result: dict) -> str:
    if "full" not in result:
        return ""
    f = result["full"]
    lines = ["", "## End-to-end runs (`tinycnn bench --full`)", ""]
    runs = f.get("recipes", {"step3": {"seconds": f["one_seed_15_epochs_s"], "command": "tinycnn train"}})
    for name, run in runs.items():
        lines.append(f"- One whole `{run['command']}` (recipe `{name}`), command start to run folder written, "
                     f"alone: **{run['seconds']:.0f} s** ({run['seconds'] / 60:.1f} min).")
    if len(runs) > 1:
        lines.append("- Time to target, with the share of seeds that hold: [speed.md](../speed.md).")
    if "five_seeds_15_epochs_s" in f:
        lines.append(f"- Five seeds with `tinycnn run experiments/step3.toml` (`--five-seeds`): "
                     f"**{f['five_seeds_15_epochs_s']:.0f} s**, {f['ratio']:.2f}x one seed.")
    return "\n".join(lines) + "\n"


def write_bench_page(result: dict, out_dir: Path) -> Path:
    plot_bench(result, out_dir / "bench.png")
    e = result["eval_img_s"]
    page = render("bench.md", machine=result["machine"], gpu=result["gpu"] or NO_GPU, model=result["model"],
                  batch=result["batch"], steps=result["steps"], rounds=rounds(result),
                  ratio=f"{result['pipeline']['ratio']:.2f}", phases=phases(result), scaling=scaling(result),
                  processes=processes(result) + isa(result),
                  evaluation=f"{e['threads_1']:.0f} img/s with 1 thread, {e['threads_2']:.0f} img/s with 2 "
                             f"(batches of 2000, `inference_mode`).",
                  end_to_end=real_epoch(result) + end_to_end(result))
    return write_text(out_dir / "bench.md", page)
