// The demo page: drawing pad -> preprocessing (preprocess.js) -> the exported model in
// onnxruntime-web -> prediction, probabilities, feature maps and receptive fields.
// Stable element ids for users' scripts and the tests: #pad #clear #prediction #probs #model.
import * as ort from "./ort.bundle.min.js";
import { NoDigit, preprocess, SIZE } from "./preprocess.js";

ort.env.wasm.numThreads = 1; // no SharedArrayBuffer needed, so any static host will do
ort.env.wasm.wasmPaths = new URL("./", import.meta.url).href;

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const padContext = pad.getContext("2d", { willReadFrequently: true });
const INPUT_SCALE = 8; // #input is shown at 8 screen pixels per input pixel
const state = { models: [], model: null, session: null, strokes: [], running: false, again: false };

// ---------------------------------------------------------------------------- drawing
function paintPad() {
  padContext.fillStyle = "white";
  padContext.fillRect(0, 0, pad.width, pad.height);
  padContext.strokeStyle = "black";
  padContext.lineWidth = 18;
  padContext.lineCap = padContext.lineJoin = "round";
  for (const stroke of state.strokes) {
    padContext.beginPath();
    padContext.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke) padContext.lineTo(x, y);
    if (stroke.length === 1) padContext.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
    padContext.stroke();
  }
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  state.strokes.push([padPoint(event)]);
  paintPad();
  update();
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  state.strokes[state.strokes.length - 1].push(padPoint(event));
  paintPad();
  update(); // while drawing
});
$("clear").addEventListener("click", () => { state.strokes = []; paintPad(); update(); });
$("undo").addEventListener("click", () => { state.strokes.pop(); paintPad(); update(); });

// ---------------------------------------------------------------------------- the model
async function run(pixels) {
  const input = new ort.Tensor("float32", Float32Array.from(pixels), [1, 1, SIZE, SIZE]);
  return state.session.run({ pixels: input });
}

function softmax(logits) {
  const top = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

async function update() { // one inference at a time; a request during one runs once it ends
  if (state.running) { state.again = true; return; }
  state.running = true;
  try {
    do { state.again = false; await show(); } while (state.again);
  } finally {
    state.running = false;
  }
}

async function show() {
  let pixels = null;
  if (state.strokes.length) {
    try {
      pixels = preprocess(padContext.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
    } catch (error) {
      if (!(error instanceof NoDigit)) throw error;
    }
  }
  drawInput(pixels);
  if (!pixels) { showAnswer(null); drawMaps(null); return; }
  const outputs = await run(pixels);
  showAnswer(softmax(outputs.logits.data));
  drawMaps(outputs);
}

// ---------------------------------------------------------------------------- showing it
function drawInput(pixels) {
  const context = $("input").getContext("2d");
  const image = context.createImageData(SIZE, SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = pixels ? pixels[i] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function showAnswer(probs) {
  $("prediction").textContent = probs ? String(probs.indexOf(Math.max(...probs))) : "";
  for (const row of $("probs").children) {
    const p = probs ? probs[Number(row.dataset.class)] : 0;
    row.dataset.prob = p.toFixed(6);
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = probs ? `${(100 * p).toFixed(1)}%` : "";
  }
}

function buildProbs() {
  $("probs").replaceChildren(...Array.from({ length: 10 }, (_, digit) => {
    const row = document.createElement("div");
    row.className = "prob";
    row.dataset.class = String(digit);
    row.dataset.prob = "0";
    row.innerHTML = `<span class="label">${digit}</span><span class="track"><span class="bar"></span></span><span class="value"></span>`;
    return row;
  }));
}

function buildMaps(model) {
  $("maps").replaceChildren(...model.blocks.map((block) => {
    const [channels, h, w] = block.shape;
    const figure = document.createElement("figure");
    figure.className = "block";
    figure.innerHTML = `<figcaption><b>${block.name}</b> ${channels} x ${h}x${w} &middot; RF ${block.r} px, jump ${block.j}</figcaption>`;
    const grid = document.createElement("div");
    grid.className = "grid";
    for (let c = 0; c < channels; c++) {
      const canvas = document.createElement("canvas");
      Object.assign(canvas, { width: w, height: h, title: `${block.name}, channel ${c}` });
      Object.assign(canvas.dataset, { block: block.name, channel: String(c) });
      canvas.style.width = canvas.style.height = `${Math.max(48, Math.min(96, 4 * h))}px`;
      canvas.addEventListener("pointermove", (event) => showField(block, canvas, event));
      canvas.addEventListener("pointerdown", (event) => showField(block, canvas, event));
      canvas.addEventListener("pointerleave", () => { $("rf-box").hidden = true; });
      grid.append(canvas);
    }
    figure.append(grid);
    return figure;
  }));
}

function drawMaps(outputs) {
  for (const block of state.model.blocks) {
    const [channels, h, w] = block.shape;
    const data = outputs ? outputs[block.name].data : null;
    for (let c = 0; c < channels; c++) {
      const canvas = document.querySelector(`canvas[data-block="${block.name}"][data-channel="${c}"]`);
      const context = canvas.getContext("2d");
      const image = context.createImageData(w, h);
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; data && i < h * w; i++) { lo = Math.min(lo, data[c * h * w + i]); hi = Math.max(hi, data[c * h * w + i]); }
      for (let i = 0; i < h * w; i++) {
        const v = data && hi > lo ? Math.round((255 * (data[c * h * w + i] - lo)) / (hi - lo)) : 0;
        image.data.set([v, v, v, 255], 4 * i);
      }
      context.putImageData(image, 0, 0);
    }
  }
}

// The input pixels cell (y, x) of a block can see: r of them each way, centred on start + i * j
// (the receptive-field table of `tinycnn summary`), clipped at the image's border.
function fieldOf(block, y, x) {
  const span = (i) => [Math.ceil(block.start + i * block.j - (block.r - 1) / 2), Math.floor(block.start + i * block.j + (block.r - 1) / 2)];
  const [top, bottom] = span(y).map((v) => Math.min(Math.max(v, 0), SIZE - 1));
  const [left, right] = span(x).map((v) => Math.min(Math.max(v, 0), SIZE - 1));
  return { top, left, rows: bottom - top + 1, cols: right - left + 1 };
}

function showField(block, canvas, event) {
  const [, h, w] = block.shape;
  const box = canvas.getBoundingClientRect();
  const y = Math.min(h - 1, Math.floor(((event.clientY - box.top) / box.height) * h));
  const x = Math.min(w - 1, Math.floor(((event.clientX - box.left) / box.width) * w));
  const field = fieldOf(block, y, x);
  Object.assign($("rf-box").style, { top: `${field.top * INPUT_SCALE}px`, left: `${field.left * INPUT_SCALE}px`,
    height: `${field.rows * INPUT_SCALE}px`, width: `${field.cols * INPUT_SCALE}px` });
  Object.assign($("rf-box").dataset, { block: block.name, y: String(y), x: String(x), top: String(field.top),
    left: String(field.left), rows: String(field.rows), cols: String(field.cols) });
  $("rf-box").hidden = false;
  $("rf-info").textContent = `${block.name}, cell (${y}, ${x}): receptive field r = ${block.r} px, jump j = ${block.j}, ` +
    `start = ${block.start}; it sees input rows ${field.top}-${field.top + field.rows - 1}, ` +
    `columns ${field.left}-${field.left + field.cols - 1}`;
}

// ---------------------------------------------------------------------------- models
async function selectModel(name) {
  const model = state.models.find((m) => m.name === name);
  state.session = await ort.InferenceSession.create(model.onnx, { executionProviders: ["wasm"] });
  state.model = model;
  $("model").value = name;
  // a shipped model: seed 0's accuracy, the seeds that hold, its report; a model of your own: its run's accuracy
  const accuracy = model.accuracy === null ? "" : model.holding === null ?
    `; its run: ${model.accuracy.toFixed(2)}% test accuracy` :
    `; seed 0: ${model.accuracy.toFixed(2)}% test accuracy, ${model.holding} seeds hold 99.4%`;
  const report = model.report === null ? "" : ` (<a href="${model.report}">report</a>)`;
  const info = $("model-info");
  info.replaceChildren(model.summary, document.createElement("br"));
  info.insertAdjacentHTML("beforeend", `${model.params.toLocaleString("en")} parameters, ` +
    `${model.macs.toLocaleString("en")} MACs per image${accuracy}${report}`);
  buildMaps(model);
  await update();
}

async function start() {
  state.models = await (await fetch("models.json")).json();
  $("model").replaceChildren(...state.models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name}: ${m.params.toLocaleString("en")} params, ${(m.macs / 1e6).toFixed(2)}M MACs` +
      (m.accuracy === null ? "" : `, ${m.accuracy.toFixed(2)}%`);
    return option;
  }));
  $("model").addEventListener("change", (event) => selectModel(event.target.value));
  buildProbs();
  paintPad();
  const preferred = state.models.find((m) => m.name === "Model_3") ?? state.models[0];
  await selectModel(preferred.name);
  document.body.dataset.ready = "true";
}

// For tests and scripts: classify 28x28 inputs directly, or run the page's preprocessing.
window.tinycnn = {
  ready: start(),
  async predictPixels(pixels) { return softmax((await run(pixels)).logits.data); },
  preprocess(rgba, width, height) { return Array.from(preprocess(rgba, width, height)); },
  select: selectModel,
  fieldOf: (blockName, y, x) => fieldOf(state.model.blocks.find((b) => b.name === blockName), y, x),
};
