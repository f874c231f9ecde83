/*
 * streamserver._native: the per-packet SRTP ingress in C (issue 17).
 *
 * One SrtpReceiver per connected DTLS transport, keyed with the same material aiortc
 * exports: it unprotects SRTP/SRTCP with libsrtp (replay window and rollover counter
 * included) and parses the RTP header exactly as aiortc's RtpPacket.parse, with the GIL
 * released for both. A datagram that fails authentication, is replayed, too old or
 * malformed comes back as None and is counted, never raised: the caller drops it and the
 * session goes on. The pure-Python reference is pylibsrtp + aiortc (streamserver.fastpath).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <srtp2/srtp.h>
#include <string.h>

#define MAX_DATAGRAM 65536 /* the largest UDP payload: every datagram fits */
#define RTP_HEADER 12
#define REPLAY_WINDOW 1024 /* as aiortc's rx policy */

typedef struct {
    PyObject_HEAD
    srtp_t srtp;
    unsigned char *buf; /* MAX_DATAGRAM bytes: the packet being unprotected */
    int busy;           /* a call is running with the GIL released */
    unsigned long long packets, octets, auth_failed, replayed, malformed;
} SrtpReceiver;

/* The header fields aiortc's RtpPacket.parse reads, as offsets into the plain packet. */
typedef struct {
    int marker, payload_type, cc, has_extension;
    unsigned seq;
    unsigned long timestamp, ssrc;
    unsigned long csrc[15];
    unsigned ext_profile;
    Py_ssize_t ext_at, ext_len, payload_at, payload_len, padding;
} RtpHeader;

static unsigned long be32(const unsigned char *p)
{
    return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) |
           ((unsigned long)p[2] << 8) | (unsigned long)p[3];
}

/* 0 when ``p[0:n]`` is an RTP packet aiortc's parser accepts, -1 otherwise. */
static int parse_rtp(const unsigned char *p, Py_ssize_t n, RtpHeader *h)
{
    Py_ssize_t pos = RTP_HEADER;
    int padding, i;

    if (n < RTP_HEADER || (p[0] >> 6) != 2)
        return -1;
    padding = (p[0] >> 5) & 1;
    h->has_extension = (p[0] >> 4) & 1;
    h->cc = p[0] & 0x0F;
    h->marker = p[1] >> 7;
    h->payload_type = p[1] & 0x7F;
    h->seq = ((unsigned)p[2] << 8) | p[3];
    h->timestamp = be32(p + 4);
    h->ssrc = be32(p + 8);
    if (n < RTP_HEADER + 4 * h->cc)
        return -1;
    for (i = 0; i < h->cc; i++, pos += 4)
        h->csrc[i] = be32(p + pos);
    h->ext_profile = 0;
    h->ext_at = h->ext_len = 0;
    if (h->has_extension) {
        if (n < pos + 4)
            return -1;
        h->ext_profile = ((unsigned)p[pos] << 8) | p[pos + 1];
        h->ext_len = 4 * (Py_ssize_t)(((unsigned)p[pos + 2] << 8) | p[pos + 3]);
        pos += 4;
        if (n < pos + h->ext_len)
            return -1;
        h->ext_at = pos;
        pos += h->ext_len;
    }
    h->padding = 0;
    if (padding) {
        h->padding = p[n - 1];
        if (!h->padding || h->padding > n - pos)
            return -1;
    }
    h->payload_at = pos;
    h->payload_len = n - pos - h->padding;
    return 0;
}

static int srtp_ready(void)
{
    static int done;
    if (!done) {
        if (srtp_init() != srtp_err_status_ok) {
            PyErr_SetString(PyExc_RuntimeError, "libsrtp failed to initialise");
            return -1;
        }
        done = 1;
    }
    return 0;
}

static int SrtpReceiver_init(SrtpReceiver *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"profile", "key", NULL};
    int profile;
    Py_buffer key;
    srtp_policy_t policy;
    srtp_err_status_t status;
    size_t need;

    if (self->srtp != NULL || self->buf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpReceiver is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iy*", kwlist, &profile, &key))
        return -1;
    if (srtp_ready() < 0)
        goto fail;
    memset(&policy, 0, sizeof(policy));
    if (srtp_crypto_policy_set_from_profile_for_rtp(&policy.rtp, (srtp_profile_t)profile) !=
            srtp_err_status_ok ||
        srtp_crypto_policy_set_from_profile_for_rtcp(&policy.rtcp, (srtp_profile_t)profile) !=
            srtp_err_status_ok) {
        PyErr_Format(PyExc_ValueError, "unsupported SRTP profile %d", profile);
        goto fail;
    }
    need = srtp_profile_get_master_key_length((srtp_profile_t)profile) +
           srtp_profile_get_master_salt_length((srtp_profile_t)profile);
    if ((size_t)key.len != need) {
        PyErr_Format(PyExc_ValueError, "SRTP profile %d needs a %zu-byte key and salt, not %zd",
                     profile, need, key.len);
        goto fail;
    }
    policy.ssrc.type = ssrc_any_inbound;
    policy.key = (unsigned char *)key.buf; /* copied by srtp_create */
    policy.window_size = REPLAY_WINDOW;
    policy.allow_repeat_tx = 1;
    self->buf = PyMem_Malloc(MAX_DATAGRAM);
    if (self->buf == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    status = srtp_create(&self->srtp, &policy);
    if (status != srtp_err_status_ok) {
        self->srtp = NULL;
        PyErr_Format(PyExc_ValueError, "libsrtp refused the policy (status %d)", (int)status);
        goto fail;
    }
    PyBuffer_Release(&key);
    return 0;
fail:
    PyBuffer_Release(&key);
    return -1;
}

static void SrtpReceiver_dealloc(SrtpReceiver *self)
{
    if (self->srtp != NULL)
        srtp_dealloc(self->srtp);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Copy ``data`` in and unprotect it without the GIL; the plain length, or -1 when dropped
 * (counted). With ``rtcp`` 0 the plain packet is also parsed into ``h``. */
static Py_ssize_t unprotect(SrtpReceiver *self, Py_buffer *data, int rtcp, RtpHeader *h)
{
    int len = (int)data->len;
    int parsed = 0;
    srtp_err_status_t status;

    if (self->srtp == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpReceiver is not initialised");
        return -2;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpReceiver is in use by another thread");
        return -2;
    }
    if (data->len < RTP_HEADER || data->len > MAX_DATAGRAM) {
        self->malformed++;
        return -1;
    }
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    memcpy(self->buf, data->buf, (size_t)len);
    if (rtcp)
        status = srtp_unprotect_rtcp(self->srtp, self->buf, &len);
    else
        status = srtp_unprotect(self->srtp, self->buf, &len);
    if (status == srtp_err_status_ok && !rtcp)
        parsed = parse_rtp(self->buf, len, h);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (status == srtp_err_status_auth_fail) {
        self->auth_failed++;
        return -1;
    }
    if (status == srtp_err_status_replay_fail || status == srtp_err_status_replay_old) {
        self->replayed++;
        return -1;
    }
    if (status != srtp_err_status_ok || parsed < 0) {
        self->malformed++;
        return -1;
    }
    self->packets++;
    self->octets += (unsigned long long)data->len;
    return len;
}

static PyObject *SrtpReceiver_unprotect_rtp(SrtpReceiver *self, PyObject *arg)
{
    Py_buffer data;
    RtpHeader h;
    Py_ssize_t len;
    PyObject *csrc = NULL, *ext = NULL, *result = NULL;
    int i;

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    len = unprotect(self, &data, 0, &h);
    PyBuffer_Release(&data);
    if (len == -2)
        return NULL;
    if (len < 0)
        Py_RETURN_NONE;
    csrc = PyTuple_New(h.cc);
    if (csrc == NULL)
        return NULL;
    for (i = 0; i < h.cc; i++) {
        PyObject *value = PyLong_FromUnsignedLong(h.csrc[i]);
        if (value == NULL)
            goto done;
        PyTuple_SET_ITEM(csrc, i, value);
    }
    if (h.has_extension) {
        ext = PyBytes_FromStringAndSize((const char *)self->buf + h.ext_at, h.ext_len);
        if (ext == NULL)
            goto done;
    } else {
        ext = Py_NewRef(Py_None);
    }
    result = Py_BuildValue("(iiIkkOIOy#n)", h.marker, h.payload_type, h.seq, h.timestamp,
                           h.ssrc, csrc, h.ext_profile, ext,
                           (const char *)self->buf + h.payload_at, h.payload_len, h.padding);
done:
    Py_XDECREF(csrc);
    Py_XDECREF(ext);
    return result;
}

static PyObject *SrtpReceiver_unprotect_rtcp(SrtpReceiver *self, PyObject *arg)
{
    Py_buffer data;
    Py_ssize_t len;

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    len = unprotect(self, &data, 1, NULL);
    PyBuffer_Release(&data);
    if (len == -2)
        return NULL;
    if (len < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->buf, len);
}

static PyMethodDef SrtpReceiver_methods[] = {
    {"unprotect_rtp", (PyCFunction)SrtpReceiver_unprotect_rtp, METH_O,
     "The parsed fields of one SRTP packet, or None when it is dropped."},
    {"unprotect_rtcp", (PyCFunction)SrtpReceiver_unprotect_rtcp, METH_O,
     "One SRTCP compound packet in the clear, or None when it is dropped."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef SrtpReceiver_members[] = {
    {"packets", T_ULONGLONG, offsetof(SrtpReceiver, packets), READONLY, "packets let through"},
    {"octets", T_ULONGLONG, offsetof(SrtpReceiver, octets), READONLY, "their bytes, protected"},
    {"auth_failed", T_ULONGLONG, offsetof(SrtpReceiver, auth_failed), READONLY,
     "dropped: authentication failed"},
    {"replayed", T_ULONGLONG, offsetof(SrtpReceiver, replayed), READONLY,
     "dropped: replayed, or older than the replay window"},
    {"malformed", T_ULONGLONG, offsetof(SrtpReceiver, malformed), READONLY,
     "dropped: not SRTP, or not RTP once unprotected"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SrtpReceiverType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamserver._native.SrtpReceiver",
    .tp_doc = PyDoc_STR("SRTP/SRTCP unprotect and RTP parse for one DTLS transport."),
    .tp_basicsize = sizeof(SrtpReceiver),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SrtpReceiver_init,
    .tp_dealloc = (destructor)SrtpReceiver_dealloc,
    .tp_methods = SrtpReceiver_methods,
    .tp_members = SrtpReceiver_members,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "streamserver._native",
    .m_doc = "SceneLink's per-packet media path in C (issue 17).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *module;

    if (PyType_Ready(&SrtpReceiverType) < 0)
        return NULL;
    module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "SrtpReceiver", (PyObject *)&SrtpReceiverType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_DATAGRAM", MAX_DATAGRAM) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
