"""The benchmark measures what it says and writes its report (no timed assertions: speed is not a test)."""
import json

import numpy as np
import torch

from tinycnn.evidence.bench import PerImageMNIST, run_bench
from tinycnn.files import write_json
from tinycnn.report.bench_page import write_bench_page


def test_reference_dataset_augments_one_image_with_a_black_background(mnist):
    dataset = PerImageMNIST(mnist.train_images[:10], mnist.train_labels[:10], degrees=30, mean=0.0, std=1.0)
    np.random.seed(0)
    x, y = dataset[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == mnist.train_labels[0]
    assert x[0, :2, :2].abs().max() == 0  # corners stay background after rotation


def test_bench_runs_every_part_and_writes_its_report(mnist, tmp_path):
    result = run_bench(steps=2, repeats=1, epoch_images=640, log=lambda *_: None)
    assert result["pipeline"]["tinycnn_median"] > 0 and result["pipeline"]["reference_median"] > 0
    assert set(result["breakdown_ms"]) == {"batch + augmentation", "forward", "backward", "optimiser step"}
    assert {(r["batch"], r["threads"]) for r in result["scaling"]} == {(b, t) for b in (64, 128, 256, 512, 1024) for t in (1, 2)}
    assert [p["processes"] for p in result["processes"]] == [1, 2]
    assert result["isa"]["pinned_kernels"] != "AVX512" and result["isa"]["native_img_s"][0] > 0  # the pin holds
    write_json(tmp_path / "bench.json", result)
    write_bench_page(json.loads((tmp_path / "bench.json").read_text()), tmp_path)
    text = (tmp_path / "bench.md").read_text()
    assert "as many images per second as the reference" in text
    pipeline = result["pipeline"]  # the page quotes the measured medians, not other numbers
    assert f"| **median** | **{pipeline['tinycnn_median']:.0f}** | **{pipeline['reference_median']:.0f}** |" in text
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    epoch = result["real_epoch"]  # an epoch as `tinycnn train` runs it: five steps of 128, then 10,000 evaluated
    assert epoch["steps"] == 5 and epoch["eval_images"] == 10_000 and epoch["seconds"] > 0
    assert f"640 training images in 5 steps, then the 10,000 evaluation images: **{epoch['seconds']:.1f} s**" in text
    one = result["processes_epoch"]["processes_1"]  # and on one process instead of step 3's two
    assert f"The same epoch on one process: **{one['seconds']:.1f} s**, against **{epoch['seconds']:.1f} s**" in text
