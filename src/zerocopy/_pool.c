/* zerocopy._speedups, part two: the shared pool's bookkeeping and torch's backing allocator.
 *
 * Why C here:
 *   - Ledger: the per-allocation statistics (pointer -> size and framework, current/peak/
 *     count per framework) were a Python dict and two counter objects under a lock, about
 *     1.2 us per alloc+free pair on the dev VM: as much as the pool's own allocation. Here
 *     they are an open-addressing table and a few integer adds. Every caller holds the GIL,
 *     so the Ledger needs no lock of its own.
 *   - torch's caching allocator can take a private pool whose segments come from a
 *     "pluggable" allocator, but only as C function pointers it calls without the GIL. The
 *     two exported functions below take segments from the shared pool with the driver's
 *     cuMemAllocFromPoolAsync / cuMemFreeAsync, whose addresses Python hands in (resolved
 *     from libcuda with ctypes): the build needs no CUDA headers or libraries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define ZC_EXPORT __attribute__((visibility("default")))
#else
#define ZC_EXPORT
#endif

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

static int read_entry_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
                           uint64_t *ptr, long long *nbytes, int *slot)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments, got %zd", want, nargs);
        return -1;
    }
    *ptr = (uint64_t)PyLong_AsUnsignedLongLongMask(args[0]);
    *nbytes = PyLong_AsLongLong(args[1]);
    *slot = (int)PyLong_AsLong(args[2]);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *Ledger_add(Ledger *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t ptr;
    long long nbytes;
    int slot;
    if (read_entry_args(args, nargs, 3, &ptr, &nbytes, &slot) < 0) {
        return NULL;
    }
    return ledger_insert(self, ptr, nbytes, slot, 1);
}

static PyObject *Ledger_restore(Ledger *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t ptr;
    long long nbytes;
    int slot;
    if (read_entry_args(args, nargs, 3, &ptr, &nbytes, &slot) < 0) {
        return NULL;
    }
    return ledger_insert(self, ptr, nbytes, slot, 0);
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

/* ------------------------------------------------------------------ torch's backing allocator */

/* CUresult cuMemAllocFromPoolAsync(CUdeviceptr *, size_t, CUmemoryPool, CUstream) and
 * CUresult cuMemFreeAsync(CUdeviceptr, CUstream); CUresult is an int, 0 = success. */
typedef int (*alloc_fn)(unsigned long long *, size_t, void *, void *);
typedef int (*free_fn)(unsigned long long, void *);

#define DEVICES 64

typedef struct {
    void *pool;
    long long current, peak, segments, total_count, total_bytes, limit, refused, failed;
} Backing;

static alloc_fn cu_alloc;
static free_fn cu_free;
static Backing backing[DEVICES];

static void raise_peak(long long *peak, long long value)
{
    long long seen = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (value > seen &&
           !__atomic_compare_exchange_n(peak, &seen, value, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* torch's CUDAPluggableAllocator signature; called by torch's caching allocator (no GIL)
 * when it needs a new segment. NULL = refused: torch frees its own cached segments, retries
 * and otherwise raises torch.OutOfMemoryError. */
ZC_EXPORT void *zerocopy_pool_malloc(size_t size, int device, void *stream)
{
    if (device < 0 || device >= DEVICES || cu_alloc == NULL) {
        return NULL;
    }
    Backing *b = &backing[device];
    if (b->pool == NULL) {
        return NULL;
    }
    long long now = __atomic_add_fetch(&b->current, (long long)size, __ATOMIC_RELAXED);
    long long limit = __atomic_load_n(&b->limit, __ATOMIC_RELAXED);
    if (limit > 0 && now > limit) {
        __atomic_sub_fetch(&b->current, (long long)size, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->refused, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    unsigned long long ptr = 0;
    if (cu_alloc(&ptr, size, b->pool, stream) != 0 || ptr == 0) {
        __atomic_sub_fetch(&b->current, (long long)size, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    raise_peak(&b->peak, now);
    __atomic_add_fetch(&b->segments, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->total_count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&b->total_bytes, (long long)size, __ATOMIC_RELAXED);
    return (void *)(uintptr_t)ptr;
}

ZC_EXPORT void zerocopy_pool_free(void *ptr, size_t size, int device, void *stream)
{
    if (ptr == NULL || device < 0 || device >= DEVICES || cu_free == NULL) {
        return;
    }
    Backing *b = &backing[device];
    cu_free((unsigned long long)(uintptr_t)ptr, stream);
    __atomic_sub_fetch(&b->current, (long long)size, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&b->segments, 1, __ATOMIC_RELAXED);
}

static int parse_device(PyObject *arg, int *device)
{
    *device = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (*device < 0 || *device >= DEVICES) {
        PyErr_Format(PyExc_ValueError, "device %d is outside 0..%d", *device, DEVICES - 1);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(backing_bind_doc,
"backing_bind(device, pool, alloc_address, free_address)\n--\n\n"
"Point zerocopy_pool_malloc/free for `device` at `pool` (a CUmemoryPool handle), using the\n"
"driver's cuMemAllocFromPoolAsync and cuMemFreeAsync at the given addresses.");

static PyObject *backing_bind(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    int device;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "backing_bind takes 4 arguments, got %zd", nargs);
        return NULL;
    }
    if (parse_device(args[0], &device) < 0) {
        return NULL;
    }
    void *pool = PyLong_AsVoidPtr(args[1]);
    void *alloc = PyLong_AsVoidPtr(args[2]);
    void *release = PyLong_AsVoidPtr(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (pool == NULL || alloc == NULL || release == NULL) {
        PyErr_SetString(PyExc_ValueError, "backing_bind needs a pool and both function addresses");
        return NULL;
    }
    cu_alloc = (alloc_fn)alloc;
    cu_free = (free_fn)release;
    __atomic_store_n(&backing[device].pool, pool, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(backing_counters_doc,
"backing_counters(device) -> dict\n--\n\n"
"What torch's caching allocator holds from the shared pool on `device`: current, peak,\n"
"segments (live), total_count, total_bytes, limit (0 = none), refused (by the limit),\n"
"failed (the pool had no memory).");

static PyObject *backing_counters(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device;
    if (parse_device(arg, &device) < 0) {
        return NULL;
    }
    Backing *b = &backing[device];
    return Py_BuildValue(
        "{sLsLsLsLsLsLsLsL}",
        "current", __atomic_load_n(&b->current, __ATOMIC_RELAXED),
        "peak", __atomic_load_n(&b->peak, __ATOMIC_RELAXED),
        "segments", __atomic_load_n(&b->segments, __ATOMIC_RELAXED),
        "total_count", __atomic_load_n(&b->total_count, __ATOMIC_RELAXED),
        "total_bytes", __atomic_load_n(&b->total_bytes, __ATOMIC_RELAXED),
        "limit", __atomic_load_n(&b->limit, __ATOMIC_RELAXED),
        "refused", __atomic_load_n(&b->refused, __ATOMIC_RELAXED),
        "failed", __atomic_load_n(&b->failed, __ATOMIC_RELAXED));
}

PyDoc_STRVAR(backing_set_limit_doc,
"backing_set_limit(device, nbytes)\n--\n\n"
"Refuse segments that would take torch's share on `device` above `nbytes` (0: no limit).");

static PyObject *backing_set_limit(PyObject *Py_UNUSED(module), PyObject *const *args,
                                   Py_ssize_t nargs)
{
    int device;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "backing_set_limit takes 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (parse_device(args[0], &device) < 0) {
        return NULL;
    }
    long long limit = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "a limit is a byte count >= 0 (0: no limit)");
        return NULL;
    }
    __atomic_store_n(&backing[device].limit, limit, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

static PyObject *backing_reset_peak(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device;
    if (parse_device(arg, &device) < 0) {
        return NULL;
    }
    Backing *b = &backing[device];
    __atomic_store_n(&b->peak, __atomic_load_n(&b->current, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

static PyMethodDef pool_methods[] = {
    {"backing_bind", (PyCFunction)(void (*)(void))backing_bind, METH_FASTCALL, backing_bind_doc},
    {"backing_counters", backing_counters, METH_O, backing_counters_doc},
    {"backing_set_limit", (PyCFunction)(void (*)(void))backing_set_limit, METH_FASTCALL,
     backing_set_limit_doc},
    {"backing_reset_peak", backing_reset_peak, METH_O, "backing_reset_peak(device): peak := current"},
    {NULL, NULL, 0, NULL},
};

/* Called from PyInit__speedups: adds the Ledger type and the backing functions. */
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
    if (PyModule_AddIntConstant(module, "LEDGER_SLOTS", LEDGER_SLOTS) < 0 ||
        PyModule_AddStringConstant(module, "BACKING_MALLOC", "zerocopy_pool_malloc") < 0 ||
        PyModule_AddStringConstant(module, "BACKING_FREE", "zerocopy_pool_free") < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, pool_methods);
}
