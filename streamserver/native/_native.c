/*
 * streamserver.native._native: the per-packet SRTP ingress in C (issue 17).
 *
 * One SrtpReceiver per connected DTLS transport, keyed with the same material aiortc
 * exports: it unprotects SRTP/SRTCP with libsrtp (replay window and rollover counter
 * included) and parses the RTP header exactly as aiortc's RtpPacket.parse, with the GIL
 * released for both. A datagram that fails authentication, is replayed, too old or
 * malformed comes back as None and is counted, never raised: the caller drops it and the
 * session goes on. The pure-Python reference is pylibsrtp + aiortc (streamserver.fastpath).
 *
 * One SrtpSender per viewer's DTLS transport: it builds each frame's RTP packets as aiortc's
 * sender serializes them, protects them and sends them in sendmmsg batches on the ICE
 * connection's own UDP socket, keeping the last HISTORY plain packets for retransmission
 * (streamserver.nativeegress).
 *
 * Also aiortc's H.264 and VP8 depayloaders, the same bytes and errors, for the receivers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <srtp2/srtp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "native.h"

#define MAX_DATAGRAM 65536 /* the largest UDP payload: every datagram fits */
#define RTP_HEADER 12
#define REPLAY_WINDOW 1024 /* as aiortc's policies */
#define HISTORY 128        /* packets kept for retransmission, as aiortc's RTP_HISTORY_SIZE */
#define BATCH 64           /* datagrams per sendmmsg call */
#define ROUTES 8           /* streams a receiver hands to their Assembler (a call has 2-4) */
#define NTP_UNIX_OFFSET_MS (2208988800LL * 1000) /* streamserver.fastclock.NTP_UNIX_OFFSET */

/* A stream (SSRC) whose packets of one payload type go straight to its Assembler. */
typedef struct {
    unsigned long ssrc;
    int payload_type;
    PyObject *assembler; /* owned; NULL for a free slot */
} Route;

typedef struct {
    PyObject_HEAD
    srtp_t srtp;
    unsigned char *buf; /* MAX_DATAGRAM bytes: the packet being unprotected */
    int busy;           /* a call is running with the GIL released */
    unsigned long long packets, octets, auth_failed, replayed, malformed;
    Route routes[ROUTES];
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

/* A libsrtp session for ``args`` (profile, key and salt), with aiortc's policy: any inbound or
 * any outbound SSRC, a 1,024-packet replay window, repeated sends allowed. NULL on error. */
static srtp_t make_session(PyObject *args, PyObject *kwds, srtp_ssrc_type_t direction)
{
    static char *kwlist[] = {"profile", "key", NULL};
    int profile;
    Py_buffer key;
    srtp_policy_t policy;
    srtp_err_status_t status;
    srtp_t session = NULL;
    size_t need;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iy*", kwlist, &profile, &key))
        return NULL;
    if (srtp_ready() < 0)
        goto done;
    memset(&policy, 0, sizeof(policy));
    if (srtp_crypto_policy_set_from_profile_for_rtp(&policy.rtp, (srtp_profile_t)profile) !=
            srtp_err_status_ok ||
        srtp_crypto_policy_set_from_profile_for_rtcp(&policy.rtcp, (srtp_profile_t)profile) !=
            srtp_err_status_ok) {
        PyErr_Format(PyExc_ValueError, "unsupported SRTP profile %d", profile);
        goto done;
    }
    need = srtp_profile_get_master_key_length((srtp_profile_t)profile) +
           srtp_profile_get_master_salt_length((srtp_profile_t)profile);
    if ((size_t)key.len != need) {
        PyErr_Format(PyExc_ValueError, "SRTP profile %d needs a %zu-byte key and salt, not %zd",
                     profile, need, key.len);
        goto done;
    }
    policy.ssrc.type = direction;
    policy.key = (unsigned char *)key.buf; /* copied by srtp_create */
    policy.window_size = REPLAY_WINDOW;
    policy.allow_repeat_tx = 1;
    status = srtp_create(&session, &policy);
    if (status != srtp_err_status_ok) {
        session = NULL;
        PyErr_Format(PyExc_ValueError, "libsrtp refused the policy (status %d)", (int)status);
    }
done:
    PyBuffer_Release(&key);
    return session;
}

static int SrtpReceiver_init(SrtpReceiver *self, PyObject *args, PyObject *kwds)
{
    if (self->srtp != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpReceiver is already initialised");
        return -1;
    }
    if (self->buf == NULL) {
        self->buf = PyMem_Malloc(MAX_DATAGRAM);
        if (self->buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    self->srtp = make_session(args, kwds, ssrc_any_inbound);
    return self->srtp == NULL ? -1 : 0;
}

static void SrtpReceiver_dealloc(SrtpReceiver *self)
{
    int i;

    for (i = 0; i < ROUTES; i++)
        Py_CLEAR(self->routes[i].assembler);
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

/* The header extension block of the plain packet in ``self->buf``, or None without one. */
static PyObject *extension_of(SrtpReceiver *self, const RtpHeader *h)
{
    if (!h->has_extension)
        return Py_NewRef(Py_None);
    return PyBytes_FromStringAndSize((const char *)self->buf + h->ext_at, h->ext_len);
}

/* The fields tuple of the plain packet in ``self->buf`` (RtpFields in the stub). */
static PyObject *fields_of(SrtpReceiver *self, const RtpHeader *h)
{
    PyObject *csrc = NULL, *ext = NULL, *result = NULL;
    int i;

    csrc = PyTuple_New(h->cc);
    if (csrc == NULL)
        return NULL;
    for (i = 0; i < h->cc; i++) {
        PyObject *value = PyLong_FromUnsignedLong(h->csrc[i]);
        if (value == NULL)
            goto done;
        PyTuple_SET_ITEM(csrc, i, value);
    }
    ext = extension_of(self, h);
    if (ext == NULL)
        goto done;
    result = Py_BuildValue("(iiIkkOIOy#n)", h->marker, h->payload_type, h->seq, h->timestamp,
                           h->ssrc, csrc, h->ext_profile, ext,
                           (const char *)self->buf + h->payload_at, h->payload_len, h->padding);
done:
    Py_XDECREF(csrc);
    Py_XDECREF(ext);
    return result;
}

/* One SRTP packet from Python unprotected and parsed into ``h``: 1, or 0 when it is dropped
 * (counted), or -1 with an exception set. */
static int unprotect_packet(SrtpReceiver *self, PyObject *arg, RtpHeader *h)
{
    Py_buffer data;
    Py_ssize_t len;

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return -1;
    len = unprotect(self, &data, 0, h);
    PyBuffer_Release(&data);
    return len == -2 ? -1 : len >= 0;
}

/* The plain packet in ``self->buf`` into its route's Assembler: None when nothing is to be
 * done, else (SSRC, the Assembler's answer, extension profile, extension block or None). */
static PyObject *assemble(SrtpReceiver *self, const RtpHeader *h, PyObject *assembler)
{
    PyObject *args[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    PyObject *answer = NULL, *ext = NULL, *result = NULL;
    struct timespec ts;
    int i;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic() on Linux */
    args[0] = PyLong_FromUnsignedLong(h->seq);
    args[1] = PyLong_FromUnsignedLong(h->timestamp);
    args[2] = Py_NewRef(h->marker ? Py_True : Py_False);
    args[3] = PyLong_FromLong(h->payload_type);
    args[4] = PyBytes_FromStringAndSize((const char *)self->buf + h->payload_at, h->payload_len);
    args[5] = PyFloat_FromDouble((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
    for (i = 0; i < 6; i++)
        if (args[i] == NULL)
            goto done;
    answer = assembler_add(assembler, args, 6);
    if (answer == NULL)
        goto done;
    if (PyTuple_GET_ITEM(answer, 0) == Py_False && PyTuple_GET_ITEM(answer, 1) == Py_None &&
        PyTuple_GET_ITEM(answer, 2) == Py_None) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    ext = extension_of(self, h);
    if (ext == NULL)
        goto done;
    result = Py_BuildValue("(kOIO)", h->ssrc, answer, h->ext_profile, ext);
    if (result != NULL && PyTuple_GET_ITEM(answer, 0) == Py_False &&
        PyTuple_GET_ITEM(answer, 2) == Py_None) { /* frames only: they may wait */
        struct timespec wall;
        int kept;
        clock_gettime(CLOCK_REALTIME, &wall); /* aiortc.clock.current_ms (fastclock) */
        kept = assembler_keep(assembler, result,
                              (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 +
                                  NTP_UNIX_OFFSET_MS);
        if (kept < 0)
            PyErr_Clear(); /* out of memory: Python takes it now (after what was kept) */
        else if (kept > 0)
            Py_SETREF(result, Py_NewRef(Py_None));
    }
done:
    for (i = 0; i < 6; i++)
        Py_XDECREF(args[i]);
    Py_XDECREF(answer);
    Py_XDECREF(ext);
    return result;
}

static PyObject *SrtpReceiver_receive(SrtpReceiver *self, PyObject *arg)
{
    RtpHeader h;
    int i, got = unprotect_packet(self, arg, &h);

    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    for (i = 0; i < ROUTES; i++) {
        Route *route = &self->routes[i];
        if (route->assembler != NULL && route->ssrc == h.ssrc) {
            if (route->payload_type != h.payload_type)
                break;
            return assemble(self, &h, route->assembler);
        }
    }
    return fields_of(self, &h);
}

static PyObject *SrtpReceiver_route(SrtpReceiver *self, PyObject *args)
{
    unsigned long ssrc;
    int payload_type, i, free_slot = -1;
    PyObject *assembler;

    if (!PyArg_ParseTuple(args, "kiO:route", &ssrc, &payload_type, &assembler))
        return NULL;
    if (assembler != Py_None && !PyObject_TypeCheck(assembler, &AssemblerType)) {
        PyErr_Format(PyExc_TypeError, "route() needs an Assembler or None, not %.100s",
                     Py_TYPE(assembler)->tp_name);
        return NULL;
    }
    for (i = 0; i < ROUTES; i++) {
        Route *route = &self->routes[i];
        if (route->assembler != NULL && route->ssrc == ssrc) {
            Py_CLEAR(route->assembler);
            free_slot = i;
            break;
        }
        if (route->assembler == NULL && free_slot < 0)
            free_slot = i;
    }
    if (assembler == Py_None)
        Py_RETURN_TRUE;
    if (free_slot < 0)
        Py_RETURN_FALSE; /* full: receive() goes on giving this stream's fields */
    self->routes[free_slot].ssrc = ssrc;
    self->routes[free_slot].payload_type = payload_type;
    self->routes[free_slot].assembler = Py_NewRef(assembler);
    Py_RETURN_TRUE;
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
    {"receive", (PyCFunction)SrtpReceiver_receive, METH_O,
     "One SRTP packet unprotected and parsed: None when it is dropped; for a routed stream, "
     "None when its Assembler has nothing to be done, else (ssrc, the Assembler's answer, "
     "extension profile, extension); for any other, its fields."},
    {"route", (PyCFunction)SrtpReceiver_route, METH_VARARGS,
     "route(ssrc, payload_type, assembler): hand that stream's packets to the Assembler (None: "
     "stop); False when the table is full."},
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
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamserver.native._native.SrtpReceiver",
    .tp_doc = PyDoc_STR("SRTP/SRTCP unprotect and RTP parse for one DTLS transport."),
    .tp_basicsize = sizeof(SrtpReceiver),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SrtpReceiver_init,
    .tp_dealloc = (destructor)SrtpReceiver_dealloc,
    .tp_methods = SrtpReceiver_methods,
    .tp_members = SrtpReceiver_members,
};

/* A socket's datagrams, sorted before any Python runs (issue 17): SRTP media goes to the
 * transport's SrtpReceiver here, and Python is called only for what receive() leaves to it
 * (``answered``) or for any other datagram (``fallback``: STUN, DTLS, SRTCP). It stands in
 * the place of a datagram protocol's datagram_received(data, addr), so a media packet of a
 * routed stream costs no Python frame at all. */
typedef struct {
    PyObject_HEAD
    SrtpReceiver *receiver; /* owned */
    PyObject *answered;     /* owned: answered(answer) for receive()'s non-None answers */
    PyObject *fallback;     /* owned: fallback(data, addr) for every other datagram */
    unsigned long long packets, octets; /* SRTP datagrams taken here (take_counts) */
} Demux;

static int Demux_init(Demux *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"receiver", "answered", "fallback", NULL};
    PyObject *receiver, *answered, *fallback;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO", kwlist, &SrtpReceiverType, &receiver,
                                     &answered, &fallback))
        return -1;
    if (!PyCallable_Check(answered) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "answered and fallback must be callable");
        return -1;
    }
    Py_XSETREF(self->receiver, (SrtpReceiver *)Py_NewRef(receiver));
    Py_XSETREF(self->answered, Py_NewRef(answered));
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    return 0;
}

/* It holds its protocol's bound method, and the protocol holds it: a cycle the collector
 * must be able to break. */
static int Demux_traverse(Demux *self, visitproc visit, void *arg)
{
    Py_VISIT(self->receiver);
    Py_VISIT(self->answered);
    Py_VISIT(self->fallback);
    return 0;
}

static int Demux_clear(Demux *self)
{
    Py_CLEAR(self->receiver);
    Py_CLEAR(self->answered);
    Py_CLEAR(self->fallback);
    return 0;
}

static void Demux_dealloc(Demux *self)
{
    PyObject_GC_UnTrack(self);
    Demux_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* SRTP (RFC 7983: first byte 128-191) that is not SRTCP (aiortc's is_rtcp: second byte
 * 192-208). */
static int is_srtp_media(PyObject *data)
{
    const unsigned char *p;

    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) < 2)
        return 0;
    p = (const unsigned char *)PyBytes_AS_STRING(data);
    return p[0] > 127 && p[0] < 192 && !(p[1] >= 192 && p[1] <= 208);
}

static PyObject *Demux_call(Demux *self, PyObject *args, PyObject *kwds)
{
    PyObject *data, *answer, *result = NULL;
    PyObject *receiver = (PyObject *)self->receiver, *answered = self->answered;
    PyObject *fallback = self->fallback;

    if (receiver == NULL || answered == NULL || fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Demux not initialised");
        return NULL;
    }
    /* Our own references for the call: Python code it runs may drop the Demux's. */
    Py_INCREF(receiver);
    Py_INCREF(answered);
    Py_INCREF(fallback);
    if (kwds != NULL || PyTuple_GET_SIZE(args) != 2) {
        result = PyObject_Call(fallback, args, kwds);
        goto done;
    }
    data = PyTuple_GET_ITEM(args, 0);
    if (!is_srtp_media(data)) {
        result = PyObject_Call(fallback, args, NULL);
        goto done;
    }
    self->packets++;
    self->octets += (unsigned long long)PyBytes_GET_SIZE(data);
    answer = SrtpReceiver_receive((SrtpReceiver *)receiver, data);
    if (answer == NULL) {
        /* An Exception drops the packet (Python logs it); anything else goes up. */
        PyObject *type, *value, *traceback;
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto done;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (value == NULL)
            value = Py_NewRef(Py_None);
        else if (traceback != NULL)
            PyException_SetTraceback(value, traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        answer = value;
    }
    if (answer == Py_None) {
        Py_DECREF(answer);
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyObject_CallOneArg(answered, answer);
    Py_DECREF(answer);
done:
    Py_DECREF(receiver);
    Py_DECREF(answered);
    Py_DECREF(fallback);
    return result;
}

static PyObject *Demux_take_counts(Demux *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *counts = Py_BuildValue("(KK)", self->packets, self->octets);

    if (counts != NULL)
        self->packets = self->octets = 0;
    return counts;
}

static PyMethodDef Demux_methods[] = {
    {"take_counts", (PyCFunction)Demux_take_counts, METH_NOARGS,
     "(packets, octets) of SRTP taken here since the last call, for the transport's stats."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DemuxType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamserver.native._native.Demux",
    .tp_doc = PyDoc_STR("Demux(receiver, answered, fallback): a datagram_received(data, addr) "
                        "that takes SRTP media in C."),
    .tp_basicsize = sizeof(Demux),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Demux_init,
    .tp_dealloc = (destructor)Demux_dealloc,
    .tp_traverse = (traverseproc)Demux_traverse,
    .tp_clear = (inquiry)Demux_clear,
    .tp_call = (ternaryfunc)Demux_call,
    .tp_methods = Demux_methods,
};

typedef struct {
    unsigned char *data; /* the plain packet as sent, or NULL */
    Py_ssize_t len, header;
    unsigned seq;
} Sent;

typedef struct {
    PyObject_HEAD
    srtp_t srtp;
    int busy;
    int fd; /* -1 until set_destination */
    struct sockaddr_storage dest;
    socklen_t dest_len;
    Sent history[HISTORY];
    unsigned long long packets, octets, wire_octets, send_errors;
} SrtpSender;

static int SrtpSender_init(SrtpSender *self, PyObject *args, PyObject *kwds)
{
    if (self->srtp != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpSender is already initialised");
        return -1;
    }
    self->fd = -1;
    self->srtp = make_session(args, kwds, ssrc_any_outbound);
    return self->srtp == NULL ? -1 : 0;
}

static void SrtpSender_dealloc(SrtpSender *self)
{
    int i;
    if (self->srtp != NULL)
        srtp_dealloc(self->srtp);
    for (i = 0; i < HISTORY; i++)
        free(self->history[i].data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sender_ready(SrtpSender *self, int need_destination)
{
    if (self->srtp == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpSender is not initialised");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpSender is in use by another thread");
        return -1;
    }
    if (need_destination && self->fd < 0) {
        PyErr_SetString(PyExc_RuntimeError, "SrtpSender has no destination");
        return -1;
    }
    return 0;
}

static PyObject *SrtpSender_set_destination(SrtpSender *self, PyObject *args)
{
    int fd, port;
    const char *host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&self->dest;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&self->dest;

    if (!PyArg_ParseTuple(args, "isi", &fd, &host, &port))
        return NULL;
    if (sender_ready(self, 0) < 0)
        return NULL;
    if (fd < 0 || port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "bad socket or port");
        return NULL;
    }
    memset(&self->dest, 0, sizeof(self->dest));
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        self->dest_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        self->dest_len = sizeof(*v6);
    } else {
        PyErr_Format(PyExc_ValueError, "not an IP address: %s", host);
        return NULL;
    }
    self->fd = fd;
    Py_RETURN_NONE;
}

static void put_header(unsigned char *p, int extension, int marker, int payload_type,
                       unsigned seq, unsigned long timestamp, unsigned long ssrc)
{
    p[0] = 0x80 | (extension ? 0x10 : 0);
    p[1] = (unsigned char)((marker ? 0x80 : 0) | (payload_type & 0x7F));
    p[2] = (unsigned char)(seq >> 8);
    p[3] = (unsigned char)seq;
    p[4] = (unsigned char)(timestamp >> 24);
    p[5] = (unsigned char)(timestamp >> 16);
    p[6] = (unsigned char)(timestamp >> 8);
    p[7] = (unsigned char)timestamp;
    p[8] = (unsigned char)(ssrc >> 24);
    p[9] = (unsigned char)(ssrc >> 16);
    p[10] = (unsigned char)(ssrc >> 8);
    p[11] = (unsigned char)ssrc;
}

/* Keep a copy of plain packet ``p`` for retransmission; -1 when out of memory. */
static int remember(SrtpSender *self, const unsigned char *p, Py_ssize_t len, Py_ssize_t header,
                    unsigned seq)
{
    Sent *slot = &self->history[seq % HISTORY];
    unsigned char *copy = malloc((size_t)len);
    if (copy == NULL)
        return -1;
    memcpy(copy, p, (size_t)len);
    free(slot->data);
    slot->data = copy;
    slot->len = len;
    slot->header = header;
    slot->seq = seq;
    return 0;
}

static int would_block(int error)
{
    return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS;
}

/* Protect ``count`` plain packets in place and, when ``direct``, send them; the index of the
 * first one left unsent (the socket's buffer is full, or not ``direct``: the caller's event
 * loop still holds datagrams to send before them). Runs without the GIL. */
static Py_ssize_t protect_and_send(SrtpSender *self, unsigned char **bufs, int *lens,
                                   Py_ssize_t count, int direct)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    Py_ssize_t i, at = 0;

    for (i = 0; i < count; i++) {
        if (srtp_protect(self->srtp, bufs[i], &lens[i]) != srtp_err_status_ok) {
            lens[i] = -1; /* dropped, counted below */
            self->send_errors++;
        }
    }
    if (!direct)
        return 0;
    while (at < count) {
        int batch = 0, sent;
        Py_ssize_t index[BATCH];
        for (i = at; i < count && batch < BATCH; i++) {
            if (lens[i] < 0)
                continue;
            iovs[batch].iov_base = bufs[i];
            iovs[batch].iov_len = (size_t)lens[i];
            memset(&msgs[batch], 0, sizeof(msgs[batch]));
            msgs[batch].msg_hdr.msg_name = &self->dest;
            msgs[batch].msg_hdr.msg_namelen = self->dest_len;
            msgs[batch].msg_hdr.msg_iov = &iovs[batch];
            msgs[batch].msg_hdr.msg_iovlen = 1;
            index[batch++] = i;
        }
        if (batch == 0)
            return count;
        sent = sendmmsg(self->fd, msgs, (unsigned)batch, 0);
        if (sent < 0) {
            if (would_block(errno))
                return index[0];
            self->send_errors++; /* this datagram is lost, as asyncio's sendto would lose it */
            lens[index[0]] = -1;
            at = index[0] + 1;
            continue;
        }
        at = sent == batch ? i : index[sent];
    }
    return count;
}

static PyObject *SrtpSender_send_frame(SrtpSender *self, PyObject *args)
{
    PyObject *payloads, *seqfast = NULL, *leftovers = NULL, *result = NULL;
    int payload_type, ext_profile, direct, *lens = NULL;
    unsigned seq;
    unsigned long timestamp, ssrc;
    Py_buffer ext;
    Py_ssize_t count = 0, i, header, unsent = 0;
    unsigned char **bufs = NULL;
    unsigned long long wire = 0, octets = 0;

    if (!PyArg_ParseTuple(args, "OiIkkiy*p", &payloads, &payload_type, &seq, &timestamp, &ssrc,
                          &ext_profile, &ext, &direct))
        return NULL;
    if (sender_ready(self, 1) < 0)
        goto done;
    if (ext.len % 4 != 0 || ext.len > 4 * 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "header extension length is not 32-bit words");
        goto done;
    }
    seqfast = PySequence_Fast(payloads, "payloads must be a sequence of bytes");
    if (seqfast == NULL)
        goto done;
    count = PySequence_Fast_GET_SIZE(seqfast);
    header = RTP_HEADER + (ext.len ? 4 + ext.len : 0);
    for (i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seqfast, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "payloads must be bytes");
            goto done;
        }
        if (header + PyBytes_GET_SIZE(item) + SRTP_MAX_TRAILER_LEN > MAX_DATAGRAM) {
            PyErr_SetString(PyExc_ValueError, "RTP packet larger than a UDP datagram");
            goto done;
        }
    }
    bufs = PyMem_Calloc((size_t)count + 1, sizeof(*bufs));
    lens = PyMem_Calloc((size_t)count + 1, sizeof(*lens));
    if (bufs == NULL || lens == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seqfast, i);
        Py_ssize_t size = PyBytes_GET_SIZE(item);
        unsigned char *p = PyMem_Malloc((size_t)(header + size + SRTP_MAX_TRAILER_LEN));
        unsigned packet_seq = (seq + (unsigned)i) & 0xFFFF;
        if (p == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        bufs[i] = p; /* freed at the end, with the others */
        put_header(p, ext.len > 0, i == count - 1, payload_type, packet_seq, timestamp, ssrc);
        if (ext.len) {
            p[12] = (unsigned char)(ext_profile >> 8);
            p[13] = (unsigned char)ext_profile;
            p[14] = (unsigned char)((ext.len / 4) >> 8);
            p[15] = (unsigned char)(ext.len / 4);
            memcpy(p + 16, ext.buf, (size_t)ext.len);
        }
        memcpy(p + header, PyBytes_AS_STRING(item), (size_t)size);
        lens[i] = (int)(header + size);
        octets += (unsigned long long)size;
        if (remember(self, p, lens[i], header, packet_seq) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    unsent = protect_and_send(self, bufs, lens, count, direct);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    leftovers = PyList_New(0);
    if (leftovers == NULL)
        goto done;
    for (i = 0; i < count; i++) {
        if (lens[i] < 0)
            continue;
        wire += (unsigned long long)lens[i];
        if (i >= unsent) {
            PyObject *data = PyBytes_FromStringAndSize((const char *)bufs[i], lens[i]);
            if (data == NULL || PyList_Append(leftovers, data) < 0) {
                Py_XDECREF(data);
                goto done;
            }
            Py_DECREF(data);
        }
    }
    self->packets += (unsigned long long)count;
    self->octets += octets;
    self->wire_octets += wire;
    result = Py_BuildValue("(KO)", wire, leftovers);
done:
    for (i = 0; bufs != NULL && i < count; i++)
        PyMem_Free(bufs[i]);
    PyMem_Free(bufs);
    PyMem_Free(lens);
    Py_XDECREF(seqfast);
    Py_XDECREF(leftovers);
    PyBuffer_Release(&ext);
    return result;
}

static PyObject *SrtpSender_retransmit(SrtpSender *self, PyObject *args)
{
    unsigned seq;
    PyObject *rtx = Py_None;
    int rtx_type = 0;
    unsigned rtx_seq = 0;
    unsigned long rtx_ssrc = 0;
    Sent *slot;
    unsigned char *p;
    int len;
    srtp_err_status_t status;
    PyObject *result;

    if (!PyArg_ParseTuple(args, "I|O", &seq, &rtx))
        return NULL;
    if (sender_ready(self, 0) < 0)
        return NULL;
    if (rtx != Py_None && !PyArg_ParseTuple(rtx, "iIk", &rtx_type, &rtx_seq, &rtx_ssrc))
        return NULL;
    slot = &self->history[seq % HISTORY];
    if (slot->data == NULL || slot->seq != seq)
        Py_RETURN_NONE;
    p = PyMem_Malloc((size_t)(slot->len + 2 + SRTP_MAX_TRAILER_LEN));
    if (p == NULL)
        return PyErr_NoMemory();
    if (rtx == Py_None) {
        memcpy(p, slot->data, (size_t)slot->len);
        len = (int)slot->len;
    } else { /* RFC 4588: the original sequence number, then the original payload */
        memcpy(p, slot->data, (size_t)slot->header);
        put_header(p, slot->data[0] & 0x10, slot->data[1] & 0x80, rtx_type, rtx_seq & 0xFFFF,
                   be32(slot->data + 4), rtx_ssrc);
        p[slot->header] = (unsigned char)(seq >> 8);
        p[slot->header + 1] = (unsigned char)seq;
        memcpy(p + slot->header + 2, slot->data + slot->header,
               (size_t)(slot->len - slot->header));
        len = (int)slot->len + 2;
    }
    status = srtp_protect(self->srtp, p, &len);
    if (status != srtp_err_status_ok) {
        PyMem_Free(p);
        self->send_errors++;
        Py_RETURN_NONE;
    }
    result = PyBytes_FromStringAndSize((const char *)p, len);
    PyMem_Free(p);
    return result;
}

static PyMethodDef SrtpSender_methods[] = {
    {"set_destination", (PyCFunction)SrtpSender_set_destination, METH_VARARGS,
     "Send on socket ``fd`` to (host, port) from now on."},
    {"send_frame", (PyCFunction)SrtpSender_send_frame, METH_VARARGS,
     "Build, protect and send one frame's packets; (wire bytes, datagrams left unsent)."},
    {"retransmit", (PyCFunction)SrtpSender_retransmit, METH_VARARGS,
     "A packet sent lately, protected again (wrapped as RTX if asked), or None."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef SrtpSender_members[] = {
    {"packets", T_ULONGLONG, offsetof(SrtpSender, packets), READONLY, "RTP packets built"},
    {"octets", T_ULONGLONG, offsetof(SrtpSender, octets), READONLY, "their payload bytes"},
    {"wire_octets", T_ULONGLONG, offsetof(SrtpSender, wire_octets), READONLY,
     "their bytes once protected"},
    {"send_errors", T_ULONGLONG, offsetof(SrtpSender, send_errors), READONLY,
     "packets lost to a failed protect or send"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SrtpSenderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamserver.native._native.SrtpSender",
    .tp_doc = PyDoc_STR("RTP build, SRTP protect and sendmmsg for one viewer's transport."),
    .tp_basicsize = sizeof(SrtpSender),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SrtpSender_init,
    .tp_dealloc = (destructor)SrtpSender_dealloc,
    .tp_methods = SrtpSender_methods,
    .tp_members = SrtpSender_members,
};

/* aiortc's h264_depayload (codecs/h264.py), the same bytes and the same ValueErrors: a single
 * NAL unit, an FU-A fragment or a STAP-A aggregate, as Annex B with 4-byte start codes. */
PyObject *depayload_h264(PyObject *module, PyObject *arg)
{
    static const unsigned char start[4] = {0, 0, 0, 1};
    Py_buffer b;
    const unsigned char *d;
    Py_ssize_t n, pos = 1, size = 0;
    PyObject *out = NULL;
    unsigned char *o;
    int type;

    (void)module;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    d = b.buf;
    n = b.len;
    if (n < 2) {
        PyErr_SetString(PyExc_ValueError, "NAL unit is too short");
        goto done;
    }
    type = d[0] & 0x1F;
    if (type >= 1 && type <= 23) {
        out = PyBytes_FromStringAndSize(NULL, n + 4);
        if (out != NULL) {
            o = (unsigned char *)PyBytes_AS_STRING(out);
            memcpy(o, start, 4);
            memcpy(o + 4, d, (size_t)n);
        }
    } else if (type == 28) { /* FU-A */
        int first = d[1] & 0x80;
        out = PyBytes_FromStringAndSize(NULL, (first ? 5 : 0) + n - 2);
        if (out != NULL) {
            o = (unsigned char *)PyBytes_AS_STRING(out);
            if (first) {
                memcpy(o, start, 4);
                o[4] = (unsigned char)((d[0] & 0xE0) | (d[1] & 0x1F));
                o += 5;
            }
            memcpy(o, d + 2, (size_t)(n - 2));
        }
    } else if (type == 24) { /* STAP-A: 2-byte sizes, each NAL unit gets a start code */
        while (pos < n) {
            Py_ssize_t unit;
            if (n < pos + 2) {
                PyErr_SetString(PyExc_ValueError, "STAP-A length field is truncated");
                goto done;
            }
            unit = ((Py_ssize_t)d[pos] << 8) | d[pos + 1];
            pos += 2 + unit;
            if (n < pos) {
                PyErr_SetString(PyExc_ValueError, "STAP-A data is truncated");
                goto done;
            }
            size += 4 + unit;
        }
        out = PyBytes_FromStringAndSize(NULL, size);
        if (out != NULL) {
            o = (unsigned char *)PyBytes_AS_STRING(out);
            for (pos = 1; pos < n;) {
                Py_ssize_t unit = ((Py_ssize_t)d[pos] << 8) | d[pos + 1];
                memcpy(o, start, 4);
                memcpy(o + 4, d + pos + 2, (size_t)unit);
                o += 4 + unit;
                pos += 2 + unit;
            }
        }
    } else {
        PyErr_Format(PyExc_ValueError, "NAL unit type %d is not supported", type);
    }
done:
    PyBuffer_Release(&b);
    return out;
}

/* aiortc's vp8_depayload (codecs/vpx.py): the frame data after the VP8 payload descriptor,
 * with the same ValueErrors for a truncated one. */
PyObject *depayload_vp8(PyObject *module, PyObject *arg)
{
    Py_buffer b;
    const unsigned char *d;
    Py_ssize_t n, pos = 1;
    PyObject *out = NULL;
    const char *error = NULL;

    (void)module;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    d = b.buf;
    n = b.len;
    if (n < 1) {
        error = "VPX descriptor is too short";
    } else if (d[0] & 0x80) { /* extended control bits */
        int i, l, t, k;
        if (n < pos + 1) {
            error = "VPX descriptor has truncated extended bits";
            goto done;
        }
        i = d[pos] & 0x80;
        l = d[pos] & 0x40;
        t = d[pos] & 0x20;
        k = d[pos] & 0x10;
        pos++;
        if (i) {
            if (n < pos + 1) {
                error = "VPX descriptor has truncated PictureID";
                goto done;
            }
            if (d[pos] & 0x80) {
                if (n < pos + 2) {
                    error = "VPX descriptor has truncated long PictureID";
                    goto done;
                }
                pos += 2;
            } else {
                pos += 1;
            }
        }
        if (l) {
            if (n < pos + 1) {
                error = "VPX descriptor has truncated TL0PICIDX";
                goto done;
            }
            pos++;
        }
        if (t || k) {
            if (n < pos + 1) {
                error = "VPX descriptor has truncated T/K";
                goto done;
            }
            pos++;
        }
    }
done:
    if (error != NULL)
        PyErr_SetString(PyExc_ValueError, error);
    else
        out = PyBytes_FromStringAndSize((const char *)d + pos, n - pos);
    PyBuffer_Release(&b);
    return out;
}

static PyMethodDef native_functions[] = {
    {"depayload_h264", depayload_h264, METH_O, "An H.264 RTP payload as Annex B (as aiortc)."},
    {"depayload_vp8", depayload_vp8, METH_O, "A VP8 RTP payload's frame data (as aiortc)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "streamserver.native._native",
    .m_doc = "SceneLink's per-packet media path in C (issue 17).",
    .m_size = -1,
    .m_methods = native_functions,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *module;

    if (PyType_Ready(&SrtpReceiverType) < 0 || PyType_Ready(&SrtpSenderType) < 0 ||
        PyType_Ready(&AssemblerType) < 0 || PyType_Ready(&DemuxType) < 0)
        return NULL;
    module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "SrtpReceiver", (PyObject *)&SrtpReceiverType) < 0 ||
        PyModule_AddObjectRef(module, "SrtpSender", (PyObject *)&SrtpSenderType) < 0 ||
        PyModule_AddObjectRef(module, "Assembler", (PyObject *)&AssemblerType) < 0 ||
        PyModule_AddObjectRef(module, "Demux", (PyObject *)&DemuxType) < 0 ||
        PyModule_AddIntConstant(module, "MAX_DATAGRAM", MAX_DATAGRAM) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
