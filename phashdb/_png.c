/* PNG's scanline filters undone, in C: phashdb.png inflates a plain 8-bit PNG's image data with
 * ISA-L or zlib (both check its Adler-32, as Pillow's decoder does) and hands the rows here.
 * Pillow's own PNG decoding cost two thirds of hashing a small PNG. The filters are defined
 * exactly by the PNG specification (section 9), so any conforming decoder yields these bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The predictor of filter 4, without branches, in stb_image's form: the same value as the
 * specification's (tests/test_png.py checks every (a, b, c)), with a shorter chain of
 * operations from the left byte `a`, the one the loop waits on (a PNG a third faster). */
static inline int paeth(int a, int b, int c) {
    int thresh = 3 * c - (a + b);
    int lo = a < b ? a : b, hi = a < b ? b : a;
    int t0 = hi <= thresh ? lo : c;
    return thresh <= lo ? hi : t0;
}

/* Filter 4 on a row of `bpp`-byte pixels (a constant where it is called, so each channel's left
 * and upper-left bytes stay in registers): the scalar loop over bytes waited on each byte's
 * left neighbour to come back from memory. */
static inline void paeth_row(unsigned char *row, const unsigned char *up, Py_ssize_t n,
                             const int bpp) {
    int a[4] = {0, 0, 0, 0}, c[4] = {0, 0, 0, 0}; /* left and upper left, unfiltered */
    for (Py_ssize_t i = 0; i + bpp <= n; i += bpp)
        for (int k = 0; k < bpp; k++) {
            int b = up[i + k];
            a[k] = (row[i + k] + paeth(a[k], b, c[k])) & 0xff;
            row[i + k] = (unsigned char)a[k];
            c[k] = b;
        }
}

/* Filter 4 on two rows at once, `r1` under `r0` (under `up`): each pixel of r1 follows the one
 * of r0 above it within the same step, so the loop runs two chains of left neighbours where
 * one row ran one (a PNG's rows are mostly Paeth; a row's chain is its whole cost). */
static inline void paeth_pair(unsigned char *r0, const unsigned char *up, unsigned char *r1,
                              Py_ssize_t n, const int bpp) {
    int a0[4] = {0, 0, 0, 0}, c0[4] = {0, 0, 0, 0}, a1[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
    for (Py_ssize_t i = 0; i + bpp <= n; i += bpp)
        for (int k = 0; k < bpp; k++) {
            int b0 = up[i + k];
            a0[k] = (r0[i + k] + paeth(a0[k], b0, c0[k])) & 0xff;
            r0[i + k] = (unsigned char)a0[k];
            c0[k] = b0;
            a1[k] = (r1[i + k] + paeth(a1[k], a0[k], c1[k])) & 0xff;
            r1[i + k] = (unsigned char)a1[k];
            c1[k] = a0[k];
        }
}

static void paeth_rows(unsigned char *r0, const unsigned char *up, unsigned char *r1,
                       Py_ssize_t n, Py_ssize_t bpp) {
    switch (bpp) {
    case 1: paeth_pair(r0, up, r1, n, 1); return;
    case 2: paeth_pair(r0, up, r1, n, 2); return;
    case 3: paeth_pair(r0, up, r1, n, 3); return;
    case 4: paeth_pair(r0, up, r1, n, 4); return;
    }
}

/* One row in place: `row` is `n` bytes after its filter byte, `up` the row above (unfiltered;
 * all zeros for the first row), `bpp` bytes a pixel. Returns 0, or -1 for an unknown filter. */
static int unfilter_row(int filter, unsigned char *row, const unsigned char *up, Py_ssize_t n,
                        Py_ssize_t bpp) {
    Py_ssize_t i, first = bpp < n ? bpp : n;
    switch (filter) {
    case 0:
        return 0;
    case 1:
        for (i = bpp; i < n; i++)
            row[i] = (unsigned char)(row[i] + row[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < n; i++)
            row[i] = (unsigned char)(row[i] + up[i]);
        return 0;
    case 3:
        for (i = 0; i < first; i++)
            row[i] = (unsigned char)(row[i] + (up[i] >> 1));
        for (; i < n; i++)
            row[i] = (unsigned char)(row[i] + ((row[i - bpp] + up[i]) >> 1));
        return 0;
    case 4:
        switch (bpp) {
        case 1: paeth_row(row, up, n, 1); return 0;
        case 2: paeth_row(row, up, n, 2); return 0;
        case 3: paeth_row(row, up, n, 3); return 0;
        case 4: paeth_row(row, up, n, 4); return 0;
        }
    }
    return -1;
}

/* Pillow's convert("L") of RGB pixels (Convert.c, rgb2l: ITU-R 601-2 luma in fixed point). */
static void luma(unsigned char *out, const unsigned char *rgb, Py_ssize_t width) {
    for (Py_ssize_t x = 0; x < width; x++, rgb += 3)
        out[x] = (unsigned char)((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

/* unfilter(data, rows, row_bytes, bpp, grey=False): data is rows * (1 + row_bytes) bytes, each
 * row its filter byte then its filtered bytes; the pixels come back, rows * row_bytes bytes, or
 * with `grey` (RGB only: bpp 3) their greyscale, rows * row_bytes / 3 bytes, each row converted
 * as it is unfiltered: two rows of colour held, not the image's. */
static PyObject *unfilter(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t rows, row_bytes, bpp, size;
    int grey = 0;
    if (!PyArg_ParseTuple(args, "y*nnn|p", &data, &rows, &row_bytes, &bpp, &grey))
        return NULL;
    /* the product checked, not trusted: one that wraps could match a short buffer */
    if (rows < 0 || row_bytes < 0 || bpp < 1 || bpp > 4 || row_bytes % bpp ||
        row_bytes == PY_SSIZE_T_MAX || __builtin_mul_overflow(rows, 1 + row_bytes, &size) ||
        data.len != size || (grey && bpp != 3)) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError,
                        "'data' must be rows * (1 + row_bytes) bytes, of 1 to 4 bytes a pixel "
                        "(3 for grey)");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, rows * (grey ? row_bytes / 3 : row_bytes));
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const unsigned char *in = data.buf;
    unsigned char *pixels = (unsigned char *)PyBytes_AS_STRING(out);
    /* the row above the first (none for no rows, whatever their claimed width), and with
     * `grey` the three rows of colour unfiltered in turn (two at once, and the one above) */
    unsigned char *zeros = rows ? calloc((size_t)row_bytes * (grey ? 4 : 1) + 1, 1) : NULL;
    int bad = rows && zeros == NULL ? -2 : 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t y = 0, step; y < rows && !bad; y += step) {
        unsigned char *row = grey ? zeros + row_bytes * (1 + y % 3) : pixels + y * row_bytes;
        unsigned char *up = !y ? zeros : grey ? zeros + row_bytes * (1 + (y + 2) % 3) : row - row_bytes;
        const unsigned char *at = in + y * (1 + row_bytes);
        step = at[0] == 4 && y + 1 < rows && at[1 + row_bytes] == 4 ? 2 : 1;
        memcpy(row, at + 1, (size_t)row_bytes);
        if (step == 2) {
            unsigned char *next = grey ? zeros + row_bytes * (1 + (y + 1) % 3) : row + row_bytes;
            memcpy(next, at + 2 + row_bytes, (size_t)row_bytes);
            paeth_rows(row, up, next, row_bytes, bpp);
        } else {
            bad = unfilter_row(at[0], row, up, row_bytes, bpp);
        }
        for (Py_ssize_t k = 0; grey && k < step; k++)
            luma(pixels + (y + k) * (row_bytes / 3), zeros + row_bytes * (1 + (y + k) % 3),
                 row_bytes / 3);
    }
    Py_END_ALLOW_THREADS
    free(zeros);
    PyBuffer_Release(&data);
    if (bad) {
        Py_DECREF(out);
        if (bad == -2)
            return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, "unknown PNG filter type");
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"unfilter", unfilter, METH_VARARGS, "The pixels of a PNG's filtered rows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_png", NULL, -1, methods};

PyMODINIT_FUNC PyInit__png(void) { return PyModule_Create(&module); }
