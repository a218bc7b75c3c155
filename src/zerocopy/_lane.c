/* zerocopy._speedups, part three: the exchange's fast lane, the whole of a repeated
 * zerocopy.to() call, in C.
 *
 * Why C: for a conversion seen before, to() is a few dictionary lookups around two calls
 * into adapters (the source's fast key, the plan's specialised one-liners). Written in
 * Python those lookups, the key tuple and the branches cost about 0.4 us on the dev VM, as
 * much as torch.from_numpy itself. Here they cost what the dict operations cost.
 *
 * The logic is convert.py's Python fast lane, which stays the reference (the pure-Python
 * path runs it): the same store (exchange/cache.py's dict, cleared in place, so the
 * reference taken at setup stays current), the same keys, the same alignment marker.
 * Anything else (a class never seen, no fast key, no plan yet) answers MISS and Python
 * plans; exceptions propagate to to(), which types them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *store;          /* exchange.cache's dict */
static PyObject *aligned_marker; /* convert._ALIGNMENT_BIT */
static PyObject *run_checked;    /* convert._run(obj, plan, None): copy promises, policy */
static PyObject *miss;           /* what lane() answers when Python must plan */
static PyObject *s_runs_alone, *s_fast;

PyDoc_STRVAR(lane_setup_doc,
"lane_setup(store, aligned_marker, run_checked)\n--\n\n"
"Bind the fast lane to the exchange's store, its alignment marker and convert._run.");

static PyObject *lane_setup(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "lane_setup takes 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyDict_CheckExact(args[0]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "lane_setup(dict, marker, callable)");
        return NULL;
    }
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(store, args[0]);
    Py_XSETREF(aligned_marker, args[1]);
    Py_XSETREF(run_checked, args[2]);
    Py_RETURN_NONE;
}

/* The plan for (kind, key, target, copy), through the alignment marker where the plan
 * depends on the pointer; a new reference, NULL with no error for "not cached". */
static PyObject *find_plan(PyObject *obj, PyObject *reader, PyObject *lane_key)
{
    PyObject *chosen = PyDict_GetItemWithError(store, lane_key);
    if (chosen == NULL || chosen != aligned_marker) {
        Py_XINCREF(chosen);
        return chosen;
    }
    PyObject *fast_pointer = PyTuple_GET_ITEM(reader, 2);
    if (fast_pointer == Py_None) {
        return NULL;
    }
    PyObject *where = PyObject_CallOneArg(fast_pointer, obj);
    if (where == NULL || where == Py_None) {
        Py_XDECREF(where);
        return NULL;
    }
    unsigned long long address = PyLong_AsUnsignedLongLongMask(where);
    Py_DECREF(where);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *aligned_key = PyTuple_New(5);
    if (aligned_key == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < 4; i++) {
        PyObject *item = PyTuple_GET_ITEM(lane_key, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(aligned_key, i, item);
    }
    PyTuple_SET_ITEM(aligned_key, 4, PyBool_FromLong(address % 64 == 0));
    chosen = PyDict_GetItemWithError(store, aligned_key);
    Py_XINCREF(chosen);
    Py_DECREF(aligned_key);
    return chosen;
}

PyDoc_STRVAR(lane_doc,
"lane(obj, target, copy) -> the converted object, or MISS\n--\n\n"
"zerocopy.to's fast lane for a call without device= or stream=, with copy None/True/False.");

static PyObject *lane(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "lane takes 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (store == NULL) {
        return Py_NewRef(miss);
    }
    PyObject *obj = args[0];
    PyObject *kind = (PyObject *)Py_TYPE(obj);
    PyObject *reader = PyDict_GetItemWithError(store, kind);
    if (reader == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(miss);
    }
    if (!PyTuple_Check(reader) || PyTuple_GET_SIZE(reader) < 3 ||
        PyTuple_GET_ITEM(reader, 1) == Py_None) {
        return Py_NewRef(miss);
    }
    Py_INCREF(reader); /* the store may change while adapters run */
    PyObject *key = PyObject_CallOneArg(PyTuple_GET_ITEM(reader, 1), obj);
    if (key == NULL || key == Py_None) {
        Py_DECREF(reader);
        Py_XDECREF(key);
        return key == NULL ? NULL : Py_NewRef(miss);
    }
    PyObject *lane_key = PyTuple_Pack(4, kind, key, args[1], args[2]);
    Py_DECREF(key);
    if (lane_key == NULL) {
        Py_DECREF(reader);
        return NULL;
    }
    PyObject *chosen = find_plan(obj, reader, lane_key);
    Py_DECREF(lane_key);
    Py_DECREF(reader);
    if (chosen == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(miss);
    }
    PyObject *alone = PyObject_GetAttr(chosen, s_runs_alone);
    if (alone == NULL) {
        Py_DECREF(chosen);
        return NULL;
    }
    PyObject *result;
    if (alone == Py_True) {
        PyObject *fast = PyObject_GetAttr(chosen, s_fast);
        result = fast == NULL ? NULL : PyObject_CallOneArg(fast, obj);
        Py_XDECREF(fast);
    } else {
        PyObject *call[3] = {obj, chosen, Py_None};
        result = PyObject_Vectorcall(run_checked, call, 3, NULL);
    }
    Py_DECREF(alone);
    Py_DECREF(chosen);
    return result;
}

static PyMethodDef lane_methods[] = {
    {"lane_setup", (PyCFunction)(void (*)(void))lane_setup, METH_FASTCALL, lane_setup_doc},
    {"lane", (PyCFunction)(void (*)(void))lane, METH_FASTCALL, lane_doc},
    {NULL, NULL, 0, NULL},
};

/* Called from PyInit__speedups: adds lane(), lane_setup() and MISS. */
int zc_lane_init(PyObject *module)
{
    miss = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    s_runs_alone = PyUnicode_InternFromString("runs_alone");
    s_fast = PyUnicode_InternFromString("fast");
    if (miss == NULL || s_runs_alone == NULL || s_fast == NULL) {
        return -1;
    }
    Py_INCREF(miss);
    if (PyModule_AddObject(module, "MISS", miss) < 0) {
        Py_DECREF(miss);
        return -1;
    }
    return PyModule_AddFunctions(module, lane_methods);
}
