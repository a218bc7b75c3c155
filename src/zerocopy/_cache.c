/* zerocopy._speedups, part four: a caching allocator in C in front of the shared pool,
 * for a framework that takes C function pointers (torch's CUDAPluggableAllocator).
 *
 * Why: torch's own caching allocator cannot take its segments from the shared pool without
 * breaking (docs/memory.md, "Known limits"), and torch's cudaMallocAsync backend, which
 * does join the pool, costs 1.4-1.6x torch's default allocation and free. Here the four
 * calls torch makes (alloc, free, record_stream, empty_cache) run in C, without Python
 * or the GIL:
 *   - freed blocks are cached per (device, stream, size class); a hit is a lock and a pop;
 *   - a miss is cuMemAllocFromPoolAsync on the device's default pool, the shared pool;
 *   - a free puts the block back for the stream it was allocated on. Stream order makes
 *     reuse on that stream safe, as in torch's own allocator. Streams that used the block
 *     too (tensor.record_stream) go first: the allocation stream waits on an event
 *     recorded on each of them, so the block is reusable at once, still in stream order;
 *   - release (torch.cuda.empty_cache, governance, a failed allocation) hands idle blocks
 *     back with cuMemFreeAsync on their own stream: no wait for the GPU;
 *   - inside a CUDA graph capture the allocation is captured too (the graph's own memory,
 *     as with torch's cudaMallocAsync backend) and never enters the cache; an older block
 *     freed inside a capture stays held for the life of the process, since a replay may
 *     still use it (held_bytes, with blocks whose other users could not be waited for).
 * The driver's function addresses come from Python (ctypes on libcuda), so the build needs
 * no CUDA headers or libraries, and the tests can pass stand-ins. One state per process,
 * like torch's allocator; a mutex guards it (torch allocates from several threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#define ZC_CACHE 1
#include <pthread.h>
#endif

#ifdef ZC_CACHE

#define MAX_DEVICES 64
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_STREAM_CAPTURE_IMPLICIT 906
#define EVENT_DISABLE_TIMING 2

typedef int (*pool_alloc_fn)(uint64_t *, size_t, void *, void *);
typedef int (*free_async_fn)(uint64_t, void *);
typedef int (*device_get_fn)(int *, int);
typedef int (*default_pool_fn)(void **, int);
typedef int (*is_capturing_fn)(void *, int *);
typedef int (*event_create_fn)(void **, unsigned int);
typedef int (*event_record_fn)(void *, void *);
typedef int (*stream_wait_fn)(void *, void *, unsigned int);
typedef int (*event_destroy_fn)(void *);

static struct {
    pool_alloc_fn pool_alloc;
    free_async_fn free_async;
    device_get_fn device_get;
    default_pool_fn default_pool;
    is_capturing_fn is_capturing;
    event_create_fn event_create;
    event_record_fn event_record;
    stream_wait_fn stream_wait;
    event_destroy_fn event_destroy;
} drv;

typedef struct Block {
    uint64_t ptr;
    size_t size;
    void *stream;
    struct Block *next;
} Block;

typedef struct {
    int used;
    int device;
    void *stream;
    size_t size;
    Block *head;
} Bin;

typedef struct {
    uint64_t ptr; /* 0 empty, 1 tombstone */
    int graph;    /* made inside a capture: the graph's own memory */
    int n, cap;
    void **streams; /* streams besides its own that used it (record_stream) */
} Special;

typedef struct {
    long long live_bytes, live_count, peak_bytes, cached_bytes, held_bytes, reserved_peak;
    long long hits, misses, captured, overdrafts, released_bytes, stream_waits, driver_errors;
    long long limit; /* 0: none */
    int last_error;
    void *pool;
} Device;

#define ZC_DRIVER_FUNCTIONS ((int)(sizeof(drv) / sizeof(void *)))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;
static Device devices[MAX_DEVICES];
static Bin *bins;
static size_t bins_cap, bins_used;
static Special *specials;
static size_t specials_cap, specials_used, specials_live;
static Block *spare_blocks;
static PyObject *on_oom; /* (nbytes, device) -> bool: ask others for memory, then retry */

/* Size classes: 512-byte steps up to 1 MiB (CuPy's and torch's rounding), then eight
 * classes per power of two (at most 12.5% over the request), so a workload whose sizes
 * drift reuses blocks instead of caching one of every size it ever asked for. */
static size_t size_class(size_t n)
{
    if (n <= 512) {
        return 512;
    }
    if (n <= ((size_t)1 << 20)) {
        return (n + 511) & ~(size_t)511;
    }
    size_t power = (size_t)1 << 20;
    while (power * 2 < n) {
        power *= 2;
    }
    size_t step = power / 8;
    return (n + step - 1) / step * step;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static size_t bin_hash(int device, void *stream, size_t size)
{
    return (size_t)mix((uint64_t)(uintptr_t)stream * 31u + (uint64_t)size * 0x9E3779B97F4A7C15ULL +
                       (uint64_t)device);
}

static int bins_grow(void)
{
    size_t cap = bins_cap ? bins_cap * 2 : 256;
    Bin *table = calloc(cap, sizeof(Bin));
    if (table == NULL) {
        return -1;
    }
    for (size_t k = 0; k < bins_cap; k++) {
        Bin *b = &bins[k];
        if (!b->used) {
            continue;
        }
        size_t i = bin_hash(b->device, b->stream, b->size) & (cap - 1);
        while (table[i].used) {
            i = (i + 1) & (cap - 1);
        }
        table[i] = *b;
    }
    free(bins);
    bins = table;
    bins_cap = cap;
    return 0;
}

/* The bin of (device, stream, size); created when ``create`` (NULL if that fails). Bins are
 * never removed: a workload has few streams and, with size classes, few sizes. */
static Bin *bin_find(int device, void *stream, size_t size, int create)
{
    if (bins_cap == 0 || (create && (bins_used + 1) * 2 > bins_cap)) {
        if (!create || bins_grow() < 0) {
            return NULL;
        }
    }
    size_t mask = bins_cap - 1;
    for (size_t i = bin_hash(device, stream, size) & mask;; i = (i + 1) & mask) {
        Bin *b = &bins[i];
        if (!b->used) {
            if (!create) {
                return NULL;
            }
            b->used = 1;
            b->device = device;
            b->stream = stream;
            b->size = size;
            b->head = NULL;
            bins_used++;
            return b;
        }
        if (b->size == size && b->stream == stream && b->device == device) {
            return b;
        }
    }
}

static size_t special_hash(uint64_t ptr)
{
    return (size_t)mix(ptr);
}

static Special *special_find(uint64_t ptr)
{
    if (specials_cap == 0) {
        return NULL;
    }
    size_t mask = specials_cap - 1;
    for (size_t i = special_hash(ptr) & mask;; i = (i + 1) & mask) {
        Special *s = &specials[i];
        if (s->ptr == ptr) {
            return s;
        }
        if (s->ptr == 0) {
            return NULL;
        }
    }
}

static int specials_grow(void)
{
    size_t cap = specials_cap && specials_live * 4 > specials_cap ? specials_cap * 2
                 : specials_cap ? specials_cap : 64;
    Special *table = calloc(cap, sizeof(Special));
    if (table == NULL) {
        return -1;
    }
    for (size_t k = 0; k < specials_cap; k++) {
        Special *s = &specials[k];
        if (s->ptr <= 1) {
            continue;
        }
        size_t i = special_hash(s->ptr) & (cap - 1);
        while (table[i].ptr != 0) {
            i = (i + 1) & (cap - 1);
        }
        table[i] = *s;
    }
    free(specials);
    specials = table;
    specials_cap = cap;
    specials_used = specials_live;
    return 0;
}

static Special *special_add(uint64_t ptr)
{
    Special *s = special_find(ptr);
    if (s != NULL) {
        return s;
    }
    if ((specials_used + 1) * 2 > specials_cap && specials_grow() < 0) {
        return NULL;
    }
    size_t mask = specials_cap - 1;
    size_t i = special_hash(ptr) & mask;
    while (specials[i].ptr > 1) {
        i = (i + 1) & mask;
    }
    if (specials[i].ptr == 0) {
        specials_used++;
    }
    s = &specials[i];
    memset(s, 0, sizeof(*s));
    s->ptr = ptr;
    specials_live++;
    return s;
}

static void special_drop(Special *s)
{
    free(s->streams);
    memset(s, 0, sizeof(*s));
    s->ptr = 1;
    specials_live--;
}

static Device *device_of(int device)
{
    if (!ready || device < 0 || device >= MAX_DEVICES) {
        return NULL;
    }
    Device *d = &devices[device];
    if (d->pool == NULL) {
        int handle = 0;
        int rc = drv.device_get(&handle, device);
        if (rc == 0) {
            rc = drv.default_pool(&d->pool, handle);
        }
        if (rc != 0) {
            d->driver_errors++;
            d->last_error = rc;
            d->pool = NULL;
            return NULL;
        }
    }
    return d;
}

/* 1 if work on ``stream`` is being captured into a graph. CUDA answers
 * CUDA_ERROR_STREAM_CAPTURE_IMPLICIT for the legacy stream while another stream captures:
 * that counts as capturing. Any other failure counts as not capturing (and is recorded),
 * so a driver without the query does not turn every block into a held one. */
static int capturing(Device *d, void *stream)
{
#ifdef ZC_EXPERIMENT_NO_CAPTURE_QUERY /* measures what the queries cost; unsafe with graphs */
    (void)d; (void)stream;
    return 0;
#endif
    int status = 0;
    int rc = drv.is_capturing(stream, &status);
    if (rc != 0) {
        d->driver_errors++;
        d->last_error = rc;
        return rc == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    }
    return status != 0;
}

static void count_live(Device *d, size_t size)
{
    d->live_bytes += (long long)size;
    d->live_count++;
    if (d->live_bytes > d->peak_bytes) {
        d->peak_bytes = d->live_bytes;
    }
    /* Only a miss grows what the cache holds of the pool: a hit moves cached to live. */
    long long reserved = d->live_bytes + d->cached_bytes + d->held_bytes;
    if (reserved > d->reserved_peak) {
        d->reserved_peak = reserved;
    }
}

static Block *new_block(void)
{
    Block *b = spare_blocks;
    if (b != NULL) {
        spare_blocks = b->next;
        return b;
    }
    return malloc(sizeof(Block));
}

/* Hand every idle block of ``device`` (-1: all) back to the pool; the bytes released. */
static long long release_idle(int device)
{
    long long released = 0;
    for (size_t k = 0; k < bins_cap; k++) {
        Bin *bin = &bins[k];
        if (!bin->used || bin->head == NULL || (device >= 0 && bin->device != device)) {
            continue;
        }
        Device *d = &devices[bin->device];
        while (bin->head != NULL) {
            Block *b = bin->head;
            bin->head = b->next;
            int rc = drv.free_async(b->ptr, b->stream);
            d->cached_bytes -= (long long)b->size;
            if (rc != 0) { /* its stream is gone; the block stays lost rather than raced */
                d->driver_errors++;
                d->last_error = rc;
                d->held_bytes += (long long)b->size;
            } else {
                d->released_bytes += (long long)b->size;
                released += (long long)b->size;
            }
            b->next = spare_blocks;
            spare_blocks = b;
        }
    }
    return released;
}

/* The other frameworks' caches, asked from Python; the lock is not held here. */
static int ask_others(size_t size, int device)
{
    if (on_oom == NULL || !Py_IsInitialized()) {
        return 0;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    int retry = 0;
    PyObject *result = PyObject_CallFunction(on_oom, "ni", (Py_ssize_t)size, device);
    if (result == NULL) {
        PyErr_WriteUnraisable(on_oom);
    } else {
        retry = PyObject_IsTrue(result) == 1;
        Py_DECREF(result);
    }
    PyGILState_Release(gil);
    return retry;
}

static uint64_t pool_alloc(Device *d, size_t size, void *stream)
{
    uint64_t ptr = 0;
    int rc = drv.pool_alloc(&ptr, size, d->pool, stream);
    if (rc != 0) {
        d->last_error = rc;
        return 0;
    }
    return ptr;
}

/* A block for a capture: the stream-ordered allocation is captured too, as the graph's own
 * allocation node (what torch's cudaMallocAsync backend does), so every replay has its
 * memory and no cached block is baked into a graph that outlives it. */
static uint64_t graph_alloc(Device *d, size_t size, void *stream)
{
    uint64_t ptr = pool_alloc(d, size, stream);
    Special *s = ptr ? special_add(ptr) : NULL;
    if (ptr && s == NULL) { /* no room to remember it: do not hand out what we cannot track */
        drv.free_async(ptr, stream);
        return 0;
    }
    if (s != NULL) {
        s->graph = 1;
        d->captured++;
    }
    return ptr;
}

void *zerocopy_cache_alloc(size_t nbytes, int device, void *stream)
{
    if (nbytes == 0) {
        return NULL;
    }
    size_t size = size_class(nbytes);
    pthread_mutex_lock(&lock);
    Device *d = device_of(device);
    if (d == NULL) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    if (d->limit > 0 && d->live_bytes + (long long)size > d->limit) {
        d->overdrafts++; /* torch cannot fail an allocation cleanly: counted, not refused */
    }
    uint64_t ptr = 0;
    if (capturing(d, stream)) {
        ptr = graph_alloc(d, size, stream);
    } else {
        Bin *bin = bin_find(device, stream, size, 0);
        if (bin != NULL && bin->head != NULL) {
            Block *b = bin->head;
            bin->head = b->next;
            ptr = b->ptr;
            b->next = spare_blocks;
            spare_blocks = b;
            d->cached_bytes -= (long long)size;
            d->hits++;
            count_live(d, size);
            pthread_mutex_unlock(&lock);
            return (void *)(uintptr_t)ptr;
        }
        ptr = pool_alloc(d, size, stream);
        if (ptr == 0 && d->last_error == CUDA_ERROR_OUT_OF_MEMORY) {
            release_idle(-1);
            ptr = pool_alloc(d, size, stream);
        }
        if (ptr == 0 && d->last_error == CUDA_ERROR_OUT_OF_MEMORY && on_oom != NULL) {
            pthread_mutex_unlock(&lock);
            int retry = ask_others(size, device);
            pthread_mutex_lock(&lock);
            if (retry) {
                ptr = pool_alloc(d, size, stream);
            }
        }
        d->misses++;
    }
    if (ptr == 0) {
        d->driver_errors++;
    } else {
        count_live(d, size);
    }
    pthread_mutex_unlock(&lock);
    return (void *)(uintptr_t)ptr;
}

/* Streams that used the block go first: the allocation stream waits for each. 0 done,
 * -1 an event could not be made (the caller then holds the block instead). */
static int wait_for_users(Device *d, Special *s, void *stream)
{
    for (int k = 0; k < s->n; k++) {
        if (s->streams[k] == stream) {
            continue;
        }
        void *event = NULL;
        int rc = drv.event_create(&event, EVENT_DISABLE_TIMING);
        if (rc == 0) {
            rc = drv.event_record(event, s->streams[k]);
            if (rc == 0) {
                rc = drv.stream_wait(stream, event, 0);
            }
            drv.event_destroy(event);
        }
        if (rc != 0) {
            d->driver_errors++;
            d->last_error = rc;
            return -1;
        }
        d->stream_waits++;
    }
    return 0;
}

void zerocopy_cache_free(void *p, size_t nbytes, int device, void *stream)
{
    uint64_t ptr = (uint64_t)(uintptr_t)p;
    if (ptr == 0) {
        return;
    }
    size_t size = size_class(nbytes);
    pthread_mutex_lock(&lock);
    Device *d = device_of(device);
    if (d == NULL) {
        pthread_mutex_unlock(&lock);
        return;
    }
    d->live_bytes -= (long long)size;
    d->live_count--;
    int hold = 0, graph = 0;
    if (specials_live > 0) {
        Special *s = special_find(ptr);
        if (s != NULL) {
            graph = s->graph;
            hold = !graph && wait_for_users(d, s, stream) < 0;
            special_drop(s);
        }
    }
    if (graph) { /* a graph's allocation: freed on its stream (captured if still capturing) */
        int rc = drv.free_async(ptr, stream);
        if (rc != 0) {
            d->driver_errors++;
            d->last_error = rc;
            d->held_bytes += (long long)size;
        }
        pthread_mutex_unlock(&lock);
        return;
    }
    if (!hold) {
        hold = capturing(d, stream); /* an older block freed inside a capture: the graph may
                                        still use it, and it cannot be freed in the graph */
    }
    Bin *bin = hold ? NULL : bin_find(device, stream, size, 1);
    Block *b = bin ? new_block() : NULL;
    if (b == NULL) {
        d->held_bytes += (long long)size;
    } else {
        b->ptr = ptr;
        b->size = size;
        b->stream = stream;
        b->next = bin->head;
        bin->head = b;
        d->cached_bytes += (long long)size;
    }
    pthread_mutex_unlock(&lock);
}

void zerocopy_cache_record_stream(void *p, void *stream)
{
    pthread_mutex_lock(&lock);
    Special *s = special_add((uint64_t)(uintptr_t)p);
    if (s != NULL) {
        int seen = 0;
        for (int k = 0; k < s->n; k++) {
            seen |= s->streams[k] == stream;
        }
        if (!seen && s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 4;
            void **grown = realloc(s->streams, (size_t)cap * sizeof(void *));
            if (grown != NULL) {
                s->streams = grown;
                s->cap = cap;
            }
        }
        if (!seen && s->n < s->cap) {
            s->streams[s->n++] = stream;
        } else if (!seen) {
            s->graph = 1; /* could not remember the stream: hold the block when freed */
        }
    }
    pthread_mutex_unlock(&lock);
}

void zerocopy_cache_empty(void)
{
    pthread_mutex_lock(&lock);
    release_idle(-1);
    pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------- Python side */

static PyObject *cache_setup(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"addresses", "on_oom", "forget", NULL};
    PyObject *addresses, *callback = Py_None;
    int forget = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Op", kwlist, &addresses, &callback, &forget)) {
        return NULL;
    }
    void *fn[ZC_DRIVER_FUNCTIONS];
    PyObject *seq = PySequence_Fast(addresses, "addresses must be a sequence of ints");
    if (seq == NULL) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(seq) != ZC_DRIVER_FUNCTIONS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "addresses must hold %d function addresses, got %zd",
                     ZC_DRIVER_FUNCTIONS, PySequence_Fast_GET_SIZE(seq));
        return NULL;
    }
    for (int k = 0; k < ZC_DRIVER_FUNCTIONS; k++) {
        fn[k] = PyLong_AsVoidPtr(PySequence_Fast_GET_ITEM(seq, k));
        if (fn[k] == NULL) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "function address %d is NULL", k);
            }
            return NULL;
        }
    }
    Py_DECREF(seq);
    if (callback != Py_None && !PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "on_oom must be callable or None");
        return NULL;
    }
    pthread_mutex_lock(&lock);
    if (ready && !forget) {
        pthread_mutex_unlock(&lock);
        PyErr_SetString(PyExc_RuntimeError, "the block cache is set up already (one per process)");
        return NULL;
    }
    if (forget) { /* tests only: drop every record without touching the (fake) driver */
        for (size_t k = 0; k < bins_cap; k++) {
            for (Block *b = bins[k].head; b != NULL;) {
                Block *next = b->next;
                free(b);
                b = next;
            }
        }
        for (size_t k = 0; k < specials_cap; k++) {
            free(specials[k].streams);
        }
        free(bins);
        free(specials);
        bins = NULL;
        specials = NULL;
        bins_cap = bins_used = specials_cap = specials_used = specials_live = 0;
        memset(devices, 0, sizeof(devices));
    }
    memcpy(&drv, fn, sizeof(drv));
    Py_XINCREF(callback == Py_None ? NULL : callback);
    Py_XSETREF(on_oom, callback == Py_None ? NULL : callback);
    ready = 1;
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *cache_functions(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:N,s:N,s:N,s:N}",
                         "alloc", PyLong_FromVoidPtr((void *)zerocopy_cache_alloc),
                         "free", PyLong_FromVoidPtr((void *)zerocopy_cache_free),
                         "record_stream", PyLong_FromVoidPtr((void *)zerocopy_cache_record_stream),
                         "empty", PyLong_FromVoidPtr((void *)zerocopy_cache_empty));
}

static int parse_device(PyObject *arg, int allow_all)
{
    long device = PyLong_AsLong(arg);
    if (device == -1 && PyErr_Occurred()) {
        return -2;
    }
    if ((device == -1 && allow_all) || (device >= 0 && device < MAX_DEVICES)) {
        return (int)device;
    }
    PyErr_Format(PyExc_ValueError, "device %ld is outside 0..%d", device, MAX_DEVICES - 1);
    return -2;
}

static PyObject *cache_stats(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 0);
    if (device == -2) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    Device d = devices[device];
    pthread_mutex_unlock(&lock);
    return Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:i}",
        "live_bytes", d.live_bytes, "live_count", d.live_count, "peak_bytes", d.peak_bytes,
        "reserved_bytes", d.live_bytes + d.cached_bytes + d.held_bytes,
        "reserved_peak", d.reserved_peak,
        "cached_bytes", d.cached_bytes, "held_bytes", d.held_bytes,
        "hits", d.hits, "misses", d.misses, "captured", d.captured, "overdrafts", d.overdrafts,
        "released_bytes", d.released_bytes, "stream_waits", d.stream_waits,
        "driver_errors", d.driver_errors, "limit", d.limit, "last_error", d.last_error);
}

static PyObject *cache_release(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 1);
    if (device == -2) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    long long released = ready ? release_idle(device) : 0;
    pthread_mutex_unlock(&lock);
    return PyLong_FromLongLong(released);
}

static PyObject *cache_set_limit(PyObject *Py_UNUSED(module), PyObject *const *args,
                                 Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "set_limit(device, nbytes) takes 2 arguments, got %zd", nargs);
        return NULL;
    }
    int device = parse_device(args[0], 0);
    long long limit = PyLong_AsLongLong(args[1]);
    if (device == -2 || (limit == -1 && PyErr_Occurred())) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    devices[device].limit = limit > 0 ? limit : 0;
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *cache_reset_peaks(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 0);
    if (device == -2) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    Device *d = &devices[device];
    d->peak_bytes = d->live_bytes;
    d->reserved_peak = d->live_bytes + d->cached_bytes + d->held_bytes;
    pthread_mutex_unlock(&lock);
    Py_RETURN_NONE;
}

static PyObject *cache_size_class(PyObject *Py_UNUSED(module), PyObject *arg)
{
    size_t n = PyLong_AsSize_t(arg);
    if (n == (size_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSize_t(size_class(n));
}

static PyMethodDef cache_methods[] = {
    {"cache_setup", (PyCFunction)(void (*)(void))cache_setup, METH_VARARGS | METH_KEYWORDS,
     "cache_setup(addresses, on_oom=None, forget=False): the driver's 9 function addresses "
     "(pool alloc, free async, device get, default pool, is capturing, event create, event "
     "record, stream wait event, event destroy); once per process"},
    {"cache_functions", cache_functions, METH_NOARGS,
     "cache_functions() -> {'alloc', 'free', 'record_stream', 'empty'}: C function addresses"},
    {"cache_stats", cache_stats, METH_O, "cache_stats(device) -> dict of counters"},
    {"cache_release", cache_release, METH_O,
     "cache_release(device) -> bytes of idle blocks handed back (-1: every device)"},
    {"cache_set_limit", (PyCFunction)(void (*)(void))cache_set_limit, METH_FASTCALL,
     "cache_set_limit(device, nbytes): live bytes past it are counted as overdrafts (0: none)"},
    {"cache_reset_peaks", cache_reset_peaks, METH_O, "cache_reset_peaks(device)"},
    {"cache_size_class", cache_size_class, METH_O, "cache_size_class(nbytes) -> bytes a block holds"},
    {NULL, NULL, 0, NULL},
};

/* Called from PyInit__speedups: adds the cache's functions. */
int zc_cache_init(PyObject *module)
{
    if (PyModule_AddFunctions(module, cache_methods) < 0) {
        return -1;
    }
    return PyModule_AddIntConstant(module, "CACHE_MAX_DEVICES", MAX_DEVICES);
}

#else /* no pthreads: the cache is not built; torch's "cached" mode says it is unavailable */

int zc_cache_init(PyObject *module)
{
    (void)module;
    return 0;
}

#endif
