/* The 4-connected regions of boolean planes, in C: phashdb.unbox labels the regions of up to
 * eight 64x64 masks an image, and numpy's label propagation took more CPU than the rest of
 * hashing a small photo. One pass of union-find over the pixels in order, the smaller root
 * always kept, so each region's label is its smallest pixel number; pixels outside every region
 * get the pixel count. The labels come back as bytes of int64, for numpy to view.
 * `regions` does all of unbox.find_box's work on the masks (closing, labels, each large region's
 * size and bounding rectangle) in one call: in numpy it was three quarters of looking for a box.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static int64_t root(int64_t *parent, int64_t p) {
    while (parent[p] != p) {
        parent[p] = parent[parent[p]]; /* halve the path as it is walked */
        p = parent[p];
    }
    return p;
}

static void join(int64_t *parent, int64_t a, int64_t b) {
    a = root(parent, a);
    b = root(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* parent[p] for each of the n pixels of planes m (rows x columns each): the label of its region,
 * or n outside every region. */
static void find_regions(const unsigned char *m, int64_t n, int64_t rows, int64_t columns,
                         int64_t *parent) {
    for (int64_t p = 0; p < n;)
        for (int64_t y = 0; y < rows; y++)
            for (int64_t x = 0; x < columns; x++, p++) {
                parent[p] = p;
                if (!m[p])
                    continue;
                if (x > 0 && m[p - 1])
                    join(parent, p, p - 1);
                if (y > 0 && m[p - columns])
                    join(parent, p, p - columns);
            }
    for (int64_t p = 0; p < n; p++)
        parent[p] = m[p] ? root(parent, p) : n;
}

/* One pass of a square closing's four: into out, each pixel of planes in (rows x columns) made
 * the OR (dilate) or AND (erode) of the pixels within gap of it along its column (along_rows)
 * or its row, as numpy's shifted planes with False (dilate) or True (erode) outside: a pixel
 * outside never decides, so a running count of the ones inside the window does. */
static void spread(const unsigned char *in, unsigned char *out, int64_t planes, int64_t rows,
                   int64_t columns, int64_t gap, int along_rows, int dilate) {
    int64_t length = along_rows ? rows : columns, step = along_rows ? columns : 1;
    int64_t lines = along_rows ? columns : rows, line_step = along_rows ? 1 : columns;
    for (int64_t k = 0; k < planes; k++)
        for (int64_t j = 0; j < lines; j++) {
            const unsigned char *a = in + k * rows * columns + j * line_step;
            unsigned char *o = out + k * rows * columns + j * line_step;
            int64_t ones = 0;
            for (int64_t i = 0; i < gap && i < length; i++)
                ones += a[i * step] != 0;
            for (int64_t i = 0; i < length; i++) {
                if (i + gap < length)
                    ones += a[(i + gap) * step] != 0;
                if (i - gap - 1 >= 0)
                    ones -= a[(i - gap - 1) * step] != 0;
                int64_t from = i - gap < 0 ? 0 : i - gap;
                int64_t to = i + gap >= length ? length - 1 : i + gap;
                o[i * step] = dilate ? ones > 0 : ones == to - from + 1;
            }
        }
}

/* A bad mask's error, shared by label and regions. */
static int check_mask(Py_buffer *mask, Py_ssize_t planes, Py_ssize_t rows, Py_ssize_t columns) {
    if (planes < 0 || rows < 0 || columns < 0 || mask->len != planes * rows * columns) {
        PyBuffer_Release(mask);
        PyErr_SetString(PyExc_ValueError, "'mask' must be planes * rows * columns bytes");
        return 0;
    }
    return 1;
}

/* label(mask, planes, rows, columns): mask is planes * rows * columns bytes, non-zero inside. */
static PyObject *label(PyObject *self, PyObject *args) {
    Py_buffer mask;
    Py_ssize_t planes, rows, columns;
    if (!PyArg_ParseTuple(args, "y*nnn", &mask, &planes, &rows, &columns))
        return NULL;
    if (!check_mask(&mask, planes, rows, columns))
        return NULL;
    int64_t n = (int64_t)mask.len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    if (out == NULL) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    find_regions(mask.buf, n, rows, columns, (int64_t *)PyBytes_AS_STRING(out));
    PyBuffer_Release(&mask);
    return out;
}

/* The list of (plane, size, top, left, bottom, right) of pixels in the regions that have at
 * least `least` pixels, by plane, then by their smallest pixel. */
static PyObject *large_regions(const unsigned char *closed, int64_t n, int64_t rows,
                               int64_t columns, double least, int64_t *labels, int64_t *box) {
    int64_t area = rows * columns;
    find_regions(closed, n, rows, columns, labels);
    for (int64_t p = 0; p < n;)
        for (int64_t y = 0; y < rows; y++)
            for (int64_t x = 0; x < columns; x++, p++) {
                int64_t r = labels[p];
                if (r == n)
                    continue;
                int64_t *b = box + 5 * r;
                if (r == p) /* a region's first pixel: its top row */
                    b[0] = 0, b[1] = y, b[2] = x, b[3] = y, b[4] = x;
                b[0]++;
                b[2] = x < b[2] ? x : b[2];
                b[3] = y; /* pixels come in order: the last one's row is the bottom */
                b[4] = x > b[4] ? x : b[4];
            }
    PyObject *out = PyList_New(0);
    for (int64_t p = 0; out != NULL && p < n; p++) {
        int64_t *b = box + 5 * p;
        if (labels[p] != p || (double)b[0] < least)
            continue;
        PyObject *region = Py_BuildValue("(LLLLLL)", (long long)(p / area), (long long)b[0],
                                         (long long)b[1], (long long)b[2], (long long)b[3] + 1,
                                         (long long)b[4] + 1);
        if (region == NULL || PyList_Append(out, region) < 0)
            Py_CLEAR(out);
        Py_XDECREF(region);
    }
    return out;
}

/* regions(mask, planes, rows, columns, gap, least): unbox.find_box's regions of the masks
 * closed over gaps up to 2 * gap wide, as large_regions gives them. */
static PyObject *regions(PyObject *self, PyObject *args) {
    Py_buffer mask;
    Py_ssize_t planes, rows, columns, gap;
    double least;
    if (!PyArg_ParseTuple(args, "y*nnnnd", &mask, &planes, &rows, &columns, &gap, &least))
        return NULL;
    if (!check_mask(&mask, planes, rows, columns))
        return NULL;
    if (gap < 0) {
        PyBuffer_Release(&mask);
        PyErr_Format(PyExc_ValueError, "'gap' must be at least 0, got %zd", gap);
        return NULL;
    }
    int64_t n = (int64_t)mask.len;
    unsigned char *a = PyMem_Malloc(2 * n + 1);
    int64_t *labels = PyMem_Malloc((6 * n + 1) * sizeof(int64_t));
    PyObject *out = NULL;
    if (a == NULL || labels == NULL)
        PyErr_NoMemory();
    else {
        unsigned char *b = a + n;
        spread(mask.buf, a, planes, rows, columns, gap, 1, 1);
        spread(a, b, planes, rows, columns, gap, 0, 1);
        spread(b, a, planes, rows, columns, gap, 1, 0);
        spread(a, b, planes, rows, columns, gap, 0, 0);
        out = large_regions(b, n, rows, columns, least, labels, labels + n);
    }
    PyMem_Free(a);
    PyMem_Free(labels);
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
