// zerocopy._raise: the one C++ function of zerocopy, so that the block cache (_cache.c) can
// fail a torch allocation the way torch's own allocators do.
//
// Why C++: torch's CUDAPluggableAllocator does not check the pointer its alloc function
// returns. A NULL becomes a tensor at address 0, and the first kernel that writes it ends
// in "an illegal memory access was encountered", a sticky error that leaves the CUDA
// context unusable (H200, 2026-12-03). torch's Python bindings turn a C++ exception thrown
// below them into a Python exception (std::exception -> RuntimeError), so the cache throws
// one instead of returning NULL; it unwinds through the cache's C frame (built with
// -fexceptions, holding no lock then) into torch.
//
// Built as its own optional extension: where no C++ compiler is found the rest of
// zerocopy._speedups still builds, and torch's "cached" mode says it cannot run.
#include <Python.h>

#include <stdexcept>

extern "C" {

[[noreturn]] void zerocopy_cache_throw(const char *message)
{
    throw std::runtime_error(message);
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "zerocopy._raise",
    "THROW: the address of void zerocopy_cache_throw(const char *), which throws "
    "std::runtime_error (what torch turns into RuntimeError)",
    -1, nullptr, nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit__raise(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == nullptr) {
        return nullptr;
    }
    PyObject *address = PyLong_FromVoidPtr(reinterpret_cast<void *>(&zerocopy_cache_throw));
    if (address == nullptr || PyModule_AddObject(module, "THROW", address) < 0) {
        Py_XDECREF(address);
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}

}  // extern "C"
