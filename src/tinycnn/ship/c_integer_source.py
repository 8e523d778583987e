"""The fixed C text of the integer-only int8 export (c_integer.py writes the model's tables and the
memory plan): the stage engine that streams rows through ring buffers, its header and host harness."""
from tinycnn.ship.c_source import HARNESS_TEXT

TYPES = """
/* One integer convolution: int8 weights in [cout][k][k][cin / groups] order, an int32 bias per
   output channel (0: none), and its rescale to the output's int8 scale as a multiplier and a shift. */
typedef struct {
    const int8_t *w;
    const int32_t *bias;
    const int16_t *mult;
    const int8_t *shift;
    int16_t gin, gout, cout;           /* input and output channels per group; all output channels */
    int8_t k, s, p;
    int8_t in_zero, out_zero, out_min; /* zero points; out_min: the output's zero point under a ReLU, else -128 */
} Conv;

enum { TO_RING, TO_GAP, TO_LOGITS };

/* A stage makes its output row by row: conv a, then (b.cout > 0) the 1x1 conv b on a's output pixel
   by pixel, then a max pool (window = stride; 1: none), so neither a's map nor the map before the
   pool is ever stored. Its input is the image itself (rows == 0) or a ring of the last `rows` rows
   the stage before wrote; a gap stage averages the sums the stage before added up. */
typedef struct {
    const Conv *a, *b;                 /* b: 0 when there is none */
    int16_t h, w, c;                   /* the input map */
    int16_t oh, ow, oc;                /* the output map */
    uint16_t ring;                     /* the input ring's offset in the arena */
    int8_t rows, gap, pool, to;        /* to: TO_RING is the next stage's ring */
} Stage;
"""

RUNTIME = """
/* round(acc * mult / 2^shift), half away from zero: integers only, the same on every compiler and CPU */
static int32_t rescale(int32_t acc, int32_t mult, int shift) {
    const int64_t product = (int64_t)acc * mult, half = (int64_t)1 << (shift - 1);
    return (int32_t)(product >= 0 ? (product + half) >> shift : -((-product + half) >> shift));
}

static int8_t requantise(const Conv *cv, int co, int32_t acc) {
    const int32_t q = cv->out_zero + rescale(acc + (cv->bias ? cv->bias[co] : 0), cv->mult[co], cv->shift[co]);
    return (int8_t)(q < cv->out_min ? cv->out_min : q > 127 ? 127 : q);
}
%(dots)s
/* a 1x1 conv on one pixel's channels */
static int32_t dot_pixel(const Conv *cv, const int8_t *in, int first, int co) {
    const int8_t *w = cv->w + co * cv->gin;
    int32_t acc = 0;
    int ci;
    for (ci = 0; ci < cv->gin; ci++) acc += w[ci] * (in[first + ci] - cv->in_zero);
    return acc;
}

/* the last conv's value for channel co at one position of the pool window: a logit, or the
   largest int8 of the window so far */
static void keep(const Stage *st, const Conv *cv, int co, int32_t acc, int later, int8_t *best, int32_t *logits) {
    int8_t q;
    if (st->to == TO_LOGITS) {
        logits[co] = rescale(acc + (cv->bias ? cv->bias[co] : 0), cv->mult[co], cv->shift[co]);
        return;
    }
    q = requantise(cv, co, acc);
    if (!later || q > best[co]) best[co] = q;
}

/* y modulo n for a row number (no division: a Cortex-M0 has no divide instruction) */
static int wrap(int y, int n) {
    while (y >= n) y -= n;
    return y;
}

static void conv_row(const Stage *st, const uint8_t *image, int8_t *arena, int r, int32_t *logits) {
    const Conv *a = st->a, *b = st->b;
    int8_t *mid = arena + TINYCNN_SCRATCH, *best = mid + TINYCNN_SCRATCH_MID;
    const int8_t *rows[TINYCNN_WINDOW_ROWS]; /* the input rows the window reads; 0: padding */
    int x, py, px, ky, co, first, left;
    for (py = 0; py < st->pool; py++)
        for (ky = 0; ky < a->k; ky++) {
            const int iy = (r * st->pool + py) * a->s - a->p + ky;
            rows[py * a->k + ky] = iy < 0 || iy >= st->h ? 0
                : st->rows ? arena + st->ring + wrap(iy, st->rows) * st->w * st->c
                : (const int8_t *)(image + iy * st->w * st->c);
        }
    for (x = 0; x < st->ow; x++) {
        for (py = 0; py < st->pool; py++)
            for (px = 0; px < st->pool; px++) {
                const int later = py || px, xc = x * st->pool + px;
                for (co = 0, first = 0, left = a->gout; co < a->cout; co++) {
                    const int32_t acc = %(dot_call)s;
                    if (b) mid[co] = requantise(a, co, acc);
                    else keep(st, a, co, acc, later, best, logits);
                    if (--left == 0) { first += a->gin; left = a->gout; }
                }
                if (b)
                    for (co = 0, first = 0, left = b->gout; co < b->cout; co++) {
                        keep(st, b, co, dot_pixel(b, mid, first, co), later, best, logits);
                        if (--left == 0) { first += b->gin; left = b->gout; }
                    }
            }
        if (st->to == TO_RING) {
            int8_t *out = arena + st[1].ring + wrap(r, st[1].rows) * st->ow * st->oc + x * st->oc;
            for (co = 0; co < st->oc; co++) out[co] = best[co];
        } else if (st->to == TO_GAP) {
            int32_t *sums = (int32_t *)(void *)arena;
            for (co = 0; co < st->oc; co++) sums[co] += best[co];
        }
    }
}
%(gap)s
/* whether stage i can make its next row: the rows it reads are there, and the row it writes
   overwrites none the next stage still needs */
static int ready(int i, const int16_t *done) {
    const Stage *st = &STAGES[i];
    const int r = done[i], have = i ? done[i - 1] : st->h;
    const int need = st->gap ? st->h : ((r + 1) * st->pool - 1) * st->a->s - st->a->p + st->a->k;
    if (r >= st->oh || have < (need < st->h ? need : st->h)) return 0;
    if (st->to == TO_RING && done[i + 1] < st[1].oh)
        return r - st[1].rows < done[i + 1] * st[1].pool * st[1].a->s - st[1].a->p;
    return 1;
}

int tinycnn_predict(const uint8_t image[784], void *arena, int32_t logits[10]) {
    int8_t *bytes = (int8_t *)arena;
    int16_t done[TINYCNN_STAGES];
    int i, best = 0;
    for (i = 0; i < TINYCNN_STAGES; i++) done[i] = 0;
    for (i = 0; i < TINYCNN_GAP_CHANNELS; i++) ((int32_t *)arena)[i] = 0;
    for (;;) { /* the deepest stage that can go makes a row: the rings never hold more than they must */
        for (i = TINYCNN_STAGES - 1; i >= 0 && !ready(i, done); i--) continue;
        if (i < 0) break;
        %(step)s
        done[i]++;
    }
    for (i = 1; i < 10; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
"""

DOT = """
/* conv a's sum for output channel co at output column xc, over the rows of its window (%(what)s) */
static int32_t dot_%(name)s(const Conv *cv, const int8_t *const *rows, int width, int channels, int xc, int first, int co) {
    const int8_t *w = cv->w + co * cv->k * cv->k * cv->gin;
    int32_t acc = 0;
    int ky, kx, ci;
    for (ky = 0; ky < cv->k; ky++)
        for (kx = 0; kx < cv->k; kx++, w += cv->gin) {
            const int ix = xc * cv->s - cv->p + kx;
            const %(type)s *in;
            if (!rows[ky] || ix < 0 || ix >= width) continue;
            in = (const %(type)s *)rows[ky] + ix * channels + first;
            for (ci = 0; ci < cv->gin; ci++) acc += w[ci] * (in[ci] - cv->in_zero);
        }
    return acc;
}
"""

GAP = """
static void gap_row(const Stage *st, int8_t *arena) {
    const int32_t *sums = (const int32_t *)(void *)arena;
    int8_t *out = arena + st[1].ring;
    int ch;
    for (ch = 0; ch < st->c; ch++) {
        const int32_t q = st->a->out_zero + rescale(sums[ch] - (int32_t)st->h * st->w * st->a->in_zero, st->a->mult[0],
                                                    st->a->shift[0]);
        out[ch] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
    }
}
"""

HEADER = """/* {model}: a tiny MNIST classifier in integer-only C (int8), written by
   `tinycnn export --format c --weights int8`. C99, integers only, no malloc, no library. */
#ifndef TINYCNN_MODEL_H
#define TINYCNN_MODEL_H
#include <stdint.h>

/* The working memory tinycnn_predict needs, planned at export (tinycnn_model.c lists its parts):
   the caller passes it, TINYCNN_ARENA_BYTES bytes aligned to 4, wherever the firmware wants it. */
#define TINYCNN_ARENA_BYTES {arena}

/* A logit as a real number: TINYCNN_LOGIT_SCALE * logits[i] (for reading them; the C uses no float). */
#define TINYCNN_LOGIT_SCALE {logit_scale!r}

/* image: 28x28 raw pixels (0-255, white digit on black, row-major); logits: the ten class scores,
   int32. Returns the predicted digit. Reentrant: all its state is in the arena and on the stack. */
int tinycnn_predict(const uint8_t image[784], void *arena, int32_t logits[10]);

#endif
"""

HARNESS = HARNESS_TEXT % {"logit": "int32_t", "arena": "static int32_t arena[(TINYCNN_ARENA_BYTES + 3) / 4];\n",
                         "arena_argument": "arena, "}
