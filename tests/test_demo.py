"""The demo page in a real browser (Debian's chromium, driven by Playwright): drawing with the
mouse, the page's predictions against PyTorch's, receptive fields, the model picker, the page's
preprocessing against Python's, and the static folder on a plain static server.

Where CI is set these tests fail without a browser; elsewhere they skip (.ci/run installs it)."""
import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, preprocessing_pictures
from PIL import Image

from tinycnn.models.model import MODELS, count_parameters
from tinycnn.models.tables import receptive_field_table, trace_leaf_calls
from tinycnn.ship.inference import probabilities
from tinycnn.ship.preprocess import preprocess_rgba
from tinycnn.ship.weights import load_model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="no chromium (apt-get install -y chromium); CI installs it")


def start_server(*args) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "tinycnn.cli", "demo", "--port", "0", *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in server.stdout:  # the build's lines, then the address
        if found := re.search(r"http://127\.0\.0\.1:\d+/", line):
            return server, found.group(0)
    raise AssertionError(f"the demo did not start: exit {server.wait()}")


@pytest.fixture(scope="module")
def url():
    server, address = start_server()
    yield address
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1200, "height": 1100})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=120_000)
    yield page
    assert not errors, errors
    page.close()


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Real mouse strokes; points are fractions of the pad's width and height."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()
    page.wait_for_function("() => document.querySelector('#prediction').textContent !== ''")
    page.wait_for_timeout(300)  # the last update after the stroke ends


ONE = [[(0.5, 0.15), (0.5, 0.85)]]
ZERO = [[(0.5 + 0.22 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]]
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]


PREDICT_IN_PAGE = "async (images) => Promise.all(images.map((p) => window.tinycnn.predictPixels(p)))"


def prediction(page) -> str:
    return page.locator("#prediction").text_content()


def test_drawing_with_the_mouse_and_clear_and_undo(page):
    assert prediction(page) == ""  # nothing drawn yet
    probs = page.locator("#probs > *")
    assert probs.count() == 10 and [probs.nth(i).get_attribute("data-class") for i in range(10)] == list("0123456789")
    for strokes, digit in ((ONE, "1"), (ZERO, "0"), (SEVEN, "7")):
        page.click("#clear")
        draw(page, strokes)
        assert prediction(page) == digit
        values = [float(probs.nth(i).get_attribute("data-prob")) for i in range(10)]
        assert values.index(max(values)) == int(digit) and sum(values) == pytest.approx(1.0, abs=1e-3)
    page.click("#undo")  # the seven had one stroke: undoing it leaves an empty pad
    page.wait_for_function("() => document.querySelector('#prediction').textContent === ''")


def test_the_page_predicts_what_pytorch_predicts(page, mnist):
    images = mnist.test_images[:120]
    in_page = np.array(page.evaluate(PREDICT_IN_PAGE, [image.reshape(-1).tolist() for image in images]))
    in_torch = probabilities(load_model("Model_3"), images)
    assert (in_page.argmax(1) == in_torch.argmax(1)).all()
    assert np.abs(in_page - in_torch).max() < 1e-4


@pytest.mark.parametrize("model", ["Model_3", "Model_4"])
def test_hovering_a_cell_outlines_its_receptive_field(page, model):
    weights = load_model(model)
    page.select_option("#model", model)
    page.wait_for_function(f"() => document.querySelector('#model-info').textContent"
                           f".includes('{count_parameters(weights.model):,} parameters')")
    draw(page, ONE)
    rows = receptive_field_table(weights.model)
    for block in ("conv1", "pool1", "conv3"):
        row = [r for r in rows if r.block == block][-1]
        cell = page.locator(f'canvas[data-block="{block}"][data-channel="0"]')
        size = cell.bounding_box()
        y = x = row.n_out // 2  # a middle cell: its field lies inside the image
        cell.hover(position={"x": (x + 0.5) * size["width"] / row.n_out, "y": (y + 0.5) * size["height"] / row.n_out})
        outline = page.locator("#rf-box").evaluate("e => ({...e.dataset, hidden: e.hidden})")
        first = int(np.ceil(row.start + y * row.j_out - (row.r_out - 1) / 2))
        assert not outline["hidden"] and (int(outline["y"]), int(outline["x"])) == (y, x), outline
        assert int(outline["rows"]) == int(outline["cols"]) == row.r_out, (block, outline, row)
        assert int(outline["top"]) == int(outline["left"]) == first
        assert f"r = {row.r_out} px, jump j = {row.j_out}" in page.locator("#rf-info").text_content()


def test_switching_models(page):
    """Every registered model is in the picker; the record model's separable blocks show their maps."""
    options = page.locator("#model option")
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == list(MODELS)
    page.select_option("#model", "Model_6")
    page.wait_for_function("() => document.querySelector('#model-info').textContent.includes('3,646 parameters')")
    sep3 = [c for c in trace_leaf_calls(load_model("Model_6").model, (1, 28, 28)) if c.name == "sep3.4"]
    assert page.locator('canvas[data-block="sep3"]').count() == sep3[0].output.shape[1] == 28  # a map per channel
    assert page.locator("#model-info a").get_attribute("href") == "reports/record.md"
    draw(page, ONE)
    assert prediction(page) == "1"


def test_the_pages_preprocessing_equals_pythons(page, mnist):
    """Tolerance: every pixel within 1 (of 255): the two sum float64 products in different orders."""
    for picture in preprocessing_pictures(mnist):
        height, width = picture.shape[:2]
        in_page = np.array(page.evaluate("([rgba, w, h]) => window.tinycnn.preprocess(rgba, w, h)",
                                         [picture.reshape(-1).tolist(), width, height]))
        in_python = preprocess_rgba(picture / 255.0).reshape(-1).astype(int)
        assert np.abs(in_page - in_python).max() <= 1 and (in_page == in_python).mean() > 0.99


def test_screenshot_for_the_readme(page, request, tmp_path):
    """The docs' picture of the page: a digit, its maps and one field. `make screenshot` runs this test
    with --demo-screenshot docs/demo.png; otherwise the picture goes to tmp_path (a test never writes
    into the checkout)."""
    draw(page, [[(0.3, 0.25), (0.7, 0.25), (0.4, 0.5), (0.7, 0.7), (0.35, 0.85)]])  # a three-ish stroke
    cell = page.locator('canvas[data-block="conv3"][data-channel="3"]')
    cell.hover(position={"x": cell.bounding_box()["width"] * 0.45, "y": cell.bounding_box()["height"] * 0.45})
    assert page.locator("#rf-info").inner_text().strip()  # the hovered cell's field is described
    screenshot = Path(request.config.getoption("demo_screenshot") or tmp_path / "demo.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    picture = np.asarray(Image.open(screenshot).convert("L"))
    assert picture.shape[1] >= 1000 and picture.std() > 10  # a page with content, not a blank one


@contextlib.contextmanager
def static_page(browser, folder: Path):
    """`folder` served by a plain static server (Python's), opened in a page once the demo is ready."""
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                               str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready=true]", timeout=120_000)
        yield page
        page.close()
    finally:
        server.terminate()
        server.wait()


def test_the_static_folder_works_on_a_plain_static_server(browser, tmp_path):
    folder = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "tinycnn.cli", "demo", "--static", str(folder)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert {"index.html", "demo.js", "preprocess.js", "models.json", "ort.bundle.min.js"} <= {p.name for p in folder.iterdir()}
    assert "http" not in (folder / "index.html").read_text().replace('href="data:,"', "")  # nothing from the internet
    with static_page(browser, folder) as page:
        draw(page, ONE)
        assert prediction(page) == "1"


def test_a_model_of_your_own_joins_the_picker(browser, mnist, tmp_path):
    """`tinycnn demo --model model.py:Model6 --weights RUN`: a course-style model file (not a chain of blocks: its top-level
    children become the page's blocks), trained briefly, in the picker with its maps and fields;
    the page reads a drawn digit and predicts what PyTorch predicts."""
    shutil.copyfile(ROOT / "examples" / "course" / "model.py", tmp_path / "model.py")
    trained = subprocess.run([sys.executable, "-m", "tinycnn.cli", "train", "--model", "model.py:Model6", "--epochs",
                              "1", "--train-subset", "6000", "--batch-size", "64", "--lr", "0.05", "--schedule", "none",
                              "--ema", "0", "--out", "run", "--quiet"], cwd=tmp_path, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    folder = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "tinycnn.cli", "demo", "--static", str(folder), "--model",
                            "model.py:Model6", "--weights", "run"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr
    with static_page(browser, folder) as page:
        page.select_option("#model", "model.py:Model6")
        page.wait_for_function("() => document.querySelector('#model-info').textContent.includes('7,422 parameters')")
        assert "Your model, model.py:Model6" in page.locator("#model-info").text_content()
        assert page.locator('canvas[data-block="convblock6"]').count() == 12  # one map per channel
        draw(page, ONE)
        assert prediction(page) in list("0123456789")
        cell = page.locator('canvas[data-block="convblock4"][data-channel="0"]')
        cell.hover(position={"x": cell.bounding_box()["width"] / 2, "y": cell.bounding_box()["height"] / 2})
        assert "r = 10 px, jump j = 2" in page.locator("#rf-info").text_content()  # COURSE_RF in test_model_file
        images = mnist.test_images[:60]
        in_page = np.array(page.evaluate(PREDICT_IN_PAGE, [image.reshape(-1).tolist() for image in images]))
        in_torch = probabilities(load_model(str(tmp_path / "run")), images)
        assert (in_page.argmax(1) == in_torch.argmax(1)).all() and np.abs(in_page - in_torch).max() < 1e-4
