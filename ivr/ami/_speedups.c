/* One AMI header's value, read from a message's bytes: AmiMessage.get's search, in C.
 *
 * The service reads a few headers of every event it takes, ~36 lookups a call. In Python
 * each cost 6.5-7.5k instructions, most of them the interpreter's own (two bytes.find calls
 * and their argument parsing, a slice, a decode), not the search; through this, ~3k.
 * ivr/ami/_parser.py keeps the same lookup in Python (header_value) and uses it when this
 * module is not built; tests check that both give the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define RETURN_MUST_PARSE return Py_NewRef(Py_Ellipsis)

/* header_value(raw, lower, needle) -> str | None | Ellipsis
 *
 * raw:    the message's bytes, lines ended by "\n" or "\r\n" (the last one's "\n" may be
 *         missing);
 * lower:  b"\n" + raw with ASCII letters lowered + b"\n" (so a byte's offset there is its
 *         offset in raw plus one);
 * needle: b"\n" + the key lowered + b":".
 *
 * The first line whose key is the needle's decides: "key: value" gives the value (up to the
 * line's "\n", less one "\r" before it), decoded as UTF-8 (invalid bytes replaced); no such
 * line gives None; "key:value" (no space), or bytes that break the rules above, give
 * Ellipsis: the caller must parse the message to tell. */
static PyObject *
header_value(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "header_value(raw, lower, needle)");
        return NULL;
    }
    PyObject *raw = args[0], *lower = args[1], *needle = args[2];
    if (!PyBytes_CheckExact(raw) || !PyBytes_CheckExact(lower) || !PyBytes_CheckExact(needle)) {
        PyErr_SetString(PyExc_TypeError, "header_value takes three bytes objects");
        return NULL;
    }
    const char *r = PyBytes_AS_STRING(raw);
    const char *l = PyBytes_AS_STRING(lower);
    const char *n = PyBytes_AS_STRING(needle);
    Py_ssize_t rn = PyBytes_GET_SIZE(raw), ln = PyBytes_GET_SIZE(lower);
    Py_ssize_t nn = PyBytes_GET_SIZE(needle);
    if (ln != rn + 2 || nn < 2 || n[0] != '\n') {
        RETURN_MUST_PARSE;
    }
    /* The needle starts with "\n": look at each line start in turn. */
    const char *at = NULL;
    const char *p = l, *stop = l + ln - nn;
    while (p <= stop) {
        if (memcmp(p, n, (size_t)nn) == 0) {
            at = p;
            break;
        }
        p = memchr(p + 1, '\n', (size_t)(l + ln - (p + 1)));
        if (p == NULL) {
            break;
        }
    }
    if (at == NULL) {
        Py_RETURN_NONE;
    }
    Py_ssize_t start = (at - l) + nn; /* in lower: the byte after "key:" */
    if (start >= ln || l[start] != ' ') {
        RETURN_MUST_PARSE;
    }
    const char *eol = memchr(l + start, '\n', (size_t)(ln - start));
    if (eol == NULL) {
        RETURN_MUST_PARSE;
    }
    /* In raw, the value starts where the space is in lower, and ends before the line's
       "\n" (one byte earlier than in lower), and before a "\r" there. */
    Py_ssize_t end = (eol - l) - 1;
    if (end > start && r[end - 1] == '\r') {
        end -= 1;
    }
    if (start > end || end > rn) {
        RETURN_MUST_PARSE;
    }
    PyObject *value = PyUnicode_DecodeUTF8(r + start, end - start, NULL);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        value = PyUnicode_DecodeUTF8(r + start, end - start, "replace");
    }
    return value;
}

static PyMethodDef methods[] = {
    {"header_value", (PyCFunction)(void (*)(void))header_value, METH_FASTCALL,
     "header_value(raw, lower, needle) -> str | None | Ellipsis: see _speedups.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "ivr.ami._speedups",
    .m_doc = "AmiMessage.get's search, in C.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
