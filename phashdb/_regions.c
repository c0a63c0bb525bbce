/* The 4-connected regions of boolean planes, in C: phashdb.unbox labels the regions of up to
 * eight 64x64 masks an image, and numpy's label propagation took more CPU than the rest of
 * hashing a small photo. One pass of union-find over the pixels in order, the smaller root
 * always kept, so each region's label is its smallest pixel number; pixels outside every region
 * get the pixel count. The labels come back as bytes of int64, for numpy to view.
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

/* label(mask, planes, rows, columns): mask is planes * rows * columns bytes, non-zero inside. */
static PyObject *label(PyObject *self, PyObject *args) {
    Py_buffer mask;
    Py_ssize_t planes, rows, columns;
    if (!PyArg_ParseTuple(args, "y*nnn", &mask, &planes, &rows, &columns))
        return NULL;
    if (planes < 0 || rows < 0 || columns < 0 || mask.len != planes * rows * columns) {
        PyBuffer_Release(&mask);
        PyErr_SetString(PyExc_ValueError, "'mask' must be planes * rows * columns bytes");
        return NULL;
    }
    int64_t n = (int64_t)mask.len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    if (out == NULL) {
        PyBuffer_Release(&mask);
        return NULL;
    }
    const unsigned char *m = mask.buf;
    int64_t *parent = (int64_t *)PyBytes_AS_STRING(out);
    for (int64_t p = 0; p < n; p++) {
        parent[p] = p;
        if (!m[p])
            continue;
        int64_t x = p % columns, y = (p / columns) % rows;
        if (x > 0 && m[p - 1])
            join(parent, p, p - 1);
        if (y > 0 && m[p - columns])
            join(parent, p, p - columns);
    }
    for (int64_t p = 0; p < n; p++)
        parent[p] = m[p] ? root(parent, p) : n;
    PyBuffer_Release(&mask);
    return out;
}

static PyMethodDef methods[] = {
    {"label", label, METH_VARARGS, "The 4-connected regions of boolean planes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_regions", NULL, -1, methods};

PyMODINIT_FUNC PyInit__regions(void) { return PyModule_Create(&module); }
