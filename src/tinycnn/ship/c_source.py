"""The fixed C text of the C export (export_c.py writes the model-specific rest): the layer
functions, emitted only when a model uses them (-Wall refuses unused static functions), the
header, and the test harness that runs the compiled model on images from stdin."""

RUNTIME = {  # emitted only when the model uses them (-Wall refuses unused static functions)
    "buffers": """static float buffer_a[TINYCNN_BUFFER_FLOATS], buffer_b[TINYCNN_BUFFER_FLOATS];
""",
    "conv": """
/* out[co][y][x] = bias[co] + sum over ci, ky, kx of w[co][ci][ky][kx] * in[first + ci][y*s+ky-p][x*s+kx-p]
   where ci runs over the cin / g input channels of output channel co's group, which starts at channel
   first (g = 1: every input channel; g = cin = cout: depthwise, one channel each). A linear layer is
   the 1x1 case on a 1x1 map */
static void conv(const float *in, float *out, const float *w, const float *bias,
                 int cin, int h, int wd, int cout, int k, int s, int p, int g, int oh, int ow, int relu) {
    int co, ci, y, x, ky, kx;
    const int group_in = cin / g, group_out = cout / g;
    for (co = 0; co < cout; co++) {
        const float *first = in + (co / group_out) * group_in * h * wd;
        for (y = 0; y < oh; y++) {
            for (x = 0; x < ow; x++) {
                float acc = 0.0f;
                for (ci = 0; ci < group_in; ci++) {
                    for (ky = 0; ky < k; ky++) {
                        int iy = y * s + ky - p;
                        if (iy < 0 || iy >= h) continue;
                        for (kx = 0; kx < k; kx++) {
                            int ix = x * s + kx - p;
                            if (ix < 0 || ix >= wd) continue;
                            acc += (float)w[((co * group_in + ci) * k + ky) * k + kx] * first[(ci * h + iy) * wd + ix];
                        }
                    }
                }
                acc += bias[co];
                out[(co * oh + y) * ow + x] = (relu && acc < 0.0f) ? 0.0f : acc;
            }
        }
    }
}
""",
    "batchnorm": """
/* a batch norm that follows a ReLU or a pool, so no convolution could absorb it: a per-channel scale and shift */
static void batchnorm(const float *in, float *out, const float *scale, const float *shift, int c, int hw, int relu) {
    int ch, i;
    for (ch = 0; ch < c; ch++)
        for (i = 0; i < hw; i++) {
            float v = in[ch * hw + i] * scale[ch] + shift[ch];
            out[ch * hw + i] = (relu && v < 0.0f) ? 0.0f : v;
        }
}
""",
    "maxpool": """
static void maxpool(const float *in, float *out, int c, int h, int wd, int k, int s, int oh, int ow) {
    int ch, y, x, ky, kx;
    for (ch = 0; ch < c; ch++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                float best = in[(ch * h + y * s) * wd + x * s];
                for (ky = 0; ky < k; ky++)
                    for (kx = 0; kx < k; kx++) {
                        float v = in[(ch * h + y * s + ky) * wd + x * s + kx];
                        if (v > best) best = v;
                    }
                out[(ch * oh + y) * ow + x] = best;
            }
}
""",
    "gap": """
static void global_average(const float *in, float *out, int c, int h, int wd) {
    int ch, i;
    for (ch = 0; ch < c; ch++) {
        float sum = 0.0f;
        for (i = 0; i < h * wd; i++) sum += in[ch * h * wd + i];
        out[ch] = sum / (float)(h * wd);
    }
}
""",
}


HEADER = """/* {model}: a tiny MNIST classifier, written by `tinycnn export --format c`. */
#ifndef TINYCNN_MODEL_H
#define TINYCNN_MODEL_H
#include <stdint.h>

/* image: 28x28 raw pixels (0-255, white digit on black, row-major); logits: the ten class scores.
   Returns the predicted digit. Not reentrant: it uses two static buffers. */
int tinycnn_predict(const uint8_t image[784], float logits[10]);

#endif
"""

HARNESS_TEXT = """#include <stdio.h>
#include <time.h>
#include "tinycnn_model.h"
/* Reads 784-byte images from stdin until it ends; writes each one's digit (1 byte) and ten %(logit)s
   logits to stdout; prints the seconds spent in tinycnn_predict to stderr. */
%(arena)sint main(void) {
    uint8_t image[784];
    %(logit)s logits[10];
    double seconds = 0.0;
    while (fread(image, 1, 784, stdin) == 784) {
        clock_t start = clock();
        uint8_t digit = (uint8_t)tinycnn_predict(image, %(arena_argument)slogits);
        seconds += (double)(clock() - start) / CLOCKS_PER_SEC;
        fwrite(&digit, 1, 1, stdout);
        fwrite(logits, sizeof(%(logit)s), 10, stdout);
    }
    fprintf(stderr, "%%.6f\\n", seconds);
    return 0;
}
"""
# the test harness of both flavours: the fp32 C's here, the integer C's (an arena, int32 logits) in c_integer_source
HARNESS = HARNESS_TEXT % {"logit": "float", "arena": "", "arena_argument": ""}
