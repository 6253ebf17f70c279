/*
 * The small C companion of the quickjs-ng Python binding.
 *
 * The binding (PyPI quickjs-ng, module _quickjs) runs JS well but does not expose four things the
 * session engine needs, so this module adds them on the same runtime:
 *
 *   - a per-callback CPU budget measured in *this thread's* CPU time (the binding's own limit uses
 *     clock(), the process CPU time, which fires early while other threads are busy);
 *   - a promise rejection tracker, so an unhandled rejection can end its session;
 *   - compiling a script with its real file name (errors name the scenario and line) into
 *     bytecode, and running bytecode, so every session does not parse the prelude again;
 *   - error text (message and stack) for exceptions raised while running bytecode.
 *
 * QuickJS symbols are looked up with dlsym in the already loaded _quickjs module, because Python
 * loads extension modules with RTLD_LOCAL. The binding's context object is read through a mirror of
 * the start of its struct; attach() verifies the mirror against QuickJS itself before trusting it,
 * and pyproject.toml pins the binding's exact version.
 *
 * Threading follows the binding's protocol: whenever JS may run, the GIL is released and the thread
 * state is parked in the binding's context, where the binding's host-function trampoline and
 * finalizers expect it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#if UINTPTR_MAX != 0xFFFFFFFFFFFFFFFFu
#error "64-bit only: the JSValue mirror below assumes QuickJS without NaN boxing"
#endif

typedef struct JSRuntime JSRuntime;
typedef struct JSContext JSContext;
typedef struct {
    uint64_t u;
    int64_t tag;
} JSValue;

#define JS_TAG_OBJECT (-1)
#define JS_TAG_EXCEPTION 6
#define JS_EVAL_TYPE_GLOBAL 0
#define JS_EVAL_FLAG_COMPILE_ONLY (1 << 5)
#define JS_WRITE_OBJ_BYTECODE (1 << 0)
#define JS_READ_OBJ_BYTECODE (1 << 0)

typedef int JSInterruptHandler(JSRuntime *rt, void *opaque);
typedef void JSRejectionTracker(JSContext *ctx, JSValue promise, JSValue reason, bool is_handled,
                                void *opaque);

static struct {
    void (*SetInterruptHandler)(JSRuntime *, JSInterruptHandler *, void *);
    void (*SetHostPromiseRejectionTracker)(JSRuntime *, JSRejectionTracker *, void *);
    void *(*GetRuntimeOpaque)(JSRuntime *);
    JSRuntime *(*GetRuntime)(JSContext *);
    void (*UpdateStackTop)(JSRuntime *);
    JSValue (*Eval)(JSContext *, const char *, size_t, const char *, int);
    uint8_t *(*WriteObject)(JSContext *, size_t *, JSValue, int);
    JSValue (*ReadObject)(JSContext *, const uint8_t *, size_t, int);
    JSValue (*EvalFunction)(JSContext *, JSValue);
    JSValue (*GetException)(JSContext *);
    JSValue (*GetPropertyStr)(JSContext *, JSValue, const char *);
    const char *(*ToCStringLen2)(JSContext *, size_t *, JSValue, bool);
    void (*FreeCString)(JSContext *, const char *);
    void (*FreeValue)(JSContext *, JSValue);
    JSValue (*DupValue)(JSContext *, JSValue);
    void (*js_free)(JSContext *, void *);
    bool bound;
} qjs;

/* Mirror of the start of the binding's RuntimeData (module.c of quickjs-ng 0.17.0.2). */
typedef struct {
    PyObject_HEAD
    JSRuntime *runtime;
    JSContext *context;
    int has_time_limit;
    clock_t time_limit;
    PyThreadState *thread_state;
} BindingContext;

typedef struct {
    JSValue promise;
    JSValue reason;
} Rejection;

typedef struct {
    PyObject_HEAD
    BindingContext *ctx; /* strong reference; NULL once closed */
    bool armed;
    bool fired;
    int64_t start_ns;
    int64_t budget_ns;
    Rejection *rejections;
    size_t n_rejections;
    size_t cap_rejections;
} Guard;

static int64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int interrupt_handler(JSRuntime *rt, void *opaque) {
    Guard *g = opaque;
    if (!g->armed) {
        return 0;
    }
    if (thread_cpu_ns() - g->start_ns >= g->budget_ns) {
        g->fired = true;
        return 1;
    }
    return 0;
}

static void rejection_tracker(JSContext *ctx, JSValue promise, JSValue reason, bool is_handled,
                              void *opaque) {
    Guard *g = opaque;
    if (is_handled) {
        for (size_t i = 0; i < g->n_rejections; i++) {
            if (g->rejections[i].promise.u == promise.u) {
                qjs.FreeValue(ctx, g->rejections[i].promise);
                qjs.FreeValue(ctx, g->rejections[i].reason);
                g->rejections[i] = g->rejections[--g->n_rejections];
                return;
            }
        }
        return;
    }
    if (g->n_rejections == g->cap_rejections) {
        size_t cap = g->cap_rejections ? g->cap_rejections * 2 : 4;
        Rejection *grown = PyMem_RawRealloc(g->rejections, cap * sizeof(Rejection));
        if (grown == NULL) {
            return; /* out of memory: the rejection goes unreported rather than crash */
        }
        g->rejections = grown;
        g->cap_rejections = cap;
    }
    g->rejections[g->n_rejections].promise = qjs.DupValue(ctx, promise);
    g->rejections[g->n_rejections].reason = qjs.DupValue(ctx, reason);
    g->n_rejections++;
}

/* Release the GIL the way the binding does before JS runs. */
static PyThreadState *enter_js(Guard *g) {
    g->ctx->thread_state = PyEval_SaveThread();
    qjs.UpdateStackTop(g->ctx->runtime);
    return g->ctx->thread_state;
}

static void leave_js(Guard *g) {
    /* A host function called meanwhile may have parked a fresh thread state: take the current one. */
    PyThreadState *ts = g->ctx->thread_state;
    g->ctx->thread_state = NULL;
    PyEval_RestoreThread(ts);
}

static void arm(Guard *g, double budget_s) {
    g->budget_ns = (int64_t)(budget_s * 1e9);
    g->start_ns = thread_cpu_ns();
    g->fired = false;
    g->armed = budget_s > 0;
}

/* "message\nstack" of a JS value; the caller holds no GIL and frees with PyMem_RawFree. */
static char *describe(JSContext *ctx, JSValue value) {
    size_t mlen = 0, slen = 0;
    const char *msg = qjs.ToCStringLen2(ctx, &mlen, value, false);
    const char *stack = NULL;
    if (value.tag == JS_TAG_OBJECT) {
        JSValue st = qjs.GetPropertyStr(ctx, value, "stack");
        if (st.tag != JS_TAG_EXCEPTION) {
            stack = qjs.ToCStringLen2(ctx, &slen, st, false);
            qjs.FreeValue(ctx, st);
        } else {
            qjs.FreeValue(ctx, qjs.GetException(ctx));
        }
    }
    const char *m = msg;
    if (msg == NULL) {
        qjs.FreeValue(ctx, qjs.GetException(ctx));
        m = "(an exception that cannot be printed)";
        mlen = strlen(m);
    }
    char *out = PyMem_RawMalloc(mlen + slen + 2);
    if (out != NULL) {
        memcpy(out, m, mlen);
        out[mlen] = '\n';
        if (stack) {
            memcpy(out + mlen + 1, stack, slen);
        }
        out[mlen + 1 + slen] = '\0';
    }
    if (msg) {
        qjs.FreeCString(ctx, msg);
    }
    if (stack) {
        qjs.FreeCString(ctx, stack);
    }
    return out;
}

static char *take_exception(JSContext *ctx) {
    JSValue exc = qjs.GetException(ctx);
    char *text = describe(ctx, exc);
    qjs.FreeValue(ctx, exc);
    return text;
}

static PyObject *text_or_memory_error(char *text) {
    if (text == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    PyMem_RawFree(text);
    return s;
}

static void free_rejections(Guard *g) {
    for (size_t i = 0; i < g->n_rejections; i++) {
        qjs.FreeValue(g->ctx->context, g->rejections[i].promise);
        qjs.FreeValue(g->ctx->context, g->rejections[i].reason);
    }
    g->n_rejections = 0;
}

static bool check_open(Guard *g) {
    if (g->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the guard is closed");
        return false;
    }
    return true;
}

/* Guard(context): attach to a _quickjs.Context. */
static PyObject *guard_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *ctx;
    if (!PyArg_ParseTuple(args, "O", &ctx)) {
        return NULL;
    }
    if (!qjs.bound) {
        PyErr_SetString(PyExc_RuntimeError, "call bind() with the _quickjs module path first");
        return NULL;
    }
    if (strcmp(Py_TYPE(ctx)->tp_name, "_quickjs.Context") != 0) {
        PyErr_SetString(PyExc_TypeError, "expected a _quickjs.Context");
        return NULL;
    }
    BindingContext *bc = (BindingContext *)ctx;
    if (qjs.GetRuntimeOpaque(bc->runtime) != (void *)ctx || qjs.GetRuntime(bc->context) != bc->runtime ||
        bc->has_time_limit != 0 || bc->thread_state != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the quickjs-ng binding's layout is not the one this module was written for");
        return NULL;
    }
    Guard *g = (Guard *)type->tp_alloc(type, 0);
    if (g == NULL) {
        return NULL;
    }
    Py_INCREF(ctx);
    g->ctx = bc;
    qjs.SetInterruptHandler(bc->runtime, interrupt_handler, g);
    qjs.SetHostPromiseRejectionTracker(bc->runtime, rejection_tracker, g);
    return (PyObject *)g;
}

static void guard_close_impl(Guard *g) {
    if (g->ctx == NULL) {
        return;
    }
    free_rejections(g);
    PyMem_RawFree(g->rejections);
    g->rejections = NULL;
    g->cap_rejections = 0;
    qjs.SetInterruptHandler(g->ctx->runtime, NULL, NULL);
    qjs.SetHostPromiseRejectionTracker(g->ctx->runtime, NULL, NULL);
    BindingContext *ctx = g->ctx;
    g->ctx = NULL;
    Py_DECREF((PyObject *)ctx);
}

static PyObject *guard_close(Guard *g, PyObject *unused) {
    guard_close_impl(g);
    Py_RETURN_NONE;
}

static void guard_dealloc(Guard *g) {
    guard_close_impl(g);
    Py_TYPE(g)->tp_free((PyObject *)g);
}

/* arm(budget_seconds): start counting this thread's CPU time; JS is interrupted past the budget. */
static PyObject *guard_arm(Guard *g, PyObject *args) {
    double budget;
    if (!PyArg_ParseTuple(args, "d", &budget)) {
        return NULL;
    }
    arm(g, budget);
    Py_RETURN_NONE;
}

/* disarm() -> bool: stop counting; True if the budget ran out and JS was interrupted. */
static PyObject *guard_disarm(Guard *g, PyObject *unused) {
    g->armed = false;
    return PyBool_FromLong(g->fired);
}

/* compile(source, filename) -> bytes | str: bytecode, or the text of the SyntaxError. */
static PyObject *guard_compile(Guard *g, PyObject *args) {
    const char *source, *filename;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#s", &source, &len, &filename) || !check_open(g)) {
        return NULL;
    }
    JSContext *ctx = g->ctx->context;
    enter_js(g);
    JSValue fn = qjs.Eval(ctx, source, (size_t)len, filename,
                          JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    char *error = NULL;
    uint8_t *buf = NULL;
    size_t size = 0;
    if (fn.tag == JS_TAG_EXCEPTION) {
        error = take_exception(ctx);
    } else {
        buf = qjs.WriteObject(ctx, &size, fn, JS_WRITE_OBJ_BYTECODE);
        qjs.FreeValue(ctx, fn);
        if (buf == NULL) {
            error = take_exception(ctx);
        }
    }
    leave_js(g);
    if (buf == NULL) {
        return text_or_memory_error(error);
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)size);
    qjs.js_free(ctx, buf); /* plain memory: no JS runs, so no need to release the GIL */
    return result;
}

/* run(bytecode) -> None | str: run a compiled script (within the armed budget); the error text if
 * it threw. */
static PyObject *guard_run(Guard *g, PyObject *args) {
    const char *bytecode;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "y#", &bytecode, &len) || !check_open(g)) {
        return NULL;
    }
    JSContext *ctx = g->ctx->context;
    char *error = NULL;
    enter_js(g);
    JSValue fn = qjs.ReadObject(ctx, (const uint8_t *)bytecode, (size_t)len, JS_READ_OBJ_BYTECODE);
    if (fn.tag == JS_TAG_EXCEPTION) {
        error = take_exception(ctx);
    } else {
        JSValue result = qjs.EvalFunction(ctx, fn); /* takes ownership of fn */
        if (result.tag == JS_TAG_EXCEPTION) {
            error = take_exception(ctx);
        } else {
            qjs.FreeValue(ctx, result);
        }
    }
    leave_js(g);
    if (error == NULL) {
        Py_RETURN_NONE;
    }
    return text_or_memory_error(error);
}

/* take_unhandled() -> None | str: the first promise rejection nobody handled since the last call,
 * described (within the armed budget: describing may run a toString); the list is emptied. */
static PyObject *guard_take_unhandled(Guard *g, PyObject *unused) {
    if (!check_open(g)) {
        return NULL;
    }
    if (g->n_rejections == 0) {
        Py_RETURN_NONE;
    }
    char *text = NULL;
    enter_js(g);
    text = describe(g->ctx->context, g->rejections[0].reason);
    free_rejections(g);
    leave_js(g);
    return text_or_memory_error(text);
}

static PyMethodDef guard_methods[] = {
    {"close", (PyCFunction)guard_close, METH_NOARGS, "Detach from the context; safe twice."},
    {"arm", (PyCFunction)guard_arm, METH_VARARGS, "Start a CPU budget (seconds) for this thread."},
    {"disarm", (PyCFunction)guard_disarm, METH_NOARGS, "Stop the budget; True if it ran out."},
    {"compile", (PyCFunction)guard_compile, METH_VARARGS, "Compile a script to bytecode."},
    {"run", (PyCFunction)guard_run, METH_VARARGS, "Run bytecode (arm a budget first)."},
    {"take_unhandled", (PyCFunction)guard_take_unhandled, METH_NOARGS,
     "Describe and clear unhandled promise rejections."},
    {NULL}};

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "appliance.engine._qjsglue.Guard",
    .tp_basicsize = sizeof(Guard),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = guard_new,
    .tp_dealloc = (destructor)guard_dealloc,
    .tp_methods = guard_methods,
    .tp_doc = "CPU budget, rejection tracking and bytecode for one _quickjs.Context.",
};

#define BIND(field, name)                                                                         \
    if ((*(void **)&qjs.field = dlsym(handle, name)) == NULL) {                                   \
        PyErr_Format(PyExc_OSError, "symbol %s not found in %s", name, path);                     \
        return NULL;                                                                              \
    }

/* bind(path_of_the_quickjs_module): find the QuickJS functions in the loaded binding. */
static PyObject *bind(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) {
        return NULL;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (handle == NULL) {
        PyErr_Format(PyExc_OSError, "cannot find the loaded QuickJS binding %s: %s", path, dlerror());
        return NULL;
    }
    BIND(SetInterruptHandler, "JS_SetInterruptHandler");
    BIND(SetHostPromiseRejectionTracker, "JS_SetHostPromiseRejectionTracker");
    BIND(GetRuntimeOpaque, "JS_GetRuntimeOpaque");
    BIND(GetRuntime, "JS_GetRuntime");
    BIND(UpdateStackTop, "JS_UpdateStackTop");
    BIND(Eval, "JS_Eval");
    BIND(WriteObject, "JS_WriteObject");
    BIND(ReadObject, "JS_ReadObject");
    BIND(EvalFunction, "JS_EvalFunction");
    BIND(GetException, "JS_GetException");
    BIND(GetPropertyStr, "JS_GetPropertyStr");
    BIND(ToCStringLen2, "JS_ToCStringLen2");
    BIND(FreeCString, "JS_FreeCString");
    BIND(FreeValue, "JS_FreeValue");
    BIND(DupValue, "JS_DupValue");
    BIND(js_free, "js_free");
    qjs.bound = true;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", bind, METH_VARARGS, "Find the QuickJS functions in the loaded _quickjs module."},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_qjsglue", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__qjsglue(void) {
    if (PyType_Ready(&GuardType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&GuardType);
    if (PyModule_AddObject(m, "Guard", (PyObject *)&GuardType) < 0) {
        Py_DECREF(&GuardType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
