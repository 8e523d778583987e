// The twin of src/tinycnn/preprocess.py: the same arithmetic, step for step, so that the page
// feeds the model what `tinycnn predict` would (a test compares the two on the same pictures).
// Read the Python file for the why of each step. Its constants are written into
// preprocess-constants.js by `tinycnn demo` (demo.py), so the two cannot disagree on them.
import { BACKGROUND_FITS, BOX, MAX_SIDE, MIN_CONTRAST, NOISE_DEVIATIONS, SIZE } from "./preprocess-constants.js";

export { BOX, SIZE };

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

function linspace(n) { // numpy.linspace(-1, 1, n)
  const step = n > 1 ? 2 / (n - 1) : 0;
  return Float64Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? 1.0 : i * step - 1.0));
}

function surfaceTerms(height, width) { // per pixel: 1, y, x, y^2, xy, x^2 with x, y in [-1, 1]
  const ys = linspace(height), xs = linspace(width);
  const terms = [];
  for (let r = 0; r < height; r++) for (let c = 0; c < width; c++) {
    const y = ys[r], x = xs[c];
    terms.push([1.0, y, x, y * y, x * y, x * x]);
  }
  return terms;
}

function solve(a, b) { // a x = b by Gaussian elimination with partial pivoting (a: n x n)
  const n = b.length, m = a.map((row, i) => [...row, b[i]]);
  for (let k = 0; k < n; k++) {
    let pivot = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i][k]) > Math.abs(m[pivot][k])) pivot = i;
    [m[k], m[pivot]] = [m[pivot], m[k]];
    for (let i = k + 1; i < n; i++) {
      const f = m[i][k] / m[k][k];
      for (let j = k; j <= n; j++) m[i][j] -= f * m[k][j];
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let acc = m[i][n];
    for (let j = i + 1; j < n; j++) acc -= m[i][j] * x[j];
    x[i] = acc / m[i][i];
  }
  return x;
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
  const terms = surfaceTerms(height, width);
  const half = median(x);
  let background = Array.from(x, (v) => v <= half); // ink is the minority: the fainter half is background
  let rest = null, threshold = 0;
  for (let round = 0; round < BACKGROUND_FITS; round++) {
    const ata = Array.from({ length: 6 }, () => new Float64Array(6)), atb = new Float64Array(6);
    for (let i = 0; i < x.length; i++) {
      if (!background[i]) continue;
      const t = terms[i];
      for (let a = 0; a < 6; a++) { atb[a] += t[a] * x[i]; for (let b = 0; b < 6; b++) ata[a][b] += t[a] * t[b]; }
    }
    const coef = solve(ata, atb);
    rest = x.map((v, i) => { const t = terms[i]; let light = 0; for (let a = 0; a < 6; a++) light += t[a] * coef[a]; return v - light; });
    const kept = rest.filter((_, i) => background[i]);
    const centre = median(kept);
    const spread = 1.4826 * median(kept.map((v) => Math.abs(v - centre)));
    threshold = centre + NOISE_DEVIATIONS * spread + 1.0 / 255.0;
    background = Array.from(rest, (v) => v <= threshold);
  }
  let peak = -Infinity;
  for (const v of rest) peak = Math.max(peak, v);
  if (peak - threshold < MIN_CONTRAST) throw new NoDigit("no digit found (nothing stands out from the background)");
  const top = percentile(rest.filter((v) => v > threshold), 90);
  const range = Math.max(top - threshold, 1e-6);
  return rest.map((v) => Math.min(Math.max((v - threshold) / range, 0.0), 1.0));
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
  const on = (y, x) => y >= 0 && y < height && x >= 0 && x < width && inkImage[y * width + x] > 0;
  const speck = (y, x) => { // no inked neighbour: noise, not a stroke
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if ((dy || dx) && on(y + dy, x + dx)) return false;
    return true;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (on(y, x) && !speck(y, x)) {
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
  const offsetY = Math.floor(SIZE / 2 - cy + 0.5), offsetX = Math.floor(SIZE / 2 - cx + 0.5); // MNIST's centre: pixel 14
  const out = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < newH; i++) {
    for (let j = 0; j < newW; j++) {
      const y = i + offsetY, x = j + offsetX;
      if (y >= 0 && y < SIZE && x >= 0 && x < SIZE) out[y * SIZE + x] = Math.floor(small[i][j] * 255.0 + 0.5);
    }
  }
  return out;
}

function shrink(image, width, height) { // larger pictures: longer side MAX_SIDE, area averaging
  if (Math.max(width, height) <= MAX_SIDE) return [image, width, height];
  const scale = MAX_SIDE / Math.max(width, height);
  const newH = Math.max(1, Math.floor(height * scale + 0.5)), newW = Math.max(1, Math.floor(width * scale + 0.5));
  const wh = areaWeights(height, newH), ww = areaWeights(width, newW);
  const out = new Float64Array(newH * newW);
  for (let i = 0; i < newH; i++) {
    const row = new Float64Array(width);
    for (let k = 0; k < height; k++) if (wh[i][k]) for (let l = 0; l < width; l++) row[l] += wh[i][k] * image[k * width + l];
    for (let j = 0; j < newW; j++) { let acc = 0; for (let l = 0; l < width; l++) acc += row[l] * ww[j][l]; out[i * newW + j] = acc; }
  }
  return [out, newW, newH];
}

// RGBA (0-255) of any size to the 28x28 uint8 input, white digit on black; throws NoDigit.
export function preprocess(rgba, width, height) {
  const [image, w, h] = shrink(gray(rgba, width, height), width, height);
  return toMnist(ink(image, w, h), w, h);
}
