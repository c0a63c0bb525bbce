/* The 4-connected regions of boolean planes, in C: phashdb.unbox labels the regions of up to
 * eight 64x64 masks an image, and numpy's label propagation took more CPU than the rest of
 * hashing a small photo. One pass of union-find over the pixels in order, the smaller root
 * always kept, so each region's label is its smallest pixel number; pixels outside every region
 * get the pixel count. The labels come back as bytes of int64, for numpy to view.
 * `regions` does all of unbox.find_box's work on the masks (closing, labels, each large region's
 * size and bounding rectangle) in one call, a plane at a time in a buffer that stays in the
 * cache: in numpy it was three quarters of looking for a box.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int32_t root(int32_t *parent, int32_t p) {
    while (parent[p] != p) {
        parent[p] = parent[parent[p]]; /* halve the path as it is walked */
        p = parent[p];
    }
    return p;
}

static void join(int32_t *parent, int32_t a, int32_t b) {
    a = root(parent, a);
    b = root(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* parent[p] for each of the n pixels of planes m (rows x columns each): the label of its region,
 * or n outside every region. */
static void find_regions(const unsigned char *m, int32_t n, int32_t rows, int32_t columns,
                         int32_t *parent) {
    for (int32_t p = 0; p < n;)
        for (int32_t y = 0; y < rows; y++)
            for (int32_t x = 0; x < columns; x++, p++) {
                parent[p] = p;
                if (!m[p])
                    continue;
                if (x > 0 && m[p - 1])
                    join(parent, p, p - 1);
                if (y > 0 && m[p - columns])
                    join(parent, p, p - columns);
            }
    for (int32_t p = 0; p < n; p++)
        parent[p] = m[p] ? root(parent, p) : n;
}

/* One pass of a square closing's four: into out, each pixel of the plane in (rows x columns)
 * made the OR (dilate) or AND (erode) of the pixels within gap of it along its column
 * (along_rows) or its row, as numpy's shifted planes with False (dilate) or True (erode)
 * outside: a pixel outside never decides, so a running count of the ones inside the window
 * does. */
static void spread(const unsigned char *in, unsigned char *out, int32_t rows, int32_t columns,
                   int32_t gap, int along_rows, int dilate) {
    int32_t length = along_rows ? rows : columns, step = along_rows ? columns : 1;
    int32_t lines = along_rows ? columns : rows, line_step = along_rows ? 1 : columns;
    for (int32_t j = 0; j < lines; j++) {
        const unsigned char *a = in + (int64_t)j * line_step;
        unsigned char *o = out + (int64_t)j * line_step;
        int32_t ones = 0;
        for (int32_t i = 0; i < gap && i < length; i++)
            ones += a[(int64_t)i * step] != 0;
        for (int32_t i = 0; i < length; i++) {
            if (i < length - gap)
                ones += a[(int64_t)(i + gap) * step] != 0;
            if (i > gap)
                ones -= a[(int64_t)(i - gap - 1) * step] != 0;
            int32_t from = i < gap ? 0 : i - gap;
            int32_t to = i >= length - gap ? length - 1 : i + gap;
            o[(int64_t)i * step] = dilate ? ones > 0 : ones == to - from + 1;
        }
    }
}

/* Append (plane, size, top, left, bottom + 1, right + 1) to out; 0 on an error. */
static int append_region(PyObject *out, Py_ssize_t plane, int32_t size, int32_t top,
                         int32_t left, int32_t bottom, int32_t right) {
    PyObject *region = Py_BuildValue("(niiiii)", plane, size, top, left, bottom + 1, right + 1);
    int failed = region == NULL || PyList_Append(out, region) < 0;
    Py_XDECREF(region);
    return !failed;
}

/* A word of `width` ones (1 <= width <= 64). */
static uint64_t ones(int32_t width) { return width == 64 ? ~(uint64_t)0 : ((uint64_t)1 << width) - 1; }

/* The closing of spread's four passes on a plane at most 64 pixels wide, a row in a word (bit
 * x: column x): the same pixels, a word's shifts doing a row's pixels at once. */
static void closed_in_words(const unsigned char *in, int32_t rows, int32_t columns, int32_t gap,
                            uint64_t *row, uint64_t *tmp) {
    uint64_t full = ones(columns);
    for (int32_t y = 0; y < rows; y++) {
        uint64_t v = 0;
        for (int32_t x = 0; x < columns; x++)
            v |= (uint64_t)(in[y * columns + x] != 0) << x;
        row[y] = v;
    }
    for (int dilate = 1; dilate >= 0; dilate--) {
        for (int32_t y = 0; y < rows; y++) { /* along the columns: outside never decides */
            uint64_t v = dilate ? 0 : full;
            for (int32_t d = y - gap < 0 ? 0 : y - gap; d - y <= gap && d < rows; d++)
                v = dilate ? v | row[d] : v & row[d];
            tmp[y] = v;
        }
        for (int32_t y = 0; y < rows; y++) { /* along the rows: bits from outside are 0 or 1 */
            uint64_t v = dilate ? tmp[y] : tmp[y] | ~full, acc = v;
            for (int32_t d = 1; d <= gap && d < 64; d++) {
                uint64_t in_low = (uint64_t)1 << d, in_high = ~(~(uint64_t)0 >> d);
                if (dilate)
                    acc |= (v >> d) | (v << d);
                else
                    acc &= ((v >> d) | in_high) & ((v << d) | (in_low - 1));
            }
            row[y] = acc & full;
        }
    }
}

/* Append to out (plane, size, top, left, bottom, right) of each region of the closed plane
 * `row` (a row a word) with at least `least` pixels, by its first pixel; 0 on an error. The
 * regions are found on the rows' runs of pixels, in order (a region's first run holds its first
 * pixel), joined where they overlap a run of the row above. `buffer` holds 8 int32 for each of
 * rows * 33 runs. */
static int regions_of_runs(PyObject *out, Py_ssize_t plane, const uint64_t *row, int32_t rows,
                           double least, int32_t *buffer) {
    int32_t most = rows * 33, n = 0, above = 0;
    int32_t *y0 = buffer, *x0 = y0 + most, *x1 = x0 + most, *parent = x1 + most;
    int32_t *size = parent + most, *left = size + most, *right = left + most, *bottom = right + most;
    for (int32_t y = 0; y < rows; y++) {
        int32_t start = n;
        for (uint64_t v = row[y]; v; n++) {
            int32_t x = __builtin_ctzll(v);
            uint64_t past = ~(v >> x);
            int32_t length = past ? __builtin_ctzll(past) : 64 - x;
            y0[n] = y, x0[n] = x, x1[n] = x + length - 1, parent[n] = n;
            v = x + length >= 64 ? 0 : v & (~(uint64_t)0 << (x + length));
        }
        for (int32_t i = above, j = start; i < start && j < n;) {
            if (x0[i] <= x1[j] && x0[j] <= x1[i]) /* one above the other: one region */
                join(parent, i, j);
            if (x1[i] < x1[j])
                i++;
            else
                j++;
        }
        above = start;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t r = root(parent, i);
        if (r == i)
            size[r] = 0, left[r] = x0[i], right[r] = x1[i];
        size[r] += x1[i] - x0[i] + 1;
        left[r] = x0[i] < left[r] ? x0[i] : left[r];
        right[r] = x1[i] > right[r] ? x1[i] : right[r];
        bottom[r] = y0[i]; /* runs come in order: the last one's row is the bottom */
    }
    for (int32_t i = 0; i < n; i++)
        if (parent[i] == i && (double)size[i] >= least &&
            !append_region(out, plane, size[i], y0[i], left[i], bottom[i], right[i]))
            return 0;
    return 1;
}

/* Parse (mask, planes, rows, columns) and check them: 0 with an error set if they are bad. */
static int mask_of(Py_buffer *mask, Py_ssize_t planes, Py_ssize_t rows, Py_ssize_t columns) {
    /* each size and their product checked before it is trusted: a product that wraps could
     * match a short buffer, and the loops then walk far past it */
    Py_ssize_t area, bytes;
    if (planes < 0 || rows < 0 || columns < 0 || rows > INT32_MAX || columns > INT32_MAX ||
        __builtin_mul_overflow(rows, columns, &area) || area > INT32_MAX ||
        __builtin_mul_overflow(planes, area, &bytes) || mask->len != bytes) {
        PyBuffer_Release(mask);
        PyErr_SetString(PyExc_ValueError, "'mask' must be planes * rows * columns bytes");
        return 0;
    }
    if (mask->len >= INT32_MAX) {
        PyBuffer_Release(mask);
        PyErr_SetString(PyExc_ValueError, "'mask' must be under 2**31 bytes");
        return 0;
    }
    return 1;
}

/* label(mask, planes, rows, columns): mask is planes * rows * columns bytes, non-zero inside. */
static PyObject *label(PyObject *self, PyObject *args) {
    Py_buffer mask;
    Py_ssize_t planes, rows, columns;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnn", &mask, &planes, &rows, &columns))
        return NULL;
    if (!mask_of(&mask, planes, rows, columns))
        return NULL;
    int32_t n = (int32_t)mask.len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n * 8);
    if (out != NULL) {
        /* the int32 labels in the first half, widened in place from the last: label p's
         * int64 bytes lie past every int32 label before p */
        char *bytes = PyBytes_AS_STRING(out);
        find_regions(mask.buf, n, (int32_t)rows, (int32_t)columns, (int32_t *)bytes);
        for (int32_t p = n - 1; p >= 0; p--) {
            int32_t label;
            memcpy(&label, bytes + 4 * (size_t)p, 4); /* memcpy: the two views may alias */
            int64_t wide = label;
            memcpy(bytes + 8 * (size_t)p, &wide, 8);
        }
    }
    PyBuffer_Release(&mask);
    return out;
}

/* Append to out (plane, size, top, left, bottom, right) of each region of the closed plane
 * (rows x columns) with at least `least` pixels, by its first pixel; 0 on an error. The
 * buffers hold 5 int32 a pixel. */
static int large_regions(PyObject *out, Py_ssize_t plane, const unsigned char *closed,
                         int32_t rows, int32_t columns, double least, int32_t *parent) {
    int32_t area = rows * columns, *size = parent + area, *left = size + area;
    int32_t *right = left + area, *bottom = right + area;
    find_regions(closed, area, rows, columns, parent);
    for (int32_t p = 0; p < area;)
        for (int32_t y = 0; y < rows; y++)
            for (int32_t x = 0; x < columns; x++, p++) {
                int32_t r = parent[p];
                if (r == area)
                    continue;
                if (r == p) /* a region's first pixel */
                    size[r] = 0, left[r] = x, right[r] = x;
                size[r]++;
                left[r] = x < left[r] ? x : left[r];
                right[r] = x > right[r] ? x : right[r];
                bottom[r] = y; /* pixels come in order: the last one's row is the bottom */
            }
    for (int32_t p = 0; p < area; p++)
        if (parent[p] == p && (double)size[p] >= least &&
            !append_region(out, plane, size[p], p / columns, left[p], bottom[p], right[p]))
            return 0;
    return 1;
}

/* regions(mask, planes, rows, columns, gap, least): unbox.find_box's regions of the masks,
 * each plane closed over gaps up to 2 * gap wide, as large_regions gives them. */
static PyObject *regions(PyObject *self, PyObject *args) {
    Py_buffer mask;
    Py_ssize_t planes, rows, columns, gap;
    double least;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnnd", &mask, &planes, &rows, &columns, &gap, &least))
        return NULL;
    if (!mask_of(&mask, planes, rows, columns))
        return NULL;
    if (gap < 0 || gap >= INT32_MAX / 2) {
        PyBuffer_Release(&mask);
        PyErr_Format(PyExc_ValueError, "'gap' must be in 0..%d, got %zd", INT32_MAX / 2 - 1, gap);
        return NULL;
    }
    int32_t h = (int32_t)rows, w = (int32_t)columns, area = h * w, g = (int32_t)gap;
    if (planes == 0 || area == 0) { /* no pixels: nor buffers sized by a plane never read */
        PyBuffer_Release(&mask);
        return PyList_New(0);
    }
    unsigned char *a = PyMem_Malloc(2 * (size_t)area + 1);
    /* 5 int32 a pixel (large_regions), or 8 a run of at most h * 33 (regions_of_runs) */
    size_t most = w > 64 ? 5 * (size_t)area : 8 * 33 * (size_t)h;
    int32_t *parent = PyMem_Malloc((most + 1) * sizeof(int32_t));
    uint64_t *words = PyMem_Malloc((2 * (size_t)h + 1) * sizeof(uint64_t));
    PyObject *out = PyList_New(0);
    if (out != NULL && (a == NULL || parent == NULL || words == NULL)) {
        Py_CLEAR(out);
        PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; out != NULL && k < planes; k++) {
        unsigned char *plane = (unsigned char *)mask.buf + k * area, *b = a + area;
        int ok;
        if (w <= 64) { /* a row in a word: the usual 64-pixel reduction */
            closed_in_words(plane, h, w, g, words, words + h);
            ok = regions_of_runs(out, k, words, h, least, parent);
        } else {
            spread(plane, a, h, w, g, 1, 1);
            spread(a, b, h, w, g, 0, 1);
            spread(b, a, h, w, g, 1, 0);
            spread(a, b, h, w, g, 0, 0);
            ok = large_regions(out, k, b, h, w, least, parent);
        }
        if (!ok)
            Py_CLEAR(out);
    }
    PyMem_Free(a);
    PyMem_Free(parent);
    PyMem_Free(words);
    PyBuffer_Release(&mask);
    return out;
}

static PyMethodDef methods[] = {
    {"label", label, METH_VARARGS, "The 4-connected regions of boolean planes."},
    {"regions", regions, METH_VARARGS, "unbox.find_box's large regions of closed masks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_regions", NULL, -1, methods};

PyMODINIT_FUNC PyInit__regions(void) { return PyModule_Create(&module); }
