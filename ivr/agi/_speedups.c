/* The FastAGI environment block read in C: the values of a block whose keys are known.
 *
 * Every call starts with a block of ~25 "agi_key: value" lines, the same keys in the same order
 * for every call of one AGI(). Reading its values in Python cost ~46k instructions a call; this
 * does it in one pass. ivr/agi/_parser.py keeps the same in Python (layout_values) and uses it
 * when this module is not built; tests check that both give the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* layout_values(block, prefixes) -> tuple[str, ...] | None
 *
 * block:    the lines of an environment block, each ended by "\n", then its blank line;
 * prefixes: one bytes object a line, "agi_key: ", in the block's order.
 *
 * The values, each line less its prefix, decoded as UTF-8 (invalid bytes replaced), if the
 * block has one line a prefix and each line starts with its own; else None. */
static PyObject *
layout_values(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "layout_values(block: bytes, prefixes: tuple)");
        return NULL;
    }
    const char *b = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    PyObject *prefixes = args[1];
    Py_ssize_t count = PyTuple_GET_SIZE(prefixes);
    if (n < 2 || b[n - 1] != '\n' || b[n - 2] != '\n') {
        Py_RETURN_NONE;
    }
    PyObject *values = PyTuple_New(count);
    if (values == NULL) {
        return NULL;
    }
    Py_ssize_t at = 0, end = n - 1; /* the lines end before the blank line's "\n" */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *prefix = PyTuple_GET_ITEM(prefixes, i);
        if (!PyBytes_CheckExact(prefix)) {
            Py_DECREF(values);
            PyErr_SetString(PyExc_TypeError, "layout_values: the prefixes are bytes");
            return NULL;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(prefix);
        const char *nl = at < end ? memchr(b + at, '\n', (size_t)(end - at)) : NULL;
        if (nl == NULL) { /* fewer lines than prefixes */
            Py_DECREF(values);
            Py_RETURN_NONE;
        }
        Py_ssize_t line_end = nl - b;
        if (line_end - at < size || memcmp(b + at, PyBytes_AS_STRING(prefix), (size_t)size) != 0) {
            Py_DECREF(values);
            Py_RETURN_NONE;
        }
        PyObject *value = PyUnicode_DecodeUTF8(b + at + size, line_end - at - size, "replace");
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyTuple_SET_ITEM(values, i, value);
        at = line_end + 1;
    }
    if (at != end) { /* more lines than prefixes */
        Py_DECREF(values);
        Py_RETURN_NONE;
    }
    return values;
}

static PyMethodDef methods[] = {
    {"layout_values", (PyCFunction)(void (*)(void))layout_values, METH_FASTCALL,
     "layout_values(block, prefixes) -> tuple[str, ...] | None: see _speedups.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "ivr.agi._speedups",
    .m_doc = "The FastAGI environment block read in C.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
