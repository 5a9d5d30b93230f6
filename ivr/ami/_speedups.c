/* The AMI parser's hot paths in C: AmiMessage.get (reading one header's value out of a
 * message's bytes), and in AmiParser.feed's usual case the cut of a read into messages and the
 * making of its events' messages.
 *
 * The service reads ~36 headers a call. In Python each lookup cost 6.5-7.5k instructions,
 * most of them the interpreter's own (two bytes.find calls and their argument parsing, a
 * slice, a decode), not the search; AmiMessage.get in C costs ~1.6k. ivr/ami/_parser.py keeps
 * each of these in Python (header_value, split_messages, read_events, AmiMessage.get) and uses
 * them when this module is not built; tests check that both give the same answers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#define RETURN_MUST_PARSE return Py_NewRef(Py_Ellipsis)

/* find_value(raw, lower, needle) -> str | None | Ellipsis: header_value, on bytes objects.
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
find_value(PyObject *raw, PyObject *lower, PyObject *needle)
{
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

static PyObject *
header_value(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "header_value(raw, lower, needle)");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])
        || !PyBytes_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "header_value takes three bytes objects");
        return NULL;
    }
    return find_value(args[0], args[1], args[2]);
}

/* Whether b holds KELVIN SIGN (U+212A) or LATIN CAPITAL LETTER I WITH DOT ABOVE (U+0130) in
 * UTF-8: the two letters whose lower case is ASCII, which would hide a key from a search in
 * ASCII-lowered bytes. */
static int
has_hidden_key(const char *b, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c == 0xE2 && i + 2 < n && (unsigned char)b[i + 1] == 0x84
             && (unsigned char)b[i + 2] == 0xAA)
            || (c == 0xC4 && (unsigned char)b[i + 1] == 0xB0)) {
            return 1;
        }
    }
    return 0;
}

static int
append_bytes(PyObject *list, const unsigned char *start, Py_ssize_t size)
{
    PyObject *item = PyBytes_FromStringAndSize((const char *)start, size);
    if (item == NULL) {
        return -1;
    }
    int appended = PyList_Append(list, item);
    Py_DECREF(item);
    return appended;
}

/* split_messages(data) -> (blocks, lowered, plain) | None
 *
 * The usual read, in one pass: None if data holds "\n\n" (other line ends than Asterisk's
 * CRLF: the caller reads it the slow way); else data.split(b"\n\r\n") (the last piece is what
 * is not complete yet), data with ASCII letters lowered, and whether data holds neither of the
 * two letters whose lower case is ASCII (KELVIN SIGN, U+212A, and LATIN CAPITAL LETTER I WITH
 * DOT ABOVE, U+0130, in UTF-8), which would hide a key from a search in the lowered bytes. */
static PyObject *
split_messages(PyObject *Py_UNUSED(module), PyObject *data)
{
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "split_messages takes a bytes object");
        return NULL;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *lowered = PyBytes_FromStringAndSize(NULL, n);
    if (lowered == NULL) {
        return NULL;
    }
    unsigned char *lo = (unsigned char *)PyBytes_AS_STRING(lowered);
    /* Without branches, so that the compiler can do it 16 or 32 bytes at a time. */
    unsigned char seen = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = d[i];
        seen |= c;
        lo[i] = (unsigned char)(c + (((unsigned char)(c - 'A') < 26) << 5));
    }
    /* Not all ASCII: look for the two letters. */
    int plain = (seen & 0x80) ? !has_hidden_key((const char *)d, n) : 1;
    PyObject *blocks = PyList_New(0);
    if (blocks == NULL) {
        Py_DECREF(lowered);
        return NULL;
    }
    Py_ssize_t start = 0, i = 0;
    while (i < n) {
        const unsigned char *nl = memchr(d + i, '\n', (size_t)(n - i));
        if (nl == NULL) {
            break;
        }
        i = nl - d;
        if (i + 1 < n && d[i + 1] == '\n') { /* "\n\n": not the usual read */
            Py_DECREF(blocks);
            Py_DECREF(lowered);
            Py_RETURN_NONE;
        }
        if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n') {
            /* "\n\r\n" may go on with "\n" ("\n\r\n\n"): that holds "\n\n" too. */
            if (i + 3 < n && d[i + 3] == '\n') {
                Py_DECREF(blocks);
                Py_DECREF(lowered);
                Py_RETURN_NONE;
            }
            if (append_bytes(blocks, d + start, i - start) < 0) {
                Py_DECREF(blocks);
                Py_DECREF(lowered);
                return NULL;
            }
            i += 3;
            start = i;
        }
        else {
            i += 1;
        }
    }
    if (append_bytes(blocks, d + start, n - start) < 0) { /* the rest, not complete yet */
        Py_DECREF(blocks);
        Py_DECREF(lowered);
        return NULL;
    }
    return Py_BuildValue("(NNO)", blocks, lowered, plain ? Py_True : Py_False);
}

/* What read_events makes: AmiMessage, and where its three fields are in an object of it;
 * for AmiMessage.get, the needles by key (_parser._NEEDLES) and the Python get, which reads
 * whatever this does not. */
static PyTypeObject *message_type = NULL;
static Py_ssize_t raw_offset = -1, lower_offset = -1, event_offset = -1;
static PyObject *needles = NULL, *python_get = NULL;

#define SLOT(object, offset) (*(PyObject **)((char *)(object) + (offset)))

static int
slot_offset(PyObject *descriptor, Py_ssize_t *offset)
{
    if (!Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
        PyErr_SetString(PyExc_TypeError, "configure takes the slots' member descriptors");
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_SetString(PyExc_TypeError, "configure takes writable object slots");
        return -1;
    }
    *offset = member->offset;
    return 0;
}

/* The Python get, called as it would have been: (self, *args, **kwargs). */
static PyObject *
call_python_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *stack[8];
    if (total > 7) {
        PyErr_SetString(PyExc_TypeError, "get(key, default) takes at most two arguments");
        return NULL;
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    return PyObject_Vectorcall(python_get, stack, (size_t)nargs + 1, kwnames);
}

/* AmiMessage.get(key, default=""): _parser's get for a message kept as bytes whose key has a
 * needle already; anything else (a message made from pairs, a key first asked for, a line the
 * search cannot read alone, keyword arguments) goes to the Python get. */
static PyObject *
message_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || nargs < 1 || nargs > 2 || !PyObject_TypeCheck(self, message_type)) {
        return call_python_get(self, args, nargs, kwnames);
    }
    PyObject *raw = SLOT(self, raw_offset), *lower = SLOT(self, lower_offset);
    if (raw == NULL || lower == NULL || !PyBytes_CheckExact(raw) || !PyBytes_CheckExact(lower)
        || !PyUnicode_CheckExact(args[0])) {
        return call_python_get(self, args, nargs, kwnames);
    }
    PyObject *needle = PyDict_GetItemWithError(needles, args[0]); /* borrowed */
    if (needle == NULL || !PyBytes_CheckExact(needle)) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return call_python_get(self, args, nargs, kwnames);
    }
    PyObject *value = find_value(raw, lower, needle);
    if (value == Py_Ellipsis) {
        Py_DECREF(value);
        return call_python_get(self, args, nargs, kwnames);
    }
    if (value == Py_None) {
        Py_DECREF(value);
        if (nargs == 2) {
            return Py_NewRef(args[1]);
        }
        return PyUnicode_FromStringAndSize(NULL, 0);
    }
    return value;
}

static PyMethodDef message_get_def = {
    "get", (PyCFunction)(void (*)(void))message_get, METH_FASTCALL | METH_KEYWORDS,
    "Return the first value of ``key`` (case-insensitive), or ``default``.",
};

/* configure(message_type, raw, lower, event, needles, python_get) -> the get method: the
 * class read_events makes, the member descriptors of its _raw, _lower and event slots, the
 * needles by key and the Python get; returns AmiMessage.get in C, for the class to take. */
static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyType_Check(args[0]) || !PyDict_CheckExact(args[4])
        || !PyCallable_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(message_type, raw, lower, event, needles, python_get)");
        return NULL;
    }
    Py_ssize_t raw, lower, event;
    if (slot_offset(args[1], &raw) < 0 || slot_offset(args[2], &lower) < 0
        || slot_offset(args[3], &event) < 0) {
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    if (!PyType_IsSubtype(type, PyDescr_TYPE((PyDescrObject *)args[1]))
        || !PyType_IsSubtype(type, PyDescr_TYPE((PyDescrObject *)args[2]))
        || !PyType_IsSubtype(type, PyDescr_TYPE((PyDescrObject *)args[3]))) {
        PyErr_SetString(PyExc_TypeError, "the slots are not the message type's");
        return NULL;
    }
    PyObject *get = PyDescr_NewMethod(type, &message_get_def);
    if (get == NULL) {
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(message_type, type);
    Py_XSETREF(needles, Py_NewRef(args[4]));
    Py_XSETREF(python_get, Py_NewRef(args[5]));
    raw_offset = raw;
    lower_offset = lower;
    event_offset = event;
    return get;
}

/* read_events(blocks, index, at, lowered, plain, names, messages) -> (index, at)
 *
 * _parser._read_crlf's loop for the messages it makes itself: from blocks[index], which
 * starts at offset ``at`` of the read and of ``lowered``, each block whose first line is in
 * ``names`` (b"Event: X" -> "X") and that no key can hide in (``plain``, or neither letter in
 * the block) becomes an AmiMessage (its bytes, its lowered bytes with a "\n" on each side, its
 * event name), appended to ``messages``. Stops at the first other block, or at the end:
 * returns that block's index and offset. */
static PyObject *
read_events(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "read_events(blocks, index, at, lowered, plain, names, messages)");
        return NULL;
    }
    PyObject *blocks = args[0], *lowered = args[3], *names = args[5], *messages = args[6];
    if (message_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "read_events before configure");
        return NULL;
    }
    if (!PyList_CheckExact(blocks) || !PyBytes_CheckExact(lowered) || !PyDict_CheckExact(names)
        || !PyList_CheckExact(messages)) {
        PyErr_SetString(PyExc_TypeError, "read_events: list, int, int, bytes, bool, dict, list");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[1]), at = PyLong_AsSsize_t(args[2]);
    if ((index == -1 || at == -1) && PyErr_Occurred()) {
        return NULL;
    }
    int plain = PyObject_IsTrue(args[4]);
    if (plain < 0) {
        return NULL;
    }
    const char *lo = PyBytes_AS_STRING(lowered);
    Py_ssize_t lo_size = PyBytes_GET_SIZE(lowered);
    Py_ssize_t count = PyList_GET_SIZE(blocks);
    for (; index >= 0 && index < count; index++) {
        PyObject *block = PyList_GET_ITEM(blocks, index);
        if (!PyBytes_CheckExact(block)) {
            break;
        }
        const char *b = PyBytes_AS_STRING(block);
        Py_ssize_t size = PyBytes_GET_SIZE(block);
        if (at < 0 || at + size + 1 > lo_size) {
            break;
        }
        const char *nl = memchr(b, '\n', (size_t)size);
        PyObject *line = PyBytes_FromStringAndSize(b, nl == NULL ? size : nl - b);
        if (line == NULL) {
            return NULL;
        }
        PyObject *event = PyDict_GetItemWithError(names, line); /* borrowed */
        Py_DECREF(line);
        if (event == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            break;
        }
        if (!plain && has_hidden_key(b, size)) {
            break;
        }
        /* The lowered bytes with the "\n" before and after: the read's own where there is
           one before (every block but the first). */
        PyObject *lower;
        if (at > 0) {
            lower = PyBytes_FromStringAndSize(lo + at - 1, size + 2);
        }
        else {
            lower = PyBytes_FromStringAndSize(NULL, size + 2);
            if (lower != NULL) {
                char *l = PyBytes_AS_STRING(lower);
                l[0] = '\n';
                memcpy(l + 1, lo, (size_t)(size + 1));
            }
        }
        if (lower == NULL) {
            return NULL;
        }
        PyObject *message = message_type->tp_alloc(message_type, 0);
        if (message == NULL) {
            Py_DECREF(lower);
            return NULL;
        }
        Py_INCREF(block);
        SLOT(message, raw_offset) = block;
        SLOT(message, lower_offset) = lower;
        Py_INCREF(event);
        SLOT(message, event_offset) = event;
        int appended = PyList_Append(messages, message);
        Py_DECREF(message);
        if (appended < 0) {
            return NULL;
        }
        at += size + 3;
    }
    return Py_BuildValue("(nn)", index, at);
}

static PyMethodDef methods[] = {
    {"header_value", (PyCFunction)(void (*)(void))header_value, METH_FASTCALL,
     "header_value(raw, lower, needle) -> str | None | Ellipsis: see _speedups.c."},
    {"split_messages", (PyCFunction)split_messages, METH_O,
     "split_messages(data) -> (blocks, lowered, plain) | None: see _speedups.c."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(message_type, raw, lower, event, needles, python_get) -> get: see _speedups.c."},
    {"read_events", (PyCFunction)(void (*)(void))read_events, METH_FASTCALL,
     "read_events(blocks, index, at, lowered, plain, names, messages) -> (index, at)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "ivr.ami._speedups",
    .m_doc = "Three hot paths of the AMI parser, in C.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
