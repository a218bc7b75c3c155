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
 *     as with torch's cudaMallocAsync backend) and never enters the cache; any other block
 *     freed while a capture is under way (its stream capturing, or a torch capture told
 *     from Python) is deferred until no capture runs, as torch's allocator does, since
 *     nothing may be recorded into the capture (deferred_bytes); blocks whose other users
 *     could not be remembered or waited for are held for good (held_bytes);
 *   - driver calls for a block run in its device's primary context (stream 0 is the
 *     current context's legacy stream; torch frees with any device current).
 * The driver's function addresses come from Python (ctypes on libcuda), so the build needs
 * no CUDA headers or libraries, and the tests can pass stand-ins. One state per process,
 * like torch's allocator; a mutex guards it (torch allocates from several threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
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
typedef int (*primary_ctx_fn)(void **, int);
typedef int (*ctx_get_fn)(void **);
typedef int (*ctx_push_fn)(void *);
typedef int (*ctx_pop_fn)(void **);

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
    primary_ctx_fn primary_ctx;
    ctx_get_fn ctx_get;
    ctx_push_fn ctx_push;
    ctx_pop_fn ctx_pop;
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
    int hold;     /* a stream could not be remembered: never reuse it */
    int n, cap;
    void **streams; /* streams besides its own that used it (record_stream) */
} Special;

typedef struct {
    long long live_bytes, live_count, peak_bytes, peak_count, cached_bytes, held_bytes;
    long long deferred_bytes; /* freed during a capture: reusable once no capture runs */
    long long reserved_peak, hits, misses, captured, overdrafts, released_bytes, stream_waits;
    long long driver_errors, ooms, retries;
    /* since the last reset_accumulated (torch's "allocated"/"freed" statistics) */
    long long allocs_total, frees_total, alloc_bytes_total, freed_bytes_total;
    long long limit; /* 0: none */
    int last_error;
    void *pool;
    void *ctx; /* the device's primary context, retained for the process */
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
static long long captures; /* torch graph captures under way (told from Python) */

/* Blocks freed while a capture was under way. Nothing may be recorded into a capture, so
 * they wait here and take the normal path (their other users' waits, then the cache) once
 * no capture runs, as torch's own allocator defers such frees to the capture's end. */
typedef struct {
    uint64_t ptr;
    size_t size;
    void *stream;
    int device;
} Deferred;
static Deferred *deferred;
static size_t deferred_n, deferred_cap;
/* zerocopy._raise's C++ throw: how a failed allocation reaches torch (never a NULL, which
 * torch would take for memory at address 0). NULL in tests: the request returns NULL. */
static void (*throw_oom)(const char *);

/* Size classes: 512-byte steps up to 1 MiB (CuPy's and torch's rounding), then eight
 * classes per power of two (at most 12.5% over the request), so a workload whose sizes
 * drift reuses blocks instead of caching one of every size it ever asked for. */
static size_t size_class(size_t n)
{
    if (n > ((size_t)-1 >> 2)) {
        return 0; /* no device has that much: the caller fails the request */
    }
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
            rc = drv.primary_ctx(&d->ctx, handle);
        }
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

/* Stream 0 is the legacy stream of the *current* context, and events belong to one: the
 * driver calls for a block run in its device's context. torch frees a tensor with whatever
 * device is current, and a release walks every device's blocks. 1 if a context was
 * pushed (leave() pops it). */
static int enter(Device *d)
{
    void *current = NULL;
    if (drv.ctx_get(&current) == 0 && current == d->ctx) {
        return 0;
    }
    return drv.ctx_push(d->ctx) == 0;
}

static void leave(int pushed)
{
    if (pushed) {
        void *popped = NULL;
        drv.ctx_pop(&popped);
    }
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
    d->allocs_total++;
    d->alloc_bytes_total += (long long)size;
    if (d->live_bytes > d->peak_bytes) {
        d->peak_bytes = d->live_bytes;
    }
    if (d->live_count > d->peak_count) {
        d->peak_count = d->live_count;
    }
    /* Only a miss grows what the cache holds of the pool: a hit moves cached to live. */
    long long reserved = d->live_bytes + d->cached_bytes + d->held_bytes + d->deferred_bytes;
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
static void settle_deferred(void);

static long long release_idle(int device)
{
    long long released = 0;
    if (captures > 0) { /* a free now could land in someone's capture: later */
        return 0;
    }
    settle_deferred(); /* blocks a capture kept back become idle ones first */
    for (size_t k = 0; k < bins_cap; k++) {
        Bin *bin = &bins[k];
        if (!bin->used || bin->head == NULL || (device >= 0 && bin->device != device)) {
            continue;
        }
        Device *d = &devices[bin->device];
        int pushed = enter(d);
        if (capturing(d, bin->stream)) { /* a capture outside torch: its free would join it */
            leave(pushed);
            continue;
        }
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
        leave(pushed);
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
        int truth = PyObject_IsTrue(result);
        if (truth < 0) {
            PyErr_WriteUnraisable(on_oom);
        }
        retry = truth == 1;
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

/* A cached block of (device, stream, size), moved to live; 0 if none. */
static uint64_t take_cached(Device *d, int device, void *stream, size_t size)
{
    Bin *bin = bin_find(device, stream, size, 0);
    if (bin == NULL || bin->head == NULL) {
        return 0;
    }
    Block *b = bin->head;
    bin->head = b->next;
    uint64_t ptr = b->ptr;
    b->next = spare_blocks;
    spare_blocks = b;
    d->cached_bytes -= (long long)size;
    d->hits++;
    return ptr;
}

/* A miss: the pool; when it is full, this device's idle blocks go back first, then the
 * other frameworks are asked (from Python, without the lock: the garbage collector may
 * free tensors into this cache meanwhile, so the cache is looked at again). */
static uint64_t from_pool(Device *d, int device, void *stream, size_t size)
{
    uint64_t ptr = pool_alloc(d, size, stream);
    if (ptr == 0 && d->last_error == CUDA_ERROR_OUT_OF_MEMORY) {
        d->retries++;
        release_idle(device);
        ptr = pool_alloc(d, size, stream);
    }
    if (ptr == 0 && d->last_error == CUDA_ERROR_OUT_OF_MEMORY && on_oom != NULL) {
        pthread_mutex_unlock(&lock);
        int retry = ask_others(size, device);
        pthread_mutex_lock(&lock);
        if (retry) {
            d->retries++;
            ptr = take_cached(d, device, stream, size);
            if (ptr == 0) {
                release_idle(device);
                ptr = pool_alloc(d, size, stream);
            }
        }
    }
    return ptr;
}

/* A request that cannot be served: torch must not get a NULL (it would take it for memory
 * at address 0), so the thrower (zerocopy._raise) throws; it unwinds through this frame
 * into torch, which holds no lock of ours by then. Without a thrower (tests): NULL. */
static void *fail_request(void (*fail)(const char *), const char *text)
{
    if (fail != NULL) {
        fail(text);
    }
    return NULL;
}

void *zerocopy_cache_alloc(size_t nbytes, int device, void *stream)
{
    if (nbytes == 0) {
        return NULL;
    }
    size_t size = size_class(nbytes);
    char text[400];
    pthread_mutex_lock(&lock);
    Device *d = device_of(device);
    if (d == NULL) {
        int error = device >= 0 && device < MAX_DEVICES ? devices[device].last_error : 101;
        void (*fail)(const char *) = throw_oom;
        pthread_mutex_unlock(&lock);
        snprintf(text, sizeof text,
                 "CUDA error: zerocopy's cached mode could not reach the memory pool of device "
                 "%d (CUDA error %d). Hint: check the device index and the driver", device, error);
        return fail_request(fail, text);
    }
    int pushed = enter(d);
    uint64_t ptr = 0;
    if (size == 0) { /* larger than any device */
        d->last_error = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (capturing(d, stream)) {
        ptr = graph_alloc(d, size, stream);
    } else {
        ptr = take_cached(d, device, stream, size);
        if (ptr == 0) {
            d->misses++;
            ptr = from_pool(d, device, stream, size);
        }
    }
    leave(pushed);
    if (ptr != 0) {
        if (d->limit > 0 && d->live_bytes + (long long)size > d->limit) {
            d->overdrafts++; /* torch cannot fail an allocation cleanly: counted, not refused */
        }
        count_live(d, size);
        pthread_mutex_unlock(&lock);
        return (void *)(uintptr_t)ptr;
    }
    d->driver_errors++;
    d->ooms += d->last_error == CUDA_ERROR_OUT_OF_MEMORY;
    snprintf(text, sizeof text,
             "CUDA out of memory. Tried to allocate %zu bytes on device %d in zerocopy's cached "
             "mode (CUDA error %d; this cache: %lld bytes live, %lld idle, %lld held or "
             "deferred). Hint: free tensors, call shared.trim() or torch.cuda.empty_cache(), "
             "or lower the batch size",
             nbytes, device, d->last_error, d->live_bytes, d->cached_bytes,
             d->held_bytes + d->deferred_bytes);
    void (*fail)(const char *) = throw_oom;
    pthread_mutex_unlock(&lock);
    return fail_request(fail, text);
}

/* Streams that used the block go first: the allocation stream waits for each. 0 done;
 * -1 when one of them is capturing (an event recorded there would join its capture: the
 * caller defers the block); -2 when an event could not be made (the caller holds it). */
static int wait_for_users(Device *d, Special *s, void *stream)
{
    for (int k = 0; k < s->n; k++) {
        if (s->streams[k] != stream && capturing(d, s->streams[k])) {
            return -1;
        }
    }
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
            return -2;
        }
        d->stream_waits++;
    }
    return 0;
}

static void defer_block(Device *d, int device, uint64_t ptr, size_t size, void *stream)
{
    if (deferred_n == deferred_cap) {
        size_t cap = deferred_cap ? deferred_cap * 2 : 16;
        Deferred *grown = realloc(deferred, cap * sizeof(Deferred));
        if (grown == NULL) { /* no room to remember it: kept out of reuse for good */
            d->held_bytes += (long long)size;
            return;
        }
        deferred = grown;
        deferred_cap = cap;
    }
    deferred[deferred_n++] = (Deferred){ptr, size, stream, device};
    d->deferred_bytes += (long long)size;
}

/* What becomes of a freed block, in the device's context:
 *   - made inside a capture (the graph's memory): freed on its stream, a free the capture
 *     records if it is still capturing; otherwise after its other users, never cached;
 *   - marked to hold (a user stream could not be remembered, or waited for): held for good;
 *   - freed while a capture is under way (its stream or one of its users' capturing, or a
 *     torch graph capture): deferred, with no event or free recorded into the capture;
 *   - else: after its other users, cached for its stream. */
static void release_block(Device *d, int device, uint64_t ptr, size_t size, void *stream)
{
    Special *s = specials_live > 0 ? special_find(ptr) : NULL;
    int graph = s != NULL && s->graph;
    int in_capture = capturing(d, stream);
    int hold = 0, defer = 0;
    if (graph && in_capture) {
        hold = drv.free_async(ptr, stream) != 0;
    } else if (s != NULL && s->hold) {
        hold = 1;
    } else if (in_capture || captures > 0) {
        defer = 1;
    } else {
        int waited = s != NULL ? wait_for_users(d, s, stream) : 0;
        if (waited == -1) {
            defer = 1;
        } else if (waited == -2) {
            hold = 1;
        } else if (graph) {
            hold = drv.free_async(ptr, stream) != 0;
        } else {
            Bin *bin = bin_find(device, stream, size, 1);
            Block *b = bin ? new_block() : NULL;
            if (b != NULL) {
                b->ptr = ptr;
                b->size = size;
                b->stream = stream;
                b->next = bin->head;
                bin->head = b;
                d->cached_bytes += (long long)size;
            } else {
                hold = 1; /* no host memory for the record: kept out of reuse */
            }
        }
    }
    if (defer) {
        defer_block(d, device, ptr, size, stream); /* keeps its record (its other users) */
        return;
    }
    if (hold) {
        d->held_bytes += (long long)size;
    }
    if (s != NULL) {
        special_drop(s);
    }
}

/* Deferred blocks take the normal path once no torch capture runs; one whose stream (or a
 * user's) still captures is deferred again. */
static void settle_deferred(void)
{
    if (deferred_n == 0 || captures > 0) {
        return;
    }
    Deferred *pending = deferred;
    size_t n = deferred_n;
    deferred = NULL;
    deferred_n = deferred_cap = 0;
    for (size_t k = 0; k < n; k++) {
        Deferred *b = &pending[k];
        Device *d = &devices[b->device];
        d->deferred_bytes -= (long long)b->size;
        int pushed = enter(d);
        release_block(d, b->device, b->ptr, b->size, b->stream);
        leave(pushed);
    }
    free(pending);
}

void zerocopy_cache_free(void *p, size_t nbytes, int device, void *stream)
{
    uint64_t ptr = (uint64_t)(uintptr_t)p;
    size_t size = size_class(nbytes);
    if (ptr == 0 || size == 0) {
        return;
    }
    pthread_mutex_lock(&lock);
    Device *d = device_of(device);
    if (d == NULL) {
        pthread_mutex_unlock(&lock);
        return;
    }
    d->live_bytes -= (long long)size;
    d->live_count--;
    d->frees_total++;
    d->freed_bytes_total += (long long)size;
    int pushed = enter(d);
    release_block(d, device, ptr, size, stream);
    leave(pushed);
    settle_deferred();
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
            s->hold = 1; /* could not remember the stream: never reuse the block */
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

/* The lock is taken with the GIL released and given back before the GIL is taken again:
 * a thread dropping a tensor holds the GIL while it waits for this lock in free(), so
 * holding the lock while waiting for the GIL would deadlock. No Python API under it. */
#define LOCKED(statement)                     \
    do {                                      \
        Py_BEGIN_ALLOW_THREADS                \
        pthread_mutex_lock(&lock);            \
        statement;                            \
        pthread_mutex_unlock(&lock);          \
        Py_END_ALLOW_THREADS                  \
    } while (0)

static void forget_everything(void)
{
    for (size_t k = 0; k < bins_cap; k++) {
        for (Block *b = bins[k].head; b != NULL;) {
            Block *next = b->next;
            free(b);
            b = next;
        }
    }
    for (size_t k = 0; k < specials_cap; k++) {
        if (specials[k].ptr > 1) {
            free(specials[k].streams);
        }
    }
    free(bins);
    free(specials);
    bins = NULL;
    specials = NULL;
    bins_cap = bins_used = specials_cap = specials_used = specials_live = 0;
    captures = 0;
    free(deferred);
    deferred = NULL;
    deferred_n = deferred_cap = 0;
    memset(devices, 0, sizeof(devices));
}

static PyObject *cache_setup(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"addresses", "on_oom", "thrower", "forget", NULL};
    PyObject *addresses, *callback = Py_None, *thrower = Py_None;
    int forget = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOp", kwlist, &addresses, &callback,
                                     &thrower, &forget)) {
        return NULL;
    }
    void *throw_address = thrower == Py_None ? NULL : PyLong_AsVoidPtr(thrower);
    if (throw_address == NULL && PyErr_Occurred()) {
        return NULL;
    }
    void *fn[ZC_DRIVER_FUNCTIONS];
    PyObject *seq = PySequence_Fast(addresses, "addresses must be a sequence of ints");
    if (seq == NULL) {
        return NULL;
    }
    if (PySequence_Fast_GET_SIZE(seq) != ZC_DRIVER_FUNCTIONS) {
        PyErr_Format(PyExc_ValueError, "addresses must hold %d function addresses, got %zd",
                     ZC_DRIVER_FUNCTIONS, PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
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
    PyObject *fresh = callback == Py_None ? NULL : callback;
    PyObject *old = NULL;
    int refused = 0;
    Py_XINCREF(fresh);
    LOCKED(
        if (ready && !forget) {
            refused = 1;
        } else {
            if (forget) { /* tests only: drop every record without touching the driver */
                forget_everything();
            }
            memcpy(&drv, fn, sizeof(drv));
            throw_oom = (void (*)(const char *))throw_address;
            old = on_oom;
            on_oom = fresh;
            ready = 1;
        });
    if (refused) {
        Py_XDECREF(fresh);
        PyErr_SetString(PyExc_RuntimeError, "the block cache is set up already (one per process)");
        return NULL;
    }
    Py_XDECREF(old);
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
    Device d;
    long long in_capture;
    LOCKED(d = devices[device]; in_capture = captures);
    return Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,s:L,"
        "s:L,s:L,s:L,s:L,s:i}",
        "live_bytes", d.live_bytes, "live_count", d.live_count, "peak_bytes", d.peak_bytes,
        "peak_count", d.peak_count,
        "reserved_bytes", d.live_bytes + d.cached_bytes + d.held_bytes + d.deferred_bytes,
        "reserved_peak", d.reserved_peak,
        "cached_bytes", d.cached_bytes, "held_bytes", d.held_bytes,
        "deferred_bytes", d.deferred_bytes,
        "hits", d.hits, "misses", d.misses, "captured", d.captured, "overdrafts", d.overdrafts,
        "released_bytes", d.released_bytes, "stream_waits", d.stream_waits,
        "driver_errors", d.driver_errors, "ooms", d.ooms, "retries", d.retries,
        "allocs_total", d.allocs_total, "frees_total", d.frees_total,
        "alloc_bytes_total", d.alloc_bytes_total, "freed_bytes_total", d.freed_bytes_total,
        "limit", d.limit, "captures", in_capture, "last_error", d.last_error);
}

static PyObject *cache_release(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 1);
    if (device == -2) {
        return NULL;
    }
    long long released = 0;
    LOCKED(released = ready ? release_idle(device) : 0);
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
    LOCKED(devices[device].limit = limit > 0 ? limit : 0);
    Py_RETURN_NONE;
}

static void reset_peaks(Device *d)
{
    d->peak_bytes = d->live_bytes;
    d->peak_count = d->live_count;
    d->reserved_peak = d->live_bytes + d->cached_bytes + d->held_bytes + d->deferred_bytes;
}

static void reset_accumulated(Device *d)
{
    d->allocs_total = d->frees_total = d->alloc_bytes_total = d->freed_bytes_total = 0;
    d->ooms = d->retries = 0;
}

static PyObject *cache_reset_peaks(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 0);
    if (device == -2) {
        return NULL;
    }
    LOCKED(reset_peaks(&devices[device]));
    Py_RETURN_NONE;
}

static PyObject *cache_reset_accumulated(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int device = parse_device(arg, 0);
    if (device == -2) {
        return NULL;
    }
    LOCKED(reset_accumulated(&devices[device]));
    Py_RETURN_NONE;
}

/* cache_capture(+1 / -1): a torch graph capture starts or ends. While any is under way a
 * freed block is deferred, whichever stream it was freed on (a capture may run on a stream
 * the block's own stream knows nothing of); the last end settles the deferred blocks. */
static PyObject *cache_capture(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long delta = PyLong_AsLong(arg);
    if (delta == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (delta != 1 && delta != -1) {
        PyErr_Format(PyExc_ValueError, "cache_capture takes +1 or -1, got %ld", delta);
        return NULL;
    }
    long long now = 0;
    LOCKED(captures += delta; if (captures < 0) { captures = 0; } now = captures;
           settle_deferred());
    return PyLong_FromLongLong(now);
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
     "cache_setup(addresses, on_oom=None, thrower=None, forget=False): the driver's function "
     "addresses in the order of zerocopy._cuda.driver_path.CACHE_FUNCTIONS; thrower: the "
     "address of zerocopy._raise.THROW (a failed request then throws instead of returning "
     "NULL); once per process (forget: tests only, drops every record)"},
    {"cache_functions", cache_functions, METH_NOARGS,
     "cache_functions() -> {'alloc', 'free', 'record_stream', 'empty'}: C function addresses"},
    {"cache_stats", cache_stats, METH_O, "cache_stats(device) -> dict of counters"},
    {"cache_release", cache_release, METH_O,
     "cache_release(device) -> bytes of idle blocks handed back (-1: every device)"},
    {"cache_set_limit", (PyCFunction)(void (*)(void))cache_set_limit, METH_FASTCALL,
     "cache_set_limit(device, nbytes): live bytes past it are counted as overdrafts (0: none)"},
    {"cache_reset_peaks", cache_reset_peaks, METH_O, "cache_reset_peaks(device)"},
    {"cache_reset_accumulated", cache_reset_accumulated, METH_O,
     "cache_reset_accumulated(device): the allocated/freed totals, OOMs and retries to 0"},
    {"cache_capture", cache_capture, METH_O,
     "cache_capture(+1 or -1) -> captures under way: a torch graph capture begins or ends"},
    {"cache_size_class", cache_size_class, METH_O,
     "cache_size_class(nbytes) -> bytes a block holds (0: larger than any device)"},
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
