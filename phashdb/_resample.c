/* Pillow's Image.resize of an 8-bit greyscale ("L") image, bit for bit, in loops a compiler can
 * vectorise. Reducing a photo to pHash's 32x32 was a third of hashing it: Pillow sums each
 * output pixel's window one product at a time, and a 1,000 px wide image gives a 32 px wide
 * output a window of ~190 pixels. The arithmetic is Pillow's own (src/libImaging/Resample.c
 * of Pillow 13.0.0; Copyright (c) 1997-2011 Secret Labs AB, (c) 1995-2011 Fredrik Lundh and
 * contributors, (c) 2010 Jeffrey 'Alex' Clark and contributors; MIT-CMU licence, as phashdb's
 * copy of its filters and weights is): the filter's weights in double, normalised to fixed point
 * with PRECISION_BITS, one pass per axis into an 8-bit intermediate (the vertical first when
 * the height shrinks more than twice as much as the width), each result clipped to 0..255.
 * Integer sums are exact in any order, so the windows are summed eight or more at a time; the
 * weights are computed by Pillow's expressions, with the same libm (and on x86-64 without
 * FMA: the AVX2 clones below are of the integer loops only); tests/test_resample.py checks
 * the bytes against the installed Pillow's on every platform it runs on.
 *
 * The pixels come from a buffer, or zero-copy from an Arrow C array capsule (Pillow's
 * Image.__arrow_c_array__()); the result is bytes of height * width. The GIL is released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* AVX2 where the CPU has it, chosen at load time: a build for generic x86-64 still runs
 * everywhere. The weights are computed outside these functions, so the clones' arithmetic is
 * integer only. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

#define PRECISION_BITS (32 - 8 - 2)

/* The Arrow C data interface's array (https://arrow.apache.org/docs/format/CDataInterface.html),
 * a stable ABI. */
struct ArrowArray {
    int64_t length, null_count, offset, n_buffers, n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

/* The filters, as Pillow writes them (the same expressions give the same doubles). */
static double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_filter(double x) {
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
    if (x < 0.0)
        x = -x;
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc_filter(double x) {
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) {
    if (-3.0 <= x && x < 3.0)
        return sinc_filter(x) * sinc_filter(x / 3);
    return 0.0;
}

static double mks_2013_filter(double x) {
    if (x < 0)
        x = -x;
    if (x < 0.5)
        return 17.0 / 16.0 - 7.0 / 4.0 * pow(x, 2);
    if (x < 1.5)
        return (1.0 - x) * (7.0 / 4.0 - x);
    if (x < 2.5)
        return -1.0 / 8.0 * pow(x - 5.0 / 2.0, 2);
    return 0;
}

static double mks_2021_filter(double x) {
    if (x < 0)
        x = -x;
    if (x < 0.5)
        return 577.0 / 576.0 - 239.0 / 144.0 * pow(x, 2);
    if (x < 1.5)
        return 35.0 / 36.0 * (x - 1.0) * (x - 239.0 / 140.0);
    if (x < 2.5)
        return 1.0 / 6.0 * (x - 2.0) * (65.0 / 24.0 - x);
    if (x < 3.5)
        return 1.0 / 36.0 * (x - 3.0) * (x - 15.0 / 4.0);
    if (x < 4.5)
        return -1.0 / 288.0 * pow(x - 9.0 / 2.0, 2);
    return 0;
}

typedef struct {
    double (*f)(double);
    double support;
    int trigonometric; /* its weights cost sines: the windows that repeat are weighed once */
} Filter;

/* By Pillow's numbers (Image.Resampling): 0 is NEAREST, which is not a resampling. */
static const Filter FILTERS[8] = {
    {NULL, 0, 0},
    {lanczos_filter, 3.0, 1},
    {bilinear_filter, 1.0, 0},
    {bicubic_filter, 2.0, 0},
    {box_filter, 0.5, 0},
    {hamming_filter, 1.0, 1},
    {mks_2013_filter, 2.5, 0},
    {mks_2021_filter, 4.5, 0},
};

/* One axis's windows: output i reads `bounds[2i + 1]` input pixels from `bounds[2i]`, weighted
 * by kk[i * ksize ...] in fixed point. */
typedef struct {
    int ksize; /* weights kept for each output: at least its window's, zero after it */
    int *bounds;
    int32_t *kk;
} Axis;

static void axis_free(Axis *a) {
    free(a->bounds);
    free(a->kk);
}

/* The windows already weighed, by their first argument to the filter: two outputs whose windows
 * are as long and hand the filter the very same doubles get the very same weights, so the second
 * copies the first's. A 960 px side reduced to 32 gives every window the arguments of the first
 * (the centres 30 pixels apart); the sines of LANCZOS's weights were a third of reducing a photo
 * to 32x32. Only for the trigonometric filters: BOX's weights cost less than looking them up.
 * Open addressing over `slots` (a power of two, over twice the outputs): -1 an empty slot, else
 * the output whose weights are kept. */
typedef struct {
    int slots, *first;
} Seen;

static int seen_find(const Seen *s, const double *args, int n, const double *all, int kmax,
                     const int *bounds, uint64_t *at) {
    uint64_t bits;
    memcpy(&bits, args, sizeof bits);
    uint64_t i = (bits ^ (bits >> 29) ^ (uint64_t)n * 0x9E3779B97F4A7C15u) & (s->slots - 1);
    for (;; i = (i + 1) & (s->slots - 1)) {
        int xx = s->first[i];
        if (xx < 0 || (bounds[xx * 2 + 1] == n &&
                       !memcmp(all + (size_t)xx * kmax, args, (size_t)n * sizeof(double)))) {
            *at = i;
            return xx;
        }
    }
}

/* Pillow's precompute_coeffs and normalize_coeffs_8bpc. 0 on success, -1 out of memory. */
static int axis_make(Axis *a, int in_size, float in0, float in1, int out_size, const Filter *f) {
    double scale, filterscale, support;
    filterscale = scale = (double)(in1 - in0) / out_size;
    if (filterscale < 1.0)
        filterscale = 1.0;
    support = f->support * filterscale;
    int kmax = (int)ceil(support) * 2 + 1;
    a->bounds = NULL;
    a->kk = NULL;
    if (out_size > INT_MAX / (kmax * (int)sizeof(double)))
        return -1; /* Pillow's MemoryError */
    int ksize = (kmax + 15) & ~15; /* every window summed in whole vectors: see horizontal() */
    a->ksize = ksize;
    Seen seen = {16, NULL};
    while (f->trigonometric && seen.slots < 2 * out_size)
        seen.slots *= 2;
    double *args = malloc((size_t)out_size * kmax * sizeof(double));
    double *w = malloc((size_t)kmax * sizeof(double));
    seen.first = malloc((size_t)seen.slots * sizeof(int));
    a->kk = malloc((size_t)out_size * ksize * sizeof(int32_t));
    a->bounds = malloc((size_t)out_size * 2 * sizeof(int));
    if (!args || !w || !seen.first || !a->kk || !a->bounds) {
        free(args);
        free(w);
        free(seen.first);
        axis_free(a);
        return -1;
    }
    memset(seen.first, 0xff, (size_t)seen.slots * sizeof(int));
    double inv_filterscale = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        int x;
        double *k = args + (size_t)xx * kmax;
        for (x = 0; x < xmax; x++)
            k[x] = x + xmin - center + 0.5;
        int32_t *out = &a->kk[(size_t)xx * ksize];
        uint64_t slot;
        int same = xmax && f->trigonometric
                       ? seen_find(&seen, k, xmax, args, kmax, a->bounds, &slot) : -1;
        a->bounds[xx * 2] = xmin;
        a->bounds[xx * 2 + 1] = xmax;
        if (same >= 0) {
            memcpy(out, &a->kk[(size_t)same * ksize], (size_t)ksize * sizeof(int32_t));
            continue;
        }
        if (xmax && f->trigonometric)
            seen.first[slot] = xx;
        for (x = 0; x < xmax; x++) {
            w[x] = f->f(k[x] * inv_filterscale);
            ww += w[x];
        }
        if (ww != 0.0)
            for (x = 0; x < xmax; x++)
                w[x] /= ww;
        for (x = 0; x < xmax; x++)
            out[x] = w[x] < 0 ? (int32_t)(-0.5 + w[x] * (1 << PRECISION_BITS))
                              : (int32_t)(0.5 + w[x] * (1 << PRECISION_BITS));
        for (; x < ksize; x++)
            out[x] = 0;
    }
    free(args);
    free(w);
    free(seen.first);
    return 0;
}

/* Pillow's clip8: the sum's integer part, in 0..255 (an int sum's range is within its table). */
static inline uint8_t clip8(uint32_t sum) {
    int32_t v = (int32_t)sum >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* `rows` rows of width `width` to rows of out_w pixels, one window's dot product each. Every
 * window is summed over a->ksize pixels (a multiple of 16, its weights zero past the window),
 * from `line`, the windows' span of the row copied into zeros: whole vectors, no loop tail.
 * Only that span is copied (a narrow box, as an image's edge strip, reads a few pixels of
 * each row). Sums in uint32_t: the same bits as Pillow's int, without overflow's undefined
 * behaviour. */
HOT static void horizontal(const uint8_t *in, int width, int rows, uint8_t *out, int out_w,
                           const Axis *a, uint8_t *line) {
    const int n = a->ksize;
    /* the windows move right as xx grows: the first starts the span, the last ends it */
    const int lo = a->bounds[0];
    const int hi = a->bounds[(out_w - 1) * 2] + a->bounds[(out_w - 1) * 2 + 1];
    memset(line, 0, (size_t)width + n);
    for (int yy = 0; yy < rows; yy++) {
        memcpy(line + lo, in + (size_t)yy * width + lo, hi - lo);
        uint8_t *o = out + (size_t)yy * out_w;
        for (int xx = 0; xx < out_w; xx++) {
            const uint8_t *p = line + a->bounds[xx * 2];
            const int32_t *k = &a->kk[(size_t)xx * n];
            uint32_t ss = 1u << (PRECISION_BITS - 1);
            for (int x = 0; x < n; x++)
                ss += (uint32_t)p[x] * (uint32_t)k[x];
            o[xx] = clip8(ss);
        }
    }
}

/* The horizontal pass over `rows` rows of width `width`. 0, or -1 out of memory. */
static int horizontal_pass(const uint8_t *in, int width, int rows, uint8_t *out, int out_w,
                           const Axis *a) {
    uint8_t *line = malloc((size_t)width + a->ksize);
    if (!line)
        return -1;
    horizontal(in, width, rows, out, out_w, a, line);
    free(line);
    return 0;
}

/* Rows of width `w` (`stride` apart) to out_h rows: each output row a weighted sum of whole
 * input rows, so the loop runs along a row, vector-wide; `acc` holds w sums. */
HOT static void vertical(const uint8_t *in, int stride, int w, uint8_t *out, int out_h,
                         const Axis *a, uint32_t *acc) {
    for (int yy = 0; yy < out_h; yy++) {
        const uint8_t *first = in + (size_t)a->bounds[yy * 2] * stride;
        const int32_t *k = &a->kk[(size_t)yy * a->ksize];
        int n = a->bounds[yy * 2 + 1];
        for (int x = 0; x < w; x++)
            acc[x] = 1u << (PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) {
            const uint8_t *row = first + (size_t)y * stride;
            uint32_t ky = (uint32_t)k[y];
            for (int x = 0; x < w; x++)
                acc[x] += (uint32_t)row[x] * ky;
        }
        uint8_t *o = out + (size_t)yy * w;
        for (int x = 0; x < w; x++)
            o[x] = clip8(acc[x]);
    }
}

typedef struct {
    const uint8_t *in;
    /* NULL, or the pixels transposed (in_t[x * height + y] is in[y * width + x]): the
     * horizontal pass is then run as a vertical one over its columns (see across()) */
    const uint8_t *in_t;
    int width, height, xsize, ysize;
    float box[4];
    const Filter *filter;
    uint8_t *out;
} Job;

/* The horizontal pass of rows first..first+rows-1 by `ax`, into `out` (rows x xsize), run as a
 * vertical pass over the columns of the transposed pixels `in_t` (height values a column):
 * each output column a weighted sum of whole input columns, vector-wide along them, where
 * horizontal() sums each output pixel alone (an image's window keys: a fifth of the time).
 * The same integer sums, so the same bytes. 0, or -1 out of memory. */
static int across(const uint8_t *in_t, int height, int first, int rows, uint8_t *out, int xsize,
                  const Axis *ax) {
    uint8_t *t = malloc((size_t)xsize * rows);
    uint32_t *acc = malloc((size_t)rows * sizeof(uint32_t));
    if (t && acc) {
        vertical(in_t + first, height, rows, t, xsize, ax, acc);
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < xsize; x++)
                out[(size_t)y * xsize + x] = t[(size_t)x * rows + y];
    }
    free(t);
    free(acc);
    return t && acc ? 0 : -1;
}

/* Pillow's ImagingResampleInner for one band. 0 on success, -1 out of memory. */
static int resample_job(const Job *j) {
    int need_h = j->xsize != j->width || j->box[0] || j->box[2] != j->xsize;
    int need_v = j->ysize != j->height || j->box[1] || j->box[3] != j->ysize;
    /* Pillow 13: the vertical pass first when the height shrinks more than twice the width */
    int h_first = !((j->height - j->ysize) > 0 &&
                    (j->height - j->ysize) > (j->width - j->xsize) * 2);
    Axis ax = {0}, ay = {0};
    uint8_t *temp = NULL;
    uint32_t *acc = NULL;
    int failed = -1, first = 0;
    if (need_v && axis_make(&ay, j->height, j->box[1], j->box[3], j->ysize, j->filter))
        goto end;
    if (need_h && axis_make(&ax, j->width, j->box[0], j->box[2], j->xsize, j->filter))
        goto end;
    if (need_h && need_v && h_first) {
        /* only the rows the vertical pass reads are reduced horizontally */
        first = ay.bounds[0];
        int last = ay.bounds[j->ysize * 2 - 2] + ay.bounds[j->ysize * 2 - 1];
        for (int i = 0; i < j->ysize; i++)
            ay.bounds[i * 2] -= first;
        temp = malloc((size_t)j->xsize * (last - first));
        acc = malloc((size_t)j->xsize * sizeof(uint32_t));
        if (!temp || !acc)
            goto end;
        if (j->in_t ? across(j->in_t, j->height, first, last - first, temp, j->xsize, &ax)
                    : horizontal_pass(j->in + (size_t)first * j->width, j->width, last - first,
                                      temp, j->xsize, &ax))
            goto end;
        vertical(temp, j->xsize, j->xsize, j->out, j->ysize, &ay, acc);
    } else if (need_h && need_v) {
        temp = malloc((size_t)j->width * j->ysize);
        acc = malloc((size_t)j->width * sizeof(uint32_t));
        if (!temp || !acc)
            goto end;
        vertical(j->in, j->width, j->width, temp, j->ysize, &ay, acc);
        if (horizontal_pass(temp, j->width, j->ysize, j->out, j->xsize, &ax))
            goto end;
    } else if (need_h) {
        if (horizontal_pass(j->in, j->width, j->height, j->out, j->xsize, &ax))
            goto end;
    } else if (need_v) {
        if (!(acc = malloc((size_t)j->width * sizeof(uint32_t))))
            goto end;
        vertical(j->in, j->width, j->width, j->out, j->ysize, &ay, acc);
    } else {
        memcpy(j->out, j->in, (size_t)j->width * j->height);
    }
    failed = 0;
end:
    axis_free(&ax);
    axis_free(&ay);
    free(temp);
    free(acc);
    return failed;
}

/* Pillow's resize of a checked job: a whole-pixel box of the output's size is a crop, as in
 * Pillow. 0 on success, -1 out of memory. */
static int resize(const Job *j) {
    if (j->box[0] - (int)j->box[0] == 0 && j->box[2] - j->box[0] == j->xsize &&
        j->box[1] - (int)j->box[1] == 0 && j->box[3] - j->box[1] == j->ysize) {
        for (int y = 0; y < j->ysize; y++)
            memcpy(j->out + (size_t)y * j->xsize,
                   j->in + (size_t)(y + (int)j->box[1]) * j->width + (int)j->box[0], j->xsize);
        return 0;
    }
    return resample_job(j);
}

/* The pixels of `source`: a buffer of width * height bytes, or an Arrow array capsule of as
 * many uint8 values with no nulls. 0 on success, -1 with an exception set. */
static int pixels_of(PyObject *source, Py_ssize_t count, Py_buffer *view, const uint8_t **data) {
    view->obj = NULL;
    if (PyCapsule_IsValid(source, "arrow_array")) {
        struct ArrowArray *array = PyCapsule_GetPointer(source, "arrow_array");
        if (array->release == NULL || array->n_buffers != 2 || array->null_count > 0 ||
            array->length != count || array->buffers[1] == NULL) {
            PyErr_Format(PyExc_ValueError,
                         "'source' must be an Arrow array of %zd uint8 values", count);
            return -1;
        }
        *data = (const uint8_t *)array->buffers[1] + array->offset;
        return 0;
    }
    if (PyObject_GetBuffer(source, view, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len != count) {
        PyErr_Format(PyExc_ValueError, "'source' must be %zd bytes, got %zd", count, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    *data = view->buf;
    return 0;
}

/* Pillow's checks of resize's arguments (_imaging.c), in its words. */
static int valid(const Job *j, int filter) {
    const char *e = NULL;
    if (!(isfinite(j->box[0]) && isfinite(j->box[1]) && isfinite(j->box[2]) &&
          isfinite(j->box[3])))
        e = "box must be finite numbers"; /* NaN passes every comparison below */
    else if (j->width < 1 || j->height < 1)
        e = "the image must have pixels";
    else if (j->xsize < 1 || j->ysize < 1)
        e = "height and width must be > 0";
    else if (filter < 1 || filter > 7)
        e = "unsupported resampling filter";
    else if (j->box[0] < 0 || j->box[1] < 0)
        e = "box offset can't be negative";
    else if (j->box[2] > j->width || j->box[3] > j->height)
        e = "box can't exceed original image size";
    else if (j->box[2] - j->box[0] < 0 || j->box[3] - j->box[1] < 0)
        e = "box can't be empty";
    if (e)
        PyErr_SetString(PyExc_ValueError, e);
    return e == NULL;
}

/* The bytes of `count` checked jobs on the pixels of `source` (each job's width and height
 * theirs), one after the other into one bytes object of `size` bytes, the GIL released. NULL
 * with an exception set. */
static PyObject *run(PyObject *source, Job *jobs, int count, Py_ssize_t size, int transpose) {
    Py_buffer view;
    const uint8_t *in;
    const int width = jobs[0].width, height = jobs[0].height;
    if (pixels_of(source, (Py_ssize_t)width * height, &view, &in) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    uint8_t *in_t = NULL;
    int failed = 0;
    if (out != NULL) {
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS;
        /* with `transpose`, the pixels transposed once for every job (no memory: as without) */
        if (transpose && (in_t = malloc((size_t)width * height)) != NULL)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    in_t[(size_t)x * height + y] = in[(size_t)y * width + x];
        for (int k = 0; k < count && !failed; k++) {
            jobs[k].in = in;
            jobs[k].in_t = in_t;
            jobs[k].out = o;
            o += (size_t)jobs[k].xsize * jobs[k].ysize;
            failed = resize(&jobs[k]);
        }
        free(in_t);
        Py_END_ALLOW_THREADS;
        if (failed) {
            Py_CLEAR(out);
            PyErr_NoMemory();
        }
    }
    if (view.obj)
        PyBuffer_Release(&view);
    return out;
}

/* resample(source, width, height, (xsize, ysize), filter, (x0, y0, x1, y1)) -> bytes */
static PyObject *resample(PyObject *self, PyObject *args) {
    PyObject *source;
    Job j;
    int filter;
    if (!PyArg_ParseTuple(args, "Oii(ii)i(ffff)", &source, &j.width, &j.height, &j.xsize,
                          &j.ysize, &filter, &j.box[0], &j.box[1], &j.box[2], &j.box[3]))
        return NULL;
    if (!valid(&j, filter))
        return NULL;
    j.filter = &FILTERS[filter];
    return run(source, &j, 1, (Py_ssize_t)j.xsize * j.ysize, 0);
}

/* resample_boxes(source, width, height, (xsize, ysize), filter, boxes) -> bytes: resample's
 * bytes for each (x0, y0, x1, y1) of the sequence `boxes`, one after the other, in one call (an
 * image's window keys, phashdb.windows: a call per window was a fifth of their time). */
static PyObject *resample_boxes(PyObject *self, PyObject *args) {
    PyObject *source, *boxes;
    int width, height, xsize, ysize, filter;
    if (!PyArg_ParseTuple(args, "Oii(ii)iO", &source, &width, &height, &xsize, &ysize, &filter,
                          &boxes))
        return NULL;
    PyObject *seq = PySequence_Fast(boxes, "'boxes' must be a sequence of boxes");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = NULL;
    Job *jobs = count > 0 && count < INT_MAX ? malloc((size_t)count * sizeof(Job)) : NULL;
    if (jobs == NULL) {
        if (count > 0)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, "'boxes' must not be empty");
        goto end;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        Job *j = &jobs[k];
        *j = (Job){.width = width, .height = height, .xsize = xsize, .ysize = ysize};
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "ffff;a box is 4 numbers",
                              &j->box[0], &j->box[1], &j->box[2], &j->box[3]) ||
            !valid(j, filter))
            goto end;
        j->filter = &FILTERS[filter];
    }
    out = run(source, jobs, (int)count, (Py_ssize_t)xsize * ysize * count, 1);
end:
    free(jobs);
    Py_DECREF(seq);
    return out;
}

/* edges(source, width, height, w, h) -> bytes: the top row, bottom row, left column and right
 * column of the image reduced to w x h by the BOX filter, each reduced from the strip along its
 * edge alone (phashdb.border), in one call: the strips' boxes as phashdb.border's Python gave
 * them, doubles made floats as resample's arguments are. */
static PyObject *edges(PyObject *self, PyObject *args) {
    PyObject *source;
    int width, height, w, h;
    if (!PyArg_ParseTuple(args, "Oiiii", &source, &width, &height, &w, &h))
        return NULL;
    if (width < 3 || height < 3 || w < 1 || h < 1 || w > width || h > height) {
        PyErr_Format(PyExc_ValueError, "'size' must be within the image, of 3 pixels or more a side");
        return NULL;
    }
    double fx = (double)width / w, fy = (double)height / h;
    const float boxes[4][4] = {
        {0, 0, (float)width, (float)fy},
        {0, (float)(height - fy), (float)width, (float)height},
        {0, 0, (float)fx, (float)height},
        {(float)(width - fx), 0, (float)width, (float)height},
    };
    const int sizes[4][2] = {{w, 1}, {w, 1}, {1, h}, {1, h}};
    Job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (Job){.width = width, .height = height, .xsize = sizes[k][0],
                        .ysize = sizes[k][1], .filter = &FILTERS[4]};
        memcpy(jobs[k].box, boxes[k], sizeof jobs[k].box);
    }
    return run(source, jobs, 4, 2 * ((Py_ssize_t)w + h), 0);
}

static PyMethodDef methods[] = {
    {"resample", resample, METH_VARARGS, "Pillow's resize of an 8-bit greyscale image."},
    {"resample_boxes", resample_boxes, METH_VARARGS, "resample of several boxes, in one call."},
    {"edges", edges, METH_VARARGS, "The edges of an 8-bit greyscale image's BOX reduction."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_resample", NULL, -1, methods};

PyMODINIT_FUNC PyInit__resample(void) { return PyModule_Create(&module); }
