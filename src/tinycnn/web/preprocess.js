// The twin of src/tinycnn/preprocess.py: the same arithmetic, step for step, so that the page
// feeds the model what `tinycnn predict` would (a test compares the two on the same pictures).
// Read the Python file for the why of each step.
export const BOX = 20;
export const SIZE = 28;
const MIN_CONTRAST = 0.15;

export class NoDigit extends Error {}

// Luma over a white background; rgba holds 0-255 values (a canvas's ImageData.data).
export function gray(rgba, width, height) {
  const out = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const r = rgba[4 * i] / 255, g = rgba[4 * i + 1] / 255, b = rgba[4 * i + 2] / 255, a = rgba[4 * i + 3] / 255;
    const luma = r * 0.299 + g * 0.587 + b * 0.114;
    out[i] = luma * a + (1.0 - a);
  }
  return out;
}

function sorted(values) {
  return Float64Array.from(values).sort();
}

function median(values) { // numpy.median
  const s = sorted(values), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function percentile(values, q) { // numpy.percentile, method "linear" (numpy's two-sided lerp)
  const s = sorted(values), n = s.length;
  const index = (n - 1) * (q / 100);
  const below = Math.floor(index), above = Math.min(below + 1, n - 1), t = index - below;
  const diff = s[above] - s[below];
  return t >= 0.5 ? s[above] - diff * (1 - t) : s[below] + diff * t;
}

export function otsu(x) {
  const hist = new Float64Array(256);
  for (const v of x) hist[Math.min(Math.floor(v * 255.0 + 0.5), 255)] += 1;
  let weightLow = 0, sumLow = 0, total = 0, totalSum = 0;
  for (let i = 0; i < 256; i++) { total += hist[i]; totalSum += hist[i] * i; }
  let best = -1, bestIndex = 0;
  for (let i = 0; i < 256; i++) {
    weightLow += hist[i];
    sumLow += hist[i] * i;
    const weightHigh = total - weightLow;
    let between = (totalSum * weightLow - total * sumLow) ** 2 / (weightLow * weightHigh);
    if (!Number.isFinite(between)) between = -1.0;
    if (between > best) { best = between; bestIndex = i; }
  }
  return (bestIndex + 0.5) / 255.0;
}

export function ink(grayImage, width, height) {
  const border = [];
  for (let x = 0; x < width; x++) border.push(grayImage[x], grayImage[(height - 1) * width + x]);
  for (let y = 1; y < height - 1; y++) border.push(grayImage[y * width], grayImage[y * width + width - 1]);
  const light = median(border) > 0.5;
  const x = grayImage.map((v) => (light ? 1.0 - v : v));
  let lo = Infinity, hi = -Infinity;
  for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (hi - lo < MIN_CONTRAST) throw new NoDigit("no digit found (the picture is blank or has too little contrast)");
  const split = otsu(x);
  const background = x.filter((v) => v <= split);
  const centre = median(background);
  const spread = 1.4826 * median(background.map((v) => Math.abs(v - centre)));
  const threshold = Math.min(split, centre + 3.0 * spread + 1.0 / 255.0);
  const top = percentile(x.filter((v) => v > threshold), 90);
  const range = Math.max(top - threshold, 1e-6);
  return x.map((v) => Math.min(Math.max((v - threshold) / range, 0.0), 1.0));
}

export function areaWeights(source, target) { // (target x source): each output pixel averages its input span
  const scale = source / target;
  const weights = [];
  for (let i = 0; i < target; i++) {
    const row = new Float64Array(source);
    const start = i * scale, end = (i + 1) * scale;
    for (let j = Math.floor(start); j < Math.min(Math.ceil(end), source); j++) {
      row[j] = Math.min(end, j + 1) - Math.max(start, j);
    }
    let sum = 0;
    for (const v of row) sum += v;
    weights.push(row.map((v) => v / sum));
  }
  return weights;
}

export function toMnist(inkImage, width, height) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (inkImage[y * width + x] > 0) {
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0) throw new NoDigit("no digit found (no ink above the background)");
  const h = bottom - top + 1, w = right - left + 1;
  const scale = BOX / Math.max(h, w);
  const newH = Math.max(1, Math.floor(h * scale + 0.5)), newW = Math.max(1, Math.floor(w * scale + 0.5));
  const wh = areaWeights(h, newH), ww = areaWeights(w, newW);
  const rows = []; // wh @ crop
  for (let i = 0; i < newH; i++) {
    const row = new Float64Array(w);
    for (let k = 0; k < h; k++) {
      const weight = wh[i][k];
      if (weight === 0) continue;
      for (let l = 0; l < w; l++) row[l] += weight * inkImage[(top + k) * width + left + l];
    }
    rows.push(row);
  }
  const small = rows.map((row) => { // (wh @ crop) @ ww.T
    const out = new Float64Array(newW);
    for (let j = 0; j < newW; j++) { let acc = 0; for (let l = 0; l < w; l++) acc += row[l] * ww[j][l]; out[j] = acc; }
    return out;
  });
  let mass = 0, my = 0, mx = 0;
  for (let i = 0; i < newH; i++) for (let j = 0; j < newW; j++) { mass += small[i][j]; my += small[i][j] * i; mx += small[i][j] * j; }
  const cy = my / mass, cx = mx / mass;
  const offsetY = Math.floor(SIZE / 2 - 0.5 - cy + 0.5), offsetX = Math.floor(SIZE / 2 - 0.5 - cx + 0.5);
  const out = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < newH; i++) {
    for (let j = 0; j < newW; j++) {
      const y = i + offsetY, x = j + offsetX;
      if (y >= 0 && y < SIZE && x >= 0 && x < SIZE) out[y * SIZE + x] = Math.floor(small[i][j] * 255.0 + 0.5);
    }
  }
  return out;
}

// RGBA (0-255) of any size to the 28x28 uint8 input, white digit on black; throws NoDigit.
export function preprocess(rgba, width, height) {
  return toMnist(ink(gray(rgba, width, height), width, height), width, height);
}
