/* zerocopy._speedups: DLPack capsules built and read in C.
 *
 * Why C: zerocopy/exchange/dlpack.py builds the same structures with ctypes, which costs
 * 10-30 us per capsule (ctypes structure construction, callback trampolines, a global
 * registry of live capsules). Here a capsule is one malloc and a PyCapsule_New.
 *
 * The semantics are those of the pure-Python path, which stays the reference:
 *   - one block holds the managed tensor, its shape and strides and a strong reference to
 *     the owner of the memory; the deleter releases the owner and frees the block;
 *   - a capsule still named "dltensor" / "dltensor_versioned" when it dies was never
 *     consumed and calls the deleter itself; a consumer renames it "used_..." and owns the
 *     deleter from then on;
 *   - "dltensor_versioned" carries DLPack 1.1 and the read-only flag.
 * Plain CPython C API, no NumPy headers: the build needs nothing but a C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ dlpack.h (v1.1) */

typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
typedef struct { uint32_t major; uint32_t minor; } DLPackVersion;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

#define READ_ONLY_FLAG 1ULL /* DLPACK_FLAG_BITMASK_READ_ONLY */
#define VERSION_MAJOR 1
#define VERSION_MINOR 1

static const char LEGACY[] = "dltensor";
static const char VERSIONED[] = "dltensor_versioned";
static const char USED_LEGACY[] = "used_dltensor";
static const char USED_VERSIONED[] = "used_dltensor_versioned";
static const char IMPORTED[] = "zerocopy.imported_dltensor";

/* Small ints for the host device (1, 0), made at import. */
static PyObject *kCPU, *kZERO;

/* ------------------------------------------------------------------ owner release */

/* Consumers may call the deleter from any thread, with or without the GIL, and some do
 * so at interpreter exit: take the GIL when it is not held, and leave the owner to the
 * dying interpreter when it cannot be taken any more. */
static int interpreter_gone(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return !Py_IsInitialized() || Py_IsFinalizing();
#else
    return !Py_IsInitialized() || _Py_IsFinalizing();
#endif
}

static void release(PyObject *owner)
{
    if (owner == NULL) {
        return;
    }
    if (PyGILState_Check()) {
        Py_DECREF(owner);
        return;
    }
    if (interpreter_gone()) {
        return;
    }
    PyGILState_STATE state = PyGILState_Ensure();
    Py_DECREF(owner);
    PyGILState_Release(state);
}

/* One allocation per capsule: the managed struct first (the deleter's argument is the
 * block), then the owner, then shape and strides. */
typedef struct {
    DLManagedTensor managed;
    PyObject *owner;
    int64_t dims[];
} LegacyBlock;

typedef struct {
    DLManagedTensorVersioned managed;
    PyObject *owner;
    int64_t dims[];
} VersionedBlock;

static void delete_legacy(DLManagedTensor *self)
{
    PyObject *owner = ((LegacyBlock *)self)->owner;
    free(self);
    release(owner);
}

static void delete_versioned(DLManagedTensorVersioned *self)
{
    PyObject *owner = ((VersionedBlock *)self)->owner;
    free(self);
    release(owner);
}

/* ------------------------------------------------------------------ capsule destructors */

/* Runs when a capsule dies. Renamed ("used_..."): the consumer owns the deleter. */
static void destroy_legacy(PyObject *capsule)
{
    if (PyCapsule_IsValid(capsule, LEGACY)) {
        DLManagedTensor *managed = PyCapsule_GetPointer(capsule, LEGACY);
        if (managed->deleter != NULL) {
            managed->deleter(managed);
        }
    }
}

static void destroy_versioned(PyObject *capsule)
{
    if (PyCapsule_IsValid(capsule, VERSIONED)) {
        DLManagedTensorVersioned *managed = PyCapsule_GetPointer(capsule, VERSIONED);
        if (managed->deleter != NULL) {
            managed->deleter(managed);
        }
    }
}

/* ------------------------------------------------------------------ capsule(...) */

static int read_dims(PyObject *seq, Py_ssize_t ndim, int64_t *out, const char *what, int extents)
{
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) {
        return -1;
    }
    if (PySequence_Fast_GET_SIZE(fast) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s has %zd entries, the shape %zd", what,
                     PySequence_Fast_GET_SIZE(fast), ndim);
        Py_DECREF(fast);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < ndim; i++) {
        long long value = PyLong_AsLongLong(items[i]);
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        if (extents && value < 0) { /* a shape: no negative extent (strides may be) */
            PyErr_Format(PyExc_ValueError, "%s has a negative extent (%lld)", what, value);
            Py_DECREF(fast);
            return -1;
        }
        out[i] = (int64_t)value;
    }
    Py_DECREF(fast);
    return 0;
}

static void fill_tensor(DLTensor *t, void *data, int32_t ndim, int64_t *dims, const long long *args)
{
    t->data = data;
    t->device.device_type = (int32_t)args[2];
    t->device.device_id = (int32_t)args[3];
    t->ndim = ndim;
    t->dtype.code = (uint8_t)args[0];
    t->dtype.bits = (uint8_t)args[1];
    t->dtype.lanes = 1;
    t->shape = dims;
    t->strides = dims + (ndim > 0 ? ndim : 1);
    t->byte_offset = 0;
}

/* A managed tensor over args[1..7] (data, shape, strides, code, bits, device type and id)
 * holding a reference to args[0] (the owner); NULL with an exception set. */
static void *new_block(PyObject *const *args, int readonly, int versioned)
{
    void *data = PyLong_AsVoidPtr(args[1]);
    if (data == NULL && PyErr_Occurred()) {
        return NULL;
    }
    long long numbers[4]; /* code, bits, device_type, device_id */
    for (int i = 0; i < 4; i++) {
        numbers[i] = PyLong_AsLongLong(args[4 + i]);
        if (numbers[i] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_ssize_t ndim = PyObject_Length(args[2]);
    if (ndim < 0) {
        return NULL;
    }
    if (ndim > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many dimensions for DLPack");
        return NULL;
    }
    Py_ssize_t room = ndim > 0 ? ndim : 1; /* 0-d: shape and strides still point somewhere */
    size_t head = versioned ? sizeof(VersionedBlock) : sizeof(LegacyBlock);
    void *block = malloc(head + 2 * (size_t)room * sizeof(int64_t));
    if (block == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    int64_t *dims = versioned ? ((VersionedBlock *)block)->dims : ((LegacyBlock *)block)->dims;
    if (read_dims(args[2], ndim, dims, "shape", 1) < 0) {
        free(block);
        return NULL;
    }
    if (args[3] == Py_None) { /* compact row-major: the strides follow from the shape */
        int64_t step = 1;
        for (Py_ssize_t i = ndim - 1; i >= 0; i--) {
            dims[room + i] = step;
            step *= dims[i] > 0 ? dims[i] : 1;
        }
    }
    else if (read_dims(args[3], ndim, dims + room, "strides", 0) < 0) {
        free(block);
        return NULL;
    }
    if (versioned) {
        VersionedBlock *b = block;
        b->managed.version.major = VERSION_MAJOR;
        b->managed.version.minor = VERSION_MINOR;
        b->managed.manager_ctx = NULL;
        b->managed.deleter = delete_versioned;
        b->managed.flags = readonly ? READ_ONLY_FLAG : 0;
        fill_tensor(&b->managed.dl_tensor, data, (int32_t)ndim, dims, numbers);
        b->owner = Py_NewRef(args[0]);
    }
    else {
        LegacyBlock *b = block;
        b->managed.manager_ctx = NULL;
        b->managed.deleter = delete_legacy;
        fill_tensor(&b->managed.dl_tensor, data, (int32_t)ndim, dims, numbers);
        b->owner = Py_NewRef(args[0]);
    }
    return block;
}

PyDoc_STRVAR(capsule_doc,
"capsule(owner, data, shape, strides, code, bits, device_type, device_id, readonly, versioned)\n"
"--\n\n"
"A DLPack capsule over `data` (an address; strides in elements, None for C order) that\n"
"keeps `owner` "
"alive until the consumer calls the deleter, or the unconsumed capsule dies.");

static PyObject *capsule(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "capsule() takes 10 arguments (%zd given)", nargs);
        return NULL;
    }
    int readonly = PyObject_IsTrue(args[8]);
    int versioned = PyObject_IsTrue(args[9]);
    if (readonly < 0 || versioned < 0) {
        return NULL;
    }
    void *block = new_block(args, readonly, versioned);
    if (block == NULL) {
        return NULL;
    }
    PyObject *result = PyCapsule_New(block, versioned ? VERSIONED : LEGACY,
                                     versioned ? destroy_versioned : destroy_legacy);
    if (result == NULL) { /* nobody saw the block: undo it by hand */
        if (versioned) {
            delete_versioned(block);
        }
        else {
            delete_legacy(block);
        }
    }
    return result;
}

/* ------------------------------------------------------------------ DLPack C exchange API */

/* dlpack.h (1.3) DLPackExchangeAPI: a framework's table of C functions, published as the
 * capsule "dlpack_exchange_api" in type(tensor).__dlpack_c_exchange_api__ (PyTorch >= 2.10).
 * Only the header and the importer are used here. */
typedef struct ExchangeHeader {
    DLPackVersion version;
    struct ExchangeHeader *prev_api;
} ExchangeHeader;
typedef struct {
    ExchangeHeader header;
    void *managed_tensor_allocator;
    void *managed_tensor_from_py_object_no_sync;
    int (*managed_tensor_to_py_object_no_sync)(DLManagedTensorVersioned *tensor, void **out);
    void *dltensor_from_py_object_no_sync;
    void *current_work_stream;
} ExchangeAPI;

PyDoc_STRVAR(to_object_doc,
"to_object(api, owner, data, shape, strides, code, bits, device_type, device_id, readonly)\n"
"--\n\n"
"The framework's own tensor over `data`, made by its DLPack C exchange API `api` (the\n"
"capsule type(t).__dlpack_c_exchange_api__): no capsule, no Python call in between.\n"
"No stream is synchronised (host memory, or data the caller already ordered).");

static PyObject *to_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "to_object() takes 10 arguments (%zd given)", nargs);
        return NULL;
    }
    ExchangeAPI *api = PyCapsule_GetPointer(args[0], "dlpack_exchange_api");
    if (api == NULL) {
        return NULL;
    }
    if (api->header.version.major != VERSION_MAJOR || api->managed_tensor_to_py_object_no_sync == NULL) {
        PyErr_Format(PyExc_BufferError, "DLPack exchange API %u.%u: only major version %d is understood",
                     api->header.version.major, api->header.version.minor, VERSION_MAJOR);
        return NULL;
    }
    int readonly = PyObject_IsTrue(args[9]);
    if (readonly < 0) {
        return NULL;
    }
    void *block = new_block(args + 1, readonly, 1);
    if (block == NULL) {
        return NULL;
    }
    void *out = NULL;
    /* A failure leaves a Python exception set. Whether the importer then called the deleter
     * is not said by the API, and torch 2.13 does not: freeing the block here could free it
     * twice with an importer that does, so a failure leaks one block and one reference to
     * the owner. The inputs are checked before (shape, dtype code) to keep failures out. */
    if (api->managed_tensor_to_py_object_no_sync(block, &out) != 0) {
        return NULL;
    }
    return out;
}

PyDoc_STRVAR(buffer_to_object_doc,
"buffer_to_object(api, obj, code, bits)\n--\n\n"
"to_object() over what `obj` exports through the buffer protocol (a NumPy array: data,\n"
"shape, strides and the read-only flag in one call), keeping `obj` alive.");

static PyObject *buffer_to_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "buffer_to_object() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_STRIDES) < 0) {
        return NULL;
    }
    long bits = PyLong_AsLong(args[3]);
    if (bits == -1 && PyErr_Occurred()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    PyObject *shape = PyTuple_New(view.ndim);
    PyObject *strides = PyTuple_New(view.ndim);
    PyObject *result = NULL;
    if (shape == NULL || strides == NULL) {
        goto done;
    }
    Py_ssize_t itemsize = bits / 8;
    if (itemsize <= 0 || itemsize != view.itemsize) {
        PyErr_Format(PyExc_BufferError, "items of %zd bytes, not %ld bits", view.itemsize, bits);
        goto done;
    }
    for (int i = 0; i < view.ndim; i++) {
        if (view.strides[i] % itemsize != 0) {
            PyErr_SetString(PyExc_BufferError, "the strides are not whole elements");
            goto done;
        }
        PyObject *n = PyLong_FromSsize_t(view.shape[i]);
        PyObject *step = PyLong_FromSsize_t(view.strides[i] / itemsize);
        if (n == NULL || step == NULL) {
            Py_XDECREF(n);
            Py_XDECREF(step);
            goto done;
        }
        PyTuple_SET_ITEM(shape, i, n);
        PyTuple_SET_ITEM(strides, i, step);
    }
    PyObject *data = PyLong_FromVoidPtr(view.buf);
    if (data == NULL) {
        goto done;
    }
    PyObject *call[10] = {args[0], args[1], data, shape, strides, args[2], args[3],
                          kCPU, kZERO, view.readonly ? Py_True : Py_False};
    result = to_object(module, call, 10);
    Py_DECREF(data);
done:
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------ reading capsules */

/* The tensor of an unconsumed capsule; *versioned and *flags say what kind it was. */
static DLTensor *tensor_of(PyObject *obj, int *versioned, uint64_t *flags, PyObject **version)
{
    if (!PyCapsule_CheckExact(obj)) {
        PyErr_Format(PyExc_TypeError, "expected a DLPack capsule, got %.100s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (PyCapsule_IsValid(obj, VERSIONED)) {
        DLManagedTensorVersioned *m = PyCapsule_GetPointer(obj, VERSIONED);
        if (m->version.major != VERSION_MAJOR) {
            PyErr_Format(PyExc_BufferError, "DLPack %u.%u capsule: only major version %d is understood",
                         m->version.major, m->version.minor, VERSION_MAJOR);
            return NULL;
        }
        *versioned = 1;
        *flags = m->flags;
        *version = Py_BuildValue("(II)", m->version.major, m->version.minor);
        return *version == NULL ? NULL : &m->dl_tensor;
    }
    if (PyCapsule_IsValid(obj, LEGACY)) {
        *versioned = 0;
        *flags = 0;
        *version = Py_NewRef(Py_None);
        return &((DLManagedTensor *)PyCapsule_GetPointer(obj, LEGACY))->dl_tensor;
    }
    const char *name = PyCapsule_GetName(obj);
    PyErr_Clear();
    PyErr_Format(PyExc_BufferError, "not an unconsumed DLPack capsule (its name is %s)",
                 name ? name : "NULL");
    return NULL;
}

static PyObject *dims_tuple(const int64_t *values, int32_t ndim)
{
    PyObject *out = PyTuple_New(ndim);
    if (out == NULL) {
        return NULL;
    }
    for (int32_t i = 0; i < ndim; i++) {
        PyObject *item = PyLong_FromLongLong(values[i]);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *info_dict(const DLTensor *t, int versioned, uint64_t flags, PyObject *version)
{
    PyObject *shape = dims_tuple(t->shape, t->ndim);
    PyObject *strides = t->strides ? dims_tuple(t->strides, t->ndim) : Py_NewRef(Py_None);
    PyObject *out = NULL;
    if (shape != NULL && strides != NULL) {
        out = Py_BuildValue(
            "{s:s,s:O,s:O,s:N,s:(ii),s:O,s:O,s:(iii)}",
            "name", versioned ? VERSIONED : LEGACY,
            "version", version,
            "readonly", (flags & READ_ONLY_FLAG) ? Py_True : Py_False,
            "data", PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)t->data + t->byte_offset),
            "device", (int)t->device.device_type, (int)t->device.device_id,
            "shape", shape,
            "strides", strides,
            "dtype", (int)t->dtype.code, (int)t->dtype.bits, (int)t->dtype.lanes);
    }
    Py_XDECREF(shape);
    Py_XDECREF(strides);
    return out;
}

PyDoc_STRVAR(capsule_info_doc,
"capsule_info(capsule)\n--\n\n"
"Read a DLPack capsule without consuming it: name, version, readonly, data, device,\n"
"shape, strides (elements, or None), dtype (code, bits, lanes).");

/* The info dict of a capsule (NULL with an exception set), and whether it is versioned. */
static PyObject *described(PyObject *obj, int *versioned)
{
    uint64_t flags;
    PyObject *version = NULL;
    DLTensor *t = tensor_of(obj, versioned, &flags, &version);
    if (t == NULL) {
        return NULL;
    }
    PyObject *out = info_dict(t, *versioned, flags, version);
    Py_DECREF(version);
    return out;
}

static PyObject *capsule_info(PyObject *Py_UNUSED(module), PyObject *obj)
{
    int versioned;
    return described(obj, &versioned);
}

/* ------------------------------------------------------------------ consuming capsules */

static void destroy_imported(PyObject *keeper)
{
    void *managed = PyCapsule_GetPointer(keeper, IMPORTED);
    if (managed == NULL) {
        PyErr_Clear();
        return;
    }
    if (PyCapsule_GetContext(keeper) != NULL) {
        DLManagedTensorVersioned *m = managed;
        if (m->deleter != NULL) {
            m->deleter(m);
        }
    }
    else {
        DLManagedTensor *m = managed;
        if (m->deleter != NULL) {
            m->deleter(m);
        }
    }
}

PyDoc_STRVAR(consume_doc,
"consume(capsule)\n--\n\n"
"Take a DLPack capsule over as its consumer: rename it used_..., and return\n"
"(keeper, info). The keeper calls the producer's deleter when it dies.");

static PyObject *consume(PyObject *Py_UNUSED(module), PyObject *obj)
{
    int versioned;
    PyObject *info = described(obj, &versioned);
    if (info == NULL) {
        return NULL;
    }
    void *managed = PyCapsule_GetPointer(obj, versioned ? VERSIONED : LEGACY);
    PyObject *keeper = PyCapsule_New(managed, IMPORTED, NULL);
    if (keeper == NULL) {
        Py_DECREF(info);
        return NULL;
    }
    /* Context marks the struct kind (NULL: legacy); set before the destructor can run. */
    if (PyCapsule_SetContext(keeper, versioned ? (void *)VERSIONED : NULL) < 0 ||
        PyCapsule_SetName(obj, versioned ? USED_VERSIONED : USED_LEGACY) < 0 ||
        PyCapsule_SetDestructor(keeper, destroy_imported) < 0) {
        Py_DECREF(keeper);
        Py_DECREF(info);
        return NULL;
    }
    return Py_BuildValue("(NN)", keeper, info);
}

PyDoc_STRVAR(data_pointer_doc,
"data_pointer(obj)\n--\n\n"
"Where the memory `obj` exports through the buffer protocol starts (a NumPy array's data\n"
"pointer, read without building __array_interface__'s dict: ~0.05 us against ~0.9 us).");

static PyObject *data_pointer(PyObject *Py_UNUSED(module), PyObject *obj)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_STRIDES) < 0) {
        return NULL;
    }
    PyObject *address = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return address;
}

/* ------------------------------------------------------------------ module */

int zc_pool_init(PyObject *module); /* _pool.c: the Ledger and the pool's hot path */
int zc_lane_init(PyObject *module); /* _lane.c: the exchange's fast lane */
int zc_cache_init(PyObject *module); /* _cache.c: the block cache torch's allocator calls */


static PyMethodDef methods[] = {
    {"capsule", (PyCFunction)(void (*)(void))capsule, METH_FASTCALL, capsule_doc},
    {"capsule_info", capsule_info, METH_O, capsule_info_doc},
    {"consume", consume, METH_O, consume_doc},
    {"to_object", (PyCFunction)(void (*)(void))to_object, METH_FASTCALL, to_object_doc},
    {"buffer_to_object", (PyCFunction)(void (*)(void))buffer_to_object, METH_FASTCALL,
     buffer_to_object_doc},
    {"data_pointer", data_pointer, METH_O, data_pointer_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "zerocopy._speedups",
    "DLPack capsules built and read in C (the pure-Python reference: zerocopy.exchange.dlpack);\n"
    "the shared pool's Ledger and hot path (_pool.c); zerocopy.to's fast lane (_lane.c);\n"
    "the block cache in front of the shared pool that torch's allocator calls (_cache.c).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    kCPU = PyLong_FromLong(1); /* kDLCPU */
    kZERO = PyLong_FromLong(0);
    if (kCPU == NULL || kZERO == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "DLPACK_MAJOR", VERSION_MAJOR) < 0 ||
        PyModule_AddIntConstant(module, "DLPACK_MINOR", VERSION_MINOR) < 0 ||
        zc_pool_init(module) < 0 || zc_lane_init(module) < 0 || zc_cache_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
