/* The two inner loops of the embedded index's search, in C: a numpy version makes four passes
 * over its data (XOR, popcount, compare, gather) where one will do, and a search at 10M hashes
 * is bound by how fast those hashes are read. Both release the GIL, so the caller can share the
 * work out to threads. Results come back as bytes of int64 (query number, row number, distance)
 * triples, for numpy to view.
 *
 * The tables come from a file that may be damaged: every start and row number read from them is
 * checked against the arrays' real lengths (a few compares a probe, none a candidate), and a
 * bad one raises Damaged instead of reading outside an array.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One hardware popcount instruction where the CPU has it (every x86-64 since 2008), chosen at
 * load time, so that a build for generic x86-64 is still fast. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones("popcnt", "default")))
#else
#define HOT
#endif

/* Hashes in a block stay in the L1 cache while every query of a batch passes over them. */
#define BLOCK 4096
/* A probe's place in a band's start table is a cache miss: ask for it this many probes early. */
#define AHEAD 16

static PyObject *Damaged;

typedef struct {
    int64_t *data;
    Py_ssize_t len, cap;
    int failed, damaged;
} Found;

static inline void found_add(Found *f, int64_t query, int64_t row, int64_t distance) {
    if (f->len + 3 > f->cap) {
        Py_ssize_t cap = f->cap ? f->cap * 2 : 3072;
        int64_t *data = f->failed ? NULL : realloc(f->data, cap * sizeof(int64_t));
        if (data == NULL) {
            f->failed = 1;
            return;
        }
        f->data = data;
        f->cap = cap;
    }
    f->data[f->len++] = query;
    f->data[f->len++] = row;
    f->data[f->len++] = distance;
}

static PyObject *found_bytes(Found *f) {
    PyObject *out = f->damaged  ? PyErr_Format(Damaged, "a band start or row number is out of bounds")
                    : f->failed ? PyErr_NoMemory()
                                : PyBytes_FromStringAndSize((const char *)f->data,
                                                            f->len * (Py_ssize_t)sizeof(int64_t));
    free(f->data);
    return out;
}

HOT static void scan_loop(const uint64_t *hashes, Py_ssize_t n, const uint64_t *queries,
                          Py_ssize_t m, int radius, Found *out) {
    for (Py_ssize_t lo = 0; lo < n; lo += BLOCK) {
        Py_ssize_t hi = lo + BLOCK < n ? lo + BLOCK : n;
        for (Py_ssize_t j = 0; j < m; j++) {
            uint64_t query = queries[j];
            for (Py_ssize_t i = lo; i < hi; i++) {
                int d = __builtin_popcountll(hashes[i] ^ query);
                if (d <= radius) found_add(out, j, i, d);
            }
        }
    }
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer hashes, queries;
    int radius;
    if (!PyArg_ParseTuple(args, "y*y*i", &hashes, &queries, &radius)) return NULL;
    Found out = {0};
    Py_BEGIN_ALLOW_THREADS
    scan_loop(hashes.buf, hashes.len / 8, queries.buf, queries.len / 8, radius, &out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&queries);
    return found_bytes(&out);
}

HOT static void probe_loop(const uint64_t *queries, const uint32_t *values, Py_ssize_t m,
                           const uint32_t *masks, Py_ssize_t k, const int32_t *starts,
                           Py_ssize_t n_starts, const int32_t *order, const uint64_t *sorted,
                           Py_ssize_t n, int radius, const uint64_t *earlier,
                           const int32_t *earlier_radii, Py_ssize_t e, Found *out) {
    for (Py_ssize_t j = 0; j < m; j++) {
        uint64_t query = queries[j];
        for (Py_ssize_t p = 0; p < k; p++) {
            /* Two steps ahead: the start of a later probe, then (its start now read) the
             * first of its hashes, so neither waits on memory when its turn comes. (A
             * prefetch never faults, but the start read for the second must lie in the table.) */
            if (p + 2 * AHEAD < k) __builtin_prefetch(&starts[values[j] ^ masks[p + 2 * AHEAD]]);
            if (p + AHEAD < k) {
                uint32_t ahead = values[j] ^ masks[p + AHEAD];
                __builtin_prefetch(&sorted[starts[ahead < n_starts ? ahead : 0]]);
            }
            uint32_t v = values[j] ^ masks[p];
            if ((Py_ssize_t)v + 1 >= n_starts) goto damaged;
            int32_t lo = starts[v], hi = starts[v + 1];
            if (lo < 0 || lo > hi || hi > n) goto damaged;
            for (int32_t i = lo; i < hi; i++) {
                uint64_t x = sorted[i] ^ query;
                int d = __builtin_popcountll(x);
                if (d > radius) continue;
                /* A row this close in an earlier band was found there already. */
                Py_ssize_t b = 0;
                while (b < e && __builtin_popcountll(x & earlier[b]) > earlier_radii[b]) b++;
                if (b < e) continue;
                if (order[i] < 0 || order[i] >= n) goto damaged;
                found_add(out, j, order[i], d);
            }
        }
    }
    return;
damaged:
    out->damaged = 1;
}

static PyObject *probe(PyObject *self, PyObject *args) {
    Py_buffer queries, values, masks, starts, order, sorted, earlier, earlier_radii;
    int radius;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*iy*y*", &queries, &values, &masks, &starts, &order,
                          &sorted, &radius, &earlier, &earlier_radii))
        return NULL;
    Found out = {0};
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t m = queries.len / 8 < values.len / 4 ? queries.len / 8 : values.len / 4;
    Py_ssize_t n = order.len / 4 < sorted.len / 8 ? order.len / 4 : sorted.len / 8;
    if (starts.len / 4 < 2) out.damaged = 1;
    else probe_loop(queries.buf, values.buf, m, masks.buf, masks.len / 4, starts.buf,
                    starts.len / 4, order.buf, sorted.buf, n, radius, earlier.buf,
                    earlier_radii.buf, earlier.len / 8 < earlier_radii.len / 4 ? earlier.len / 8 : earlier_radii.len / 4,
                    &out);
    Py_END_ALLOW_THREADS
    Py_buffer *all[] = {&queries, &values, &masks, &starts, &order, &sorted, &earlier,
                        &earlier_radii};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) PyBuffer_Release(all[i]);
    return found_bytes(&out);
}

HOT static int count_loop(const uint32_t *values, Py_ssize_t m, const uint32_t *masks,
                          Py_ssize_t k, const int32_t *starts, Py_ssize_t n_starts,
                          int64_t *counts) {
    for (Py_ssize_t j = 0; j < m; j++) {
        int64_t total = 0;
        for (Py_ssize_t p = 0; p < k; p++) {
            if (p + AHEAD < k) __builtin_prefetch(&starts[values[j] ^ masks[p + AHEAD]]);
            uint32_t v = values[j] ^ masks[p];
            if ((Py_ssize_t)v + 1 >= n_starts) return -1;
            total += starts[v + 1] - starts[v];
        }
        counts[j] += total;
    }
    return 0;
}

static PyObject *count(PyObject *self, PyObject *args) {
    Py_buffer values, masks, starts, counts;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &values, &masks, &starts, &counts)) return NULL;
    Py_ssize_t m = values.len / 4 < counts.len / 8 ? values.len / 4 : counts.len / 8;
    int bad = starts.len / 4 < 2;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        bad = count_loop(values.buf, m, masks.buf, masks.len / 4, starts.buf, starts.len / 4,
                         counts.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&values);
    PyBuffer_Release(&masks);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&counts);
    if (bad) return PyErr_Format(Damaged, "a band value lies outside its start table");
    Py_RETURN_NONE;
}

/* A large answer names thousands of rows scattered over an id blob of hundreds of megabytes:
 * numpy's fancy indexing takes four passes and temporaries per byte where one copy will do. */
static PyObject *ids(PyObject *self, PyObject *args) {
    Py_buffer blob, ends, rows;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blob, &ends, &rows)) return NULL;
    const char *data = blob.buf;
    const int64_t *end = ends.buf, *row = rows.buf;
    Py_ssize_t n = rows.len / 8, count = ends.len / 8, total = 0;
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Each id is a cache miss or two: ask for its place early (a prefetch never faults). */
        if (i + AHEAD < n) __builtin_prefetch(&end[row[i + AHEAD] > 0 ? row[i + AHEAD] - 1 : 0]);
        if (row[i] < 0 || row[i] >= count) {
            PyErr_Format(PyExc_IndexError, "row %lld is not in 0..%zd", (long long)row[i], count - 1);
            goto done;
        }
        int64_t start = row[i] ? end[row[i] - 1] : 0, stop = end[row[i]];
        if (start < 0 || stop < start || stop > blob.len) {
            PyErr_Format(Damaged, "the id of row %lld lies outside the id blob", (long long)row[i]);
            goto done;
        }
        total += stop - start + 1;
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) goto done;
    char *p = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + AHEAD < n) __builtin_prefetch(data + (row[i + AHEAD] ? end[row[i + AHEAD] - 1] : 0));
        int64_t start = row[i] ? end[row[i] - 1] : 0, length = end[row[i]] - start;
        memcpy(p, data + start, length);
        p += length;
        *p++ = 0;
    }
done:
    PyBuffer_Release(&blob);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&rows);
    return out;
}

static PyMethodDef methods[] = {
    {"ids", ids, METH_VARARGS,
     "ids(blob, ends, rows) -> bytes: the ids of `rows` (int64), each followed by a NUL; row "
     "i's id is blob[ends[i-1]:ends[i]] (ends int64, the first starting at 0)."},
    {"count", count, METH_VARARGS,
     "count(values, masks, starts, counts): adds to counts[j] (int64) how many rows the probes "
     "of query j would read in one band (as `probe`)."},
    {"scan", scan, METH_VARARGS,
     "scan(hashes, queries, radius) -> bytes of int64 (query, row, distance) triples: every "
     "row of `hashes` (uint64) within `radius` bits of a query (uint64)."},
    {"probe", probe, METH_VARARGS,
     "probe(queries, values, masks, starts, order, sorted, radius, earlier, earlier_radii) -> "
     "bytes of int64 (query, row, distance) triples: the rows of one band whose band value is a "
     "query's value (uint32) XOR a mask (uint32) and that lie within `radius` of the query; "
     "rows are where `starts` (int32, per band value) says in `order` (int32 row numbers) and "
     "`sorted` (their uint64 hashes); rows within earlier_radii[b] (int32) bits of the query "
     "on the bits of earlier[b] (uint64 band masks) are left out, an earlier band found them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hamming", NULL, 0, methods};

PyMODINIT_FUNC PyInit__hamming(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Damaged = PyErr_NewExceptionWithDoc(
        "phashdb._hamming.Damaged",
        "The band tables are not what was saved: a start, row number or id end out of bounds.",
        PyExc_ValueError, NULL);
    if (Damaged == NULL || PyModule_AddObjectRef(m, "Damaged", Damaged) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
