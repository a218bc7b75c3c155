/* zerocopy._speedups, part two: the shared pool's hot path and bookkeeping.
 *
 * Why C here:
 *   - Ledger: the per-allocation statistics (pointer -> size and framework, current/peak/
 *     count per framework) were a Python dict and two counter objects under a lock, about
 *     1.2 us per alloc+free pair on the dev VM: as much as the pool's own allocation. Here
 *     they are an open-addressing table and a few integer adds. Every caller holds the GIL,
 *     so the Ledger needs no lock of its own.
 *   - PoolPath: allocation and free on one CUDA memory pool through the driver's
 *     cuMemAllocFromPoolAsync / cuMemFreeAsync, called from C (cuda.bindings' Python
 *     wrappers cost 2.8 us per pair on the H200, CuPy's Cython ones 2.1). The function
 *     addresses come from Python (ctypes on libcuda), so the build needs no CUDA headers or
 *     libraries. Any failure (out of memory, no current context on this thread) is handed
 *     to the Python binding's own call, which retries and raises zerocopy's typed errors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ Ledger */

#define LEDGER_SLOTS 64
#define EMPTY 0ULL
#define TOMBSTONE 1ULL /* no allocation starts at address 1 */

typedef struct {
    long long current_bytes, peak_bytes, current_count, peak_count, total_count, total_bytes;
} Counter;

typedef struct {
    uint64_t ptr;
    uint64_t nbytes;
    int32_t slot;
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *table;
    size_t capacity; /* a power of two */
    size_t used;     /* live entries + tombstones */
    size_t live;
    Counter total;
    Counter per[LEDGER_SLOTS];
    long long unknown_frees;
} Ledger;

static size_t slot_hash(uint64_t ptr, size_t mask)
{
    /* Pools hand out 256/512-byte aligned addresses: mix the high bits down. */
    uint64_t h = ptr * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 17) & mask;
}

static Entry *find(Ledger *self, uint64_t ptr)
{
    size_t mask = self->capacity - 1;
    for (size_t i = slot_hash(ptr, mask);; i = (i + 1) & mask) {
        Entry *e = &self->table[i];
        if (e->ptr == ptr) {
            return e;
        }
        if (e->ptr == EMPTY) {
            return NULL;
        }
    }
}

static int grow(Ledger *self)
{
    size_t capacity = self->live * 4 > self->capacity ? self->capacity * 2 : self->capacity;
    Entry *table = calloc(capacity, sizeof(Entry));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t mask = capacity - 1;
    for (size_t k = 0; k < self->capacity; k++) {
        Entry *e = &self->table[k];
        if (e->ptr == EMPTY || e->ptr == TOMBSTONE) {
            continue;
        }
        size_t i = slot_hash(e->ptr, mask);
        while (table[i].ptr != EMPTY) {
            i = (i + 1) & mask;
        }
        table[i] = *e;
    }
    free(self->table);
    self->table = table;
    self->capacity = capacity;
    self->used = self->live;
    return 0;
}

static void count_in(Counter *c, long long nbytes, int new_allocation)
{
    c->current_bytes += nbytes;
    c->current_count += 1;
    if (new_allocation) {
        c->total_bytes += nbytes;
        c->total_count += 1;
    }
    if (c->current_bytes > c->peak_bytes) {
        c->peak_bytes = c->current_bytes;
    }
    if (c->current_count > c->peak_count) {
        c->peak_count = c->current_count;
    }
}

static void count_out(Counter *c, long long nbytes)
{
    c->current_bytes -= nbytes;
    c->current_count -= 1;
}

static int parse_slot(int slot)
{
    if (slot < 0 || slot >= LEDGER_SLOTS) {
        PyErr_Format(PyExc_ValueError, "ledger slot %d is outside 0..%d", slot, LEDGER_SLOTS - 1);
        return -1;
    }
    return 0;
}

/* add(ptr, nbytes, slot, new=True): count one allocation. */
static PyObject *ledger_insert(Ledger *self, uint64_t ptr, long long nbytes, int slot, int fresh)
{
    if (parse_slot(slot) < 0) {
        return NULL;
    }
    if (ptr == EMPTY || ptr == TOMBSTONE) {
        PyErr_Format(PyExc_ValueError, "cannot record an allocation at address %llu",
                     (unsigned long long)ptr);
        return NULL;
    }
    if ((self->used + 1) * 2 > self->capacity && grow(self) < 0) {
        return NULL;
    }
    size_t mask = self->capacity - 1;
    size_t i = slot_hash(ptr, mask);
    Entry *tomb = NULL;
    for (;; i = (i + 1) & mask) {
        Entry *e = &self->table[i];
        if (e->ptr == ptr) { /* recorded twice: the pool handed it out again; replace */
            count_out(&self->total, (long long)e->nbytes);
            count_out(&self->per[e->slot], (long long)e->nbytes);
            self->live--;
            tomb = e;
            break;
        }
        if (e->ptr == TOMBSTONE && tomb == NULL) {
            tomb = e;
        }
        if (e->ptr == EMPTY) {
            if (tomb == NULL) {
                tomb = e;
                self->used++;
            }
            break;
        }
    }
    tomb->ptr = ptr;
    tomb->nbytes = (uint64_t)nbytes;
    tomb->slot = slot;
    self->live++;
    count_in(&self->total, nbytes, fresh);
    count_in(&self->per[slot], nbytes, fresh);
    Py_RETURN_NONE;
}

/* add/restore(ptr, nbytes, slot): the arguments read, then one insert; ``fresh`` says
 * whether it is a new allocation (totals count it) or a free that failed (they do not). */
static PyObject *insert_from_args(Ledger *self, PyObject *const *args, Py_ssize_t nargs, int fresh)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "expected (ptr, nbytes, slot), got %zd arguments", nargs);
        return NULL;
    }
    uint64_t ptr = (uint64_t)PyLong_AsUnsignedLongLongMask(args[0]);
    long long nbytes = PyLong_AsLongLong(args[1]);
    int slot = (int)PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return ledger_insert(self, ptr, nbytes, slot, fresh);
}

static PyObject *Ledger_add(Ledger *self, PyObject *const *args, Py_ssize_t nargs)
{
    return insert_from_args(self, args, nargs, 1);
}

static PyObject *Ledger_restore(Ledger *self, PyObject *const *args, Py_ssize_t nargs)
{
    return insert_from_args(self, args, nargs, 0);
}

/* remove(ptr) -> (nbytes, slot), or None for a pointer this ledger never saw. */
static PyObject *Ledger_remove(Ledger *self, PyObject *arg)
{
    uint64_t ptr = (uint64_t)PyLong_AsUnsignedLongLongMask(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Entry *e = (ptr == EMPTY || ptr == TOMBSTONE) ? NULL : find(self, ptr);
    if (e == NULL) {
        self->unknown_frees++;
        Py_RETURN_NONE;
    }
    long long nbytes = (long long)e->nbytes;
    int slot = e->slot;
    e->ptr = TOMBSTONE;
    self->live--;
    count_out(&self->total, nbytes);
    count_out(&self->per[slot], nbytes);
    return Py_BuildValue("(Li)", nbytes, slot);
}

static PyObject *Ledger_slot_of(Ledger *self, PyObject *arg)
{
    uint64_t ptr = (uint64_t)PyLong_AsUnsignedLongLongMask(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Entry *e = (ptr == EMPTY || ptr == TOMBSTONE) ? NULL : find(self, ptr);
    return PyLong_FromLong(e == NULL ? -1 : e->slot);
}

/* counters(slot=-1) -> (current_bytes, peak_bytes, current_count, peak_count,
 * total_count, total_bytes); -1 is the total over every slot. */
static PyObject *Ledger_counters(Ledger *self, PyObject *arg)
{
    int slot = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (slot != -1 && parse_slot(slot) < 0) {
        return NULL;
    }
    Counter *c = slot == -1 ? &self->total : &self->per[slot];
    return Py_BuildValue("(LLLLLL)", c->current_bytes, c->peak_bytes, c->current_count,
                         c->peak_count, c->total_count, c->total_bytes);
}

static PyObject *Ledger_reset_peaks(Ledger *self, PyObject *Py_UNUSED(ignored))
{
    Counter *all[LEDGER_SLOTS + 1];
    all[0] = &self->total;
    for (int i = 0; i < LEDGER_SLOTS; i++) {
        all[i + 1] = &self->per[i];
    }
    for (int i = 0; i <= LEDGER_SLOTS; i++) {
        all[i]->peak_bytes = all[i]->current_bytes;
        all[i]->peak_count = all[i]->current_count;
    }
    Py_RETURN_NONE;
}

static PyObject *Ledger_get_unknown(Ledger *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->unknown_frees);
}

static PyObject *Ledger_get_live(Ledger *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(self->live);
}

static int Ledger_init(Ledger *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist)) {
        return -1;
    }
    free(self->table);
    self->capacity = 1024;
    self->table = calloc(self->capacity, sizeof(Entry));
    if (self->table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->used = self->live = 0;
    memset(&self->total, 0, sizeof(self->total));
    memset(self->per, 0, sizeof(self->per));
    self->unknown_frees = 0;
    return 0;
}

static void Ledger_dealloc(Ledger *self)
{
    free(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Ledger_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Ledger_add, METH_FASTCALL,
     "add(ptr, nbytes, slot): count one successful allocation"},
    {"restore", (PyCFunction)(void (*)(void))Ledger_restore, METH_FASTCALL,
     "restore(ptr, nbytes, slot): a free failed; count the allocation as live again"},
    {"remove", (PyCFunction)Ledger_remove, METH_O,
     "remove(ptr) -> (nbytes, slot) or None (a pointer never recorded)"},
    {"slot_of", (PyCFunction)Ledger_slot_of, METH_O, "slot_of(ptr) -> slot, or -1"},
    {"counters", (PyCFunction)Ledger_counters, METH_O,
     "counters(slot) -> (current_bytes, peak_bytes, current_count, peak_count, total_count, "
     "total_bytes); slot -1 is the total"},
    {"reset_peaks", (PyCFunction)Ledger_reset_peaks, METH_NOARGS,
     "reset_peaks(): every peak to its current value"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ledger_getset[] = {
    {"unknown_frees", (getter)Ledger_get_unknown, NULL, "frees of pointers never recorded", NULL},
    {"live", (getter)Ledger_get_live, NULL, "allocations recorded and not yet freed", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LedgerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zerocopy._speedups.Ledger",
    .tp_doc = "Live allocations (pointer -> size, slot) and per-slot counters; callers hold the GIL.",
    .tp_basicsize = sizeof(Ledger),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ledger_init,
    .tp_dealloc = (destructor)Ledger_dealloc,
    .tp_methods = Ledger_methods,
    .tp_getset = Ledger_getset,
};

/* ------------------------------------------------------------------ PoolPath */

/* CUresult cuMemAllocFromPoolAsync(CUdeviceptr *, size_t, CUmemoryPool, CUstream) and
 * CUresult cuMemFreeAsync(CUdeviceptr, CUstream); CUresult is an int, 0 = success. */
typedef int (*alloc_fn)(unsigned long long *, size_t, void *, void *);
typedef int (*free_fn)(unsigned long long, void *);

typedef struct {
    PyObject_HEAD
    void *pool;
    alloc_fn alloc;
    free_fn release;
    PyObject *fallback_malloc; /* (nbytes, stream) -> ptr: the binding's call */
    PyObject *fallback_free;   /* (ptr, stream) */
    long long fallbacks;
} PoolPath;

static int PoolPath_init(PoolPath *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pool", "alloc_address", "free_address", "fallback_malloc",
                             "fallback_free", NULL};
    PyObject *pool, *alloc, *release, *fallback_malloc, *fallback_free;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO", kwlist, &pool, &alloc, &release,
                                     &fallback_malloc, &fallback_free)) {
        return -1;
    }
    self->pool = PyLong_AsVoidPtr(pool);
    self->alloc = (alloc_fn)PyLong_AsVoidPtr(alloc);
    self->release = (free_fn)PyLong_AsVoidPtr(release);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (self->alloc == NULL || self->release == NULL) {
        PyErr_SetString(PyExc_ValueError, "PoolPath needs both function addresses");
        return -1;
    }
    if (!PyCallable_Check(fallback_malloc) || !PyCallable_Check(fallback_free)) {
        PyErr_SetString(PyExc_TypeError, "PoolPath's fallbacks must be callables");
        return -1;
    }
    Py_INCREF(fallback_malloc);
    Py_INCREF(fallback_free);
    Py_XSETREF(self->fallback_malloc, fallback_malloc);
    Py_XSETREF(self->fallback_free, fallback_free);
    return 0;
}

static void PoolPath_dealloc(PoolPath *self)
{
    Py_XDECREF(self->fallback_malloc);
    Py_XDECREF(self->fallback_free);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *PoolPath_malloc(PoolPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "malloc(nbytes, stream) takes 2 arguments, got %zd", nargs);
        return NULL;
    }
    size_t nbytes = PyLong_AsSize_t(args[0]);
    void *stream = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long ptr = 0;
    if (nbytes > 0 && self->fallback_malloc != NULL &&
        self->alloc(&ptr, nbytes, self->pool, stream) == 0) {
        return PyLong_FromUnsignedLongLong(ptr);
    }
    if (self->fallback_malloc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PoolPath was not initialised");
        return NULL;
    }
    self->fallbacks++; /* 0 bytes, out of memory, no context: the binding decides */
    return PyObject_Vectorcall(self->fallback_malloc, args, 2, NULL);
}

static PyObject *PoolPath_free(PoolPath *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "free(ptr, stream) takes 2 arguments, got %zd", nargs);
        return NULL;
    }
    unsigned long long ptr = PyLong_AsUnsignedLongLong(args[0]);
    void *stream = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (self->fallback_free != NULL && self->release(ptr, stream) == 0) {
        Py_RETURN_NONE;
    }
    if (self->fallback_free == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PoolPath was not initialised");
        return NULL;
    }
    self->fallbacks++;
    return PyObject_Vectorcall(self->fallback_free, args, 2, NULL);
}

static PyObject *PoolPath_get_fallbacks(PoolPath *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->fallbacks);
}

static PyMethodDef PoolPath_methods[] = {
    {"malloc", (PyCFunction)(void (*)(void))PoolPath_malloc, METH_FASTCALL,
     "malloc(nbytes, stream) -> ptr: cuMemAllocFromPoolAsync, else the fallback"},
    {"free", (PyCFunction)(void (*)(void))PoolPath_free, METH_FASTCALL,
     "free(ptr, stream): cuMemFreeAsync, else the fallback"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PoolPath_getset[] = {
    {"fallbacks", (getter)PoolPath_get_fallbacks, NULL,
     "calls handed to the Python binding (failures, 0-byte requests)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PoolPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zerocopy._speedups.PoolPath",
    .tp_doc = "PoolPath(pool, alloc_address, free_address, fallback_malloc, fallback_free): "
              "one pool's allocation and free through the driver, called from C.",
    .tp_basicsize = sizeof(PoolPath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PoolPath_init,
    .tp_dealloc = (destructor)PoolPath_dealloc,
    .tp_methods = PoolPath_methods,
    .tp_getset = PoolPath_getset,
};

/* Called from PyInit__speedups: adds the Ledger and PoolPath types. */
int zc_pool_init(PyObject *module)
{
    if (PyType_Ready(&LedgerType) < 0) {
        return -1;
    }
    Py_INCREF(&LedgerType);
    if (PyModule_AddObject(module, "Ledger", (PyObject *)&LedgerType) < 0) {
        Py_DECREF(&LedgerType);
        return -1;
    }
    if (PyType_Ready(&PoolPathType) < 0) {
        return -1;
    }
    Py_INCREF(&PoolPathType);
    if (PyModule_AddObject(module, "PoolPath", (PyObject *)&PoolPathType) < 0) {
        Py_DECREF(&PoolPathType);
        return -1;
    }
    return PyModule_AddIntConstant(module, "LEDGER_SLOTS", LEDGER_SLOTS);
}
