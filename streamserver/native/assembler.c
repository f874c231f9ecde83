/*
 * streamserver.native._native.Assembler: one received RTP stream's NACK bookkeeping,
 * depayloading, frame reassembly and receiver statistics in C (issue 17), so that Python sees
 * frames (~80/s per caller) instead of every packet.
 *
 * add() does for one packet exactly what aiortc 1.16.0's RTCRtpReceiver._handle_rtp_packet
 * does after its codec lookup, with SceneLink's CompletingJitterBuffer
 * (streamserver/reassembly.py) in place of aiortc's JitterBuffer:
 * StreamStatistics.add, NackGenerator.add, depayload, then the buffer's add. Each part below
 * follows its Python original step by step, names included, since the differential test
 * (tests/streamserver/test_native_assembler.py) holds them to the same results; a comment
 * says where the C representation differs and why that is equivalent.
 *
 * Packets are held as owned copies of their depayloaded bytes, one per buffer slot; the GIL
 * is held throughout (a packet's work is far cheaper than releasing it).
 */
#include "native.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MISORDER 100          /* aiortc.jitterbuffer */
#define RTP_HISTORY_SIZE 128      /* aiortc.rtp: the NACK generator's window */
#define PACKETS_LOST_MIN (-(1LL << 23))
#define PACKETS_LOST_MAX ((1LL << 23) - 1)
#define AUDIO_REORDER_PACKETS 3   /* streamserver.reassembly */
#define STALE_WINDOW (1UL << 24)  /* streamserver.reassembly */
#define VIDEO_GAP_WAIT_S 0.3      /* streamserver.reassembly */
#define VIDEO_CAPACITY 512        /* aiortc's receiver: JitterBuffer(capacity=512, is_video=True) */
#define AUDIO_CAPACITY 16         /* and JitterBuffer(capacity=16, prefetch=4) */

enum { DEPAYLOAD_NONE = 0, DEPAYLOAD_H264 = 1, DEPAYLOAD_VP8 = 2 };

/* One jitter buffer slot: aiortc's list entry, None or an RtpPacket with its ``_data``. */
typedef struct {
    unsigned char *data; /* owned copy of the depayloaded bytes; NULL when empty */
    Py_ssize_t len;
    uint32_t timestamp;
    int payload_type, marker, present;
} Slot;

/* CompletingJitterBuffer._missing is a dict {sequence number: since}. It is read only for
 * numbers inside the buffer's window, but entries outside it may outlive a move of the window
 * and be read again later, so it is kept whole: 256 pages of 256 numbers, a page allocated
 * while it holds an entry (normally two or three pages: a window is 512 numbers). */
typedef struct {
    int count;
    uint64_t present[4];
    double since[256];
} MissingPage;

typedef struct {
    PyObject_HEAD
    int ready, video, depayloader, capacity;
    Slot *slots;

    /* JitterBuffer and CompletingJitterBuffer */
    int has_origin, has_released, has_head, gave_up;
    int dropped; /* packets were thrown away (restart, overflow) since the last frame let out */
    int has_expected;
    unsigned origin, head, expected; /* expected: the number after the last run taken out */
    uint32_t released;
    double asked_at;
    MissingPage *missing[256];
    long missing_count;

    /* NackGenerator: ``missing`` only ever holds the RTP_HISTORY_SIZE numbers just behind
     * max_seq (truncate() drops the rest at every add), so it is a ring keyed by seq % 128. */
    int nack_has_max, nack_count;
    unsigned nack_max;
    unsigned short nack_seq[RTP_HISTORY_SIZE];
    unsigned char nack_on[RTP_HISTORY_SIZE];

    /* StreamStatistics */
    long clockrate;
    int has_seq, has_last;
    unsigned base_seq, max_seq;
    long long cycles, packets_received, jitter_q4, last_arrival, expected_prior, received_prior;
    uint32_t last_timestamp;

    unsigned long long octets; /* payload bytes added with stats since take_octets() */

    /* Held answers (SrtpReceiver.receive, while ``hold``): frames nobody needs this instant,
     * kept for Python to take in a batch (take_held) instead of a call per frame. */
    int hold;
    PyObject *held; /* list of (answer, arrival ms, octets), or NULL */
} Assembler;

static unsigned u16(long long value)
{
    return (unsigned)(value & 0xFFFF);
}

/* aiortc.utils.uint16_gt */
static int u16_gt(unsigned a, unsigned b)
{
    return (a < b && b - a > 0x8000) || (a > b && a - b < 0x8000);
}

/* streamserver.reassembly.is_stale */
static int is_stale(const Assembler *self, uint32_t timestamp)
{
    return self->has_released && ((self->released - timestamp) & 0xFFFFFFFFUL) < STALE_WINDOW;
}

/* ---- CompletingJitterBuffer._missing --------------------------------------------------- */

static int missing_get(const Assembler *self, unsigned seq, double *since)
{
    const MissingPage *page = self->missing[seq >> 8];
    unsigned i = seq & 0xFF;
    if (page == NULL || !(page->present[i >> 6] & (1ULL << (i & 63))))
        return 0;
    *since = page->since[i];
    return 1;
}

static int missing_set(Assembler *self, unsigned seq, double since)
{
    MissingPage *page = self->missing[seq >> 8];
    unsigned i = seq & 0xFF;
    if (page == NULL) {
        page = PyMem_Calloc(1, sizeof(*page));
        if (page == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->missing[seq >> 8] = page;
    }
    if (!(page->present[i >> 6] & (1ULL << (i & 63)))) {
        page->present[i >> 6] |= 1ULL << (i & 63);
        page->count++;
        self->missing_count++;
    }
    page->since[i] = since;
    return 0;
}

static void missing_pop(Assembler *self, unsigned seq)
{
    MissingPage *page = self->missing[seq >> 8];
    unsigned i = seq & 0xFF;
    if (page == NULL || !(page->present[i >> 6] & (1ULL << (i & 63))))
        return;
    page->present[i >> 6] &= ~(1ULL << (i & 63));
    self->missing_count--;
    if (--page->count == 0) {
        PyMem_Free(page);
        self->missing[seq >> 8] = NULL;
    }
}

static void missing_clear(Assembler *self)
{
    int p;
    for (p = 0; p < 256; p++) {
        PyMem_Free(self->missing[p]);
        self->missing[p] = NULL;
    }
    self->missing_count = 0;
}

/* _forget_missing_behind: drop every entry outside [origin, origin + capacity). */
static void forget_missing_behind(Assembler *self, unsigned origin)
{
    unsigned p, i;
    for (p = 0; p < 256 && self->missing_count; p++) {
        if (self->missing[p] == NULL)
            continue;
        for (i = 0; i < 256 && self->missing[p] != NULL; i++) {
            unsigned seq = (p << 8) | i;
            if (u16((long long)seq - origin) >= (unsigned)self->capacity)
                missing_pop(self, seq);
        }
    }
}

/* ---- JitterBuffer ------------------------------------------------------------------------ */

static Slot *slot_at(Assembler *self, unsigned long position)
{
    return &self->slots[position & (unsigned long)(self->capacity - 1)];
}

static void slot_clear(Slot *slot)
{
    PyMem_Free(slot->data);
    slot->data = NULL;
    slot->len = 0;
    slot->present = 0;
}

/* JitterBuffer.remove; how many of the slots held a packet. */
static int buffer_remove(Assembler *self, int count)
{
    int i, held = 0;
    for (i = 0; i < count; i++) {
        Slot *slot = slot_at(self, self->origin);
        held += slot->present;
        slot_clear(slot);
        self->origin = u16((long long)self->origin + 1);
    }
    return held;
}

/* JitterBuffer.smart_remove: whole frames only; 1 when it emptied the buffer. */
static int smart_remove(Assembler *self, long count)
{
    int i, have_timestamp = 0;
    uint32_t timestamp = 0;
    for (i = 0; i < self->capacity; i++) {
        Slot *slot = slot_at(self, self->origin);
        if (slot->present) {
            if (i >= count && (!have_timestamp || timestamp != slot->timestamp))
                break;
            timestamp = slot->timestamp;
            have_timestamp = 1;
            self->dropped = 1;
        }
        slot_clear(slot);
        self->origin = u16((long long)self->origin + 1);
        if (i == self->capacity - 1)
            return 1;
    }
    return 0;
}

/* ---- CompletingJitterBuffer ---------------------------------------------------------------- */

/* _resets_at: aiortc's add() starts the buffer afresh at ``seq``. */
static int resets_at(const Assembler *self, unsigned seq)
{
    unsigned delta, misorder;
    if (!self->has_origin)
        return 1;
    delta = u16((long long)seq - self->origin);
    misorder = u16((long long)self->origin - seq);
    return misorder < delta && misorder >= MAX_MISORDER;
}

/* _track_gaps; -1 when out of memory. */
static int track_gaps(Assembler *self, unsigned seq, double now)
{
    if (!self->has_head || resets_at(self, seq)) {
        self->head = seq;
        self->has_head = 1;
        missing_clear(self);
        return 0;
    }
    if (u16_gt(seq, self->head)) {
        long skipped = (long)u16((long long)seq - self->head) - 1, i;
        long last = skipped < self->capacity ? skipped : self->capacity;
        for (i = 1; i <= last; i++)
            if (missing_set(self, u16((long long)self->head + i), now) < 0)
                return -1;
        self->head = seq;
    } else if (self->missing_count) {
        missing_pop(self, seq);
    }
    return 0;
}

/* _give_up_on: 1 once missing packet ``seq`` has had VIDEO_GAP_WAIT_S, 0 before, -1 on error. */
static int give_up_on(Assembler *self, unsigned seq, double now)
{
    double since;
    if (!missing_get(self, seq, &since)) {
        since = now;
        if (missing_set(self, seq, since) < 0)
            return -1;
    }
    if (since == -INFINITY)
        return 1;
    if (now - since < VIDEO_GAP_WAIT_S)
        return 0;
    if (missing_set(self, seq, -INFINITY) < 0)
        return -1;
    if (now - self->asked_at >= VIDEO_GAP_WAIT_S) {
        self->asked_at = now;
        self->gave_up = 1;
    }
    return 1;
}

/* _release: the packets present among positions origin+first..origin+last as one frame,
 * appended to ``*frames`` (created when needed) as (payload type of the first, data,
 * timestamp, after loss) unless empty or stale. -1 when out of memory.
 *
 * After loss: the frame's first packet is not the one after the last run taken out (a gap
 * before it; before any was, a missing packet just before it), a packet is missing between
 * two of its own, packets were thrown away since the last frame let out (overflow, restart,
 * a stale frame, a gap before or inside a run of padding), or (video) its last packet is not
 * the marker: the frame holds what arrived, and it or a frame before it may be short. */
static int release(Assembler *self, int first, int last, PyObject **frames)
{
    Slot *head = NULL, *tail = NULL;
    Py_ssize_t size = 0;
    int count, after_loss, contiguous, missing = 0, gap_inside = 0, head_at = 0, tail_at = 0;
    unsigned first_seq, next_seq;
    PyObject *data, *item;
    char *out;

    for (count = first; count <= last; count++) {
        Slot *slot = slot_at(self, (unsigned long)self->origin + (unsigned long)count);
        if (!slot->present) {
            missing = head != NULL;
            continue;
        }
        if (head == NULL) {
            head = slot;
            head_at = count;
        }
        gap_inside |= missing;
        missing = 0;
        tail = slot;
        tail_at = count;
        size += slot->len;
    }
    if (head == NULL)
        return 0;
    first_seq = u16((long long)self->origin + head_at);
    next_seq = u16((long long)self->origin + tail_at + 1);
    if (self->has_expected)
        contiguous = first_seq == self->expected;
    else
        contiguous = head_at == 0 ||
                     slot_at(self, (unsigned long)self->origin + head_at - 1)->present;
    self->expected = next_seq;
    self->has_expected = 1;
    if (size == 0 || is_stale(self, head->timestamp)) {
        if (size > 0 || !contiguous || gap_inside)
            self->dropped = 1; /* a frame thrown away, or one may be lost around padding */
        return 0;
    }
    after_loss = self->dropped || gap_inside || !contiguous || (self->video && !tail->marker);
    if (*frames == NULL && (*frames = PyList_New(0)) == NULL)
        return -1;
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL)
        return -1;
    out = PyBytes_AS_STRING(data);
    for (count = first; count <= last; count++) {
        Slot *slot = slot_at(self, (unsigned long)self->origin + (unsigned long)count);
        if (slot->present && slot->len) {
            memcpy(out, slot->data, (size_t)slot->len);
            out += slot->len;
        }
    }
    item = Py_BuildValue("(iNkO)", head->payload_type, data, (unsigned long)head->timestamp,
                         after_loss ? Py_True : Py_False);
    if (item == NULL)
        return -1;
    if (PyList_Append(*frames, item) < 0) {
        Py_DECREF(item);
        return -1;
    }
    Py_DECREF(item);
    self->released = head->timestamp;
    self->has_released = 1;
    self->dropped = 0;
    return 0;
}

/* _remove_frame: take out every complete frame, oldest first. -1 on error. */
static int remove_frame(Assembler *self, unsigned seq, double now, PyObject **frames)
{
    long newest = (long)u16((long long)seq - self->origin);
    long ahead = newest, taken = 0;
    int count, run = -1; /* run: the position of the open frame's first packet, or -1 */
    uint32_t run_timestamp = 0;

    if (self->video && self->has_head)
        ahead = (long)u16((long long)self->head - self->origin);
    for (count = 0; count < self->capacity; count++) {
        Slot *slot = slot_at(self, (unsigned long)self->origin + (unsigned long)count);
        if (!slot->present) {
            int given_up;
            if (!self->video) {
                if (newest - count < AUDIO_REORDER_PACKETS)
                    break;
                continue;
            }
            if (count >= ahead)
                break;
            given_up = give_up_on(self, u16((long long)self->origin + count), now);
            if (given_up < 0)
                return -1;
            if (!given_up)
                break;
            continue;
        }
        if (run >= 0 && slot->timestamp != run_timestamp) {
            if (release(self, run, count - 1, frames) < 0)
                return -1;
            run = -1;
            taken = count;
        }
        if (run < 0) {
            run = count;
            run_timestamp = slot->timestamp;
        }
        if (slot->marker || !self->video) {
            if (release(self, run, count, frames) < 0)
                return -1;
            run = -1;
            taken = count + 1;
        }
    }
    if (taken) {
        buffer_remove(self, (int)taken);
        if (self->missing_count)
            forget_missing_behind(self, self->origin);
    }
    return 0;
}

/* CompletingJitterBuffer.add (aiortc's JitterBuffer.add inlined): stores ``*data`` (taking it
 * over, or freeing it when the packet is not stored); sets *pli; -1 on error. */
static int buffer_add(Assembler *self, unsigned seq, uint32_t timestamp, int marker,
                      int payload_type, unsigned char **data, Py_ssize_t len, double now,
                      int *pli, PyObject **frames)
{
    unsigned delta, misorder;
    Slot *slot;
    int result;

    *pli = 0;
    if (self->has_origin && is_stale(self, timestamp) &&
        u16((long long)self->origin - seq) < u16((long long)seq - self->origin))
        return 0; /* a late packet of a frame already let out */
    if (self->video && track_gaps(self, seq, now) < 0)
        return -1;
    if (!self->has_origin) {
        self->origin = seq;
        self->has_origin = 1;
        delta = misorder = 0;
    } else {
        delta = u16((long long)seq - self->origin);
        misorder = u16((long long)self->origin - seq);
    }
    if (misorder < delta) {
        if (misorder >= MAX_MISORDER) {
            if (buffer_remove(self, self->capacity))
                self->dropped = 1;
            self->origin = seq;
            delta = misorder = 0;
            if (self->video)
                *pli = 1;
        } else {
            self->dropped = 1; /* behind the buffer and not stale: thrown away */
            return 0;
        }
    }
    if (delta >= (unsigned)self->capacity) {
        if (smart_remove(self, (long)delta - self->capacity + 1))
            self->origin = seq;
        if (self->video)
            *pli = 1;
    }
    slot = slot_at(self, seq);
    slot_clear(slot);
    slot->data = *data;
    *data = NULL;
    slot->len = len;
    slot->timestamp = timestamp;
    slot->payload_type = payload_type;
    slot->marker = marker;
    slot->present = 1;
    result = remove_frame(self, seq, now, frames);
    if (self->gave_up) {
        self->gave_up = 0;
        *pli = 1;
    }
    return result;
}

/* ---- NackGenerator ------------------------------------------------------------------------- */

/* NackGenerator.add: 1 when it found packets missing. */
static int nack_add(Assembler *self, unsigned seq)
{
    int missed = 0, i;
    if (!self->nack_has_max) {
        self->nack_max = seq;
        self->nack_has_max = 1;
        return 0;
    }
    if (u16_gt(seq, self->nack_max)) {
        unsigned jump = u16((long long)seq - self->nack_max), d;
        /* truncate(): keep only the RTP_HISTORY_SIZE numbers behind the new maximum */
        for (i = 0; i < RTP_HISTORY_SIZE && self->nack_count; i++) {
            if (self->nack_on[i] && u16((long long)seq - self->nack_seq[i]) > RTP_HISTORY_SIZE) {
                self->nack_on[i] = 0;
                self->nack_count--;
            }
        }
        missed = jump > 1;
        for (d = 1; d < jump && d <= RTP_HISTORY_SIZE; d++) {
            unsigned missing = u16((long long)seq - d);
            i = (int)(missing % RTP_HISTORY_SIZE);
            if (!self->nack_on[i])
                self->nack_count++;
            self->nack_on[i] = 1;
            self->nack_seq[i] = (unsigned short)missing;
        }
        self->nack_max = seq;
    } else {
        i = (int)(seq % RTP_HISTORY_SIZE);
        if (self->nack_on[i] && self->nack_seq[i] == seq) {
            self->nack_on[i] = 0;
            self->nack_count--;
        }
    }
    return missed;
}

static int compare_seq(const void *a, const void *b)
{
    return (int)*(const unsigned short *)a - (int)*(const unsigned short *)b;
}

/* sorted(NackGenerator.missing), as a new list. */
static PyObject *nack_list(const Assembler *self)
{
    unsigned short seqs[RTP_HISTORY_SIZE];
    int n = 0, i;
    PyObject *list;

    for (i = 0; i < RTP_HISTORY_SIZE; i++)
        if (self->nack_on[i])
            seqs[n++] = self->nack_seq[i];
    qsort(seqs, (size_t)n, sizeof(seqs[0]), compare_seq);
    list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *value = PyLong_FromLong(seqs[i]);
        if (value == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, value);
    }
    return list;
}

/* ---- StreamStatistics ---------------------------------------------------------------------- */

/* StreamStatistics.add; arrival times come from the wall clock, as time.time() there. */
static void stats_add(Assembler *self, unsigned seq, uint32_t timestamp)
{
    int in_order = !self->has_seq || u16_gt(seq, self->max_seq);

    self->packets_received++;
    if (!self->has_seq) {
        self->base_seq = seq;
    }
    if (in_order) {
        struct timespec ts;
        long long arrival;
        clock_gettime(CLOCK_REALTIME, &ts);
        arrival = (long long)(((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) *
                              (double)self->clockrate);
        if (self->has_seq && seq < self->max_seq)
            self->cycles += 1LL << 16;
        self->max_seq = seq;
        self->has_seq = 1;
        if (self->has_last && timestamp != self->last_timestamp && self->packets_received > 1) {
            long long diff = llabs((arrival - self->last_arrival) -
                                   ((long long)timestamp - (long long)self->last_timestamp));
            self->jitter_q4 += diff - ((self->jitter_q4 + 8) >> 4);
        }
        self->last_arrival = arrival;
        self->last_timestamp = timestamp;
        self->has_last = 1;
    }
}

/* StreamStatistics.packets_expected (0 before the first packet, where aiortc has no object). */
static long long packets_expected(const Assembler *self)
{
    if (!self->has_seq)
        return 0;
    return self->cycles + (long long)self->max_seq - (long long)self->base_seq + 1;
}

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- the Python type ----------------------------------------------------------------------- */

static int bool_arg(PyObject *arg, const char *name, int *value)
{
    if (!PyBool_Check(arg) && !PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s must be bool, not %.100s", name, Py_TYPE(arg)->tp_name);
        return -1;
    }
    *value = PyObject_IsTrue(arg);
    return *value < 0 ? -1 : 0;
}

static int Assembler_init(Assembler *self, PyObject *args, PyObject *kwds)
{
    PyObject *video_arg;
    int video, depayloader;
    long clockrate = 0;

    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Assembler() takes positional arguments only");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "Oi|l:Assembler", &video_arg, &depayloader, &clockrate) ||
        bool_arg(video_arg, "video", &video) < 0)
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Assembler is already initialised");
        return -1;
    }
    if (depayloader < DEPAYLOAD_NONE || depayloader > DEPAYLOAD_VP8) {
        PyErr_Format(PyExc_ValueError, "unknown depayloader %d", depayloader);
        return -1;
    }
    if (clockrate < 0) {
        PyErr_SetString(PyExc_ValueError, "clock rate must not be negative");
        return -1;
    }
    self->video = video;
    self->depayloader = depayloader;
    self->capacity = video ? VIDEO_CAPACITY : AUDIO_CAPACITY;
    self->clockrate = clockrate ? clockrate : video ? 90000 : 48000;
    self->asked_at = -INFINITY;
    self->slots = PyMem_Calloc((size_t)self->capacity, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    return 0;
}

static void Assembler_dealloc(Assembler *self)
{
    int i;
    for (i = 0; self->slots != NULL && i < self->capacity; i++)
        PyMem_Free(self->slots[i].data);
    PyMem_Free(self->slots);
    missing_clear(self);
    Py_CLEAR(self->held);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(const Assembler *self)
{
    if (!self->ready)
        PyErr_SetString(PyExc_RuntimeError, "Assembler is not initialised");
    return self->ready;
}

/* An int argument in [0, maximum]: TypeError for another type, ValueError out of range. */
static int int_arg(PyObject *arg, const char *name, long long maximum, long long *value)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", name, Py_TYPE(arg)->tp_name);
        return -1;
    }
    *value = PyLong_AsLongLong(arg);
    if (*value == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
    } else if (*value >= 0 && *value <= maximum) {
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s out of range 0..%lld", name, maximum);
    return -1;
}

/* The depayloaded bytes of ``payload`` as a new owned copy (NULL when empty) in *out, 0; 1 when
 * the depayloader refused it (aiortc's ValueError: the packet is dropped); -1 on error. */
static int depayload(Assembler *self, PyObject *payload, const Py_buffer *view,
                     unsigned char **out, Py_ssize_t *len)
{
    PyObject *data = NULL;
    const char *bytes = view->buf;

    *out = NULL;
    *len = view->len;
    if (view->len == 0)
        return 0;
    if (self->depayloader != DEPAYLOAD_NONE) {
        data = self->depayloader == DEPAYLOAD_H264 ? depayload_h264(NULL, payload)
                                                   : depayload_vp8(NULL, payload);
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                return -1;
            PyErr_Clear();
            return 1;
        }
        bytes = PyBytes_AS_STRING(data);
        *len = PyBytes_GET_SIZE(data);
    }
    if (*len > 0) {
        *out = PyMem_Malloc((size_t)*len);
        if (*out == NULL) {
            Py_XDECREF(data);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(*out, bytes, (size_t)*len);
    }
    Py_XDECREF(data);
    return 0;
}

static PyObject *Assembler_add(Assembler *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long seq, timestamp, payload_type;
    int marker, stats = 1, pli = 0, refused;
    double now;
    Py_buffer view;
    unsigned char *data = NULL;
    Py_ssize_t len;
    PyObject *nack = NULL, *frames = NULL, *result = NULL;

    if (nargs < 6 || nargs > 7) {
        PyErr_Format(PyExc_TypeError, "add() takes 6 or 7 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (!ready(self) || int_arg(args[0], "seq", 0xFFFF, &seq) < 0 ||
        int_arg(args[1], "timestamp", 0xFFFFFFFFLL, &timestamp) < 0 ||
        bool_arg(args[2], "marker", &marker) < 0 ||
        int_arg(args[3], "payload_type", 0x7F, &payload_type) < 0 ||
        (nargs == 7 && bool_arg(args[6], "stats", &stats) < 0))
        return NULL;
    if (!PyFloat_Check(args[5]) && !PyLong_Check(args[5])) {
        PyErr_Format(PyExc_TypeError, "now must be float, not %.100s", Py_TYPE(args[5])->tp_name);
        return NULL;
    }
    now = PyFloat_AsDouble(args[5]);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[4], &view, PyBUF_SIMPLE) < 0)
        return NULL;

    if (stats) {
        stats_add(self, (unsigned)seq, (uint32_t)timestamp);
        self->octets += (unsigned long long)view.len;
    }
    if (self->video && nack_add(self, (unsigned)seq) && (nack = nack_list(self)) == NULL)
        goto done;
    refused = depayload(self, args[4], &view, &data, &len);
    if (refused < 0)
        goto done;
    if (!refused && buffer_add(self, (unsigned)seq, (uint32_t)timestamp, marker,
                               (int)payload_type, &data, len, now, &pli, &frames) < 0)
        goto done;
    result = PyTuple_Pack(3, pli ? Py_True : Py_False, frames ? frames : Py_None,
                          nack ? nack : Py_None);
done:
    PyMem_Free(data); /* NULL once the buffer holds it */
    PyBuffer_Release(&view);
    Py_XDECREF(frames);
    Py_XDECREF(nack);
    return result;
}

PyObject *assembler_add(PyObject *assembler, PyObject *const *args, Py_ssize_t nargs)
{
    return Assembler_add((Assembler *)assembler, args, nargs);
}

/* CompletingJitterBuffer.flush: everything still held, gaps given up on, oldest first. */
static PyObject *Assembler_flush(Assembler *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *frames = NULL;
    int count, run = -1;
    uint32_t run_timestamp = 0;

    if (!ready(self))
        return NULL;
    if (self->has_origin) {
        for (count = 0; count < self->capacity; count++) {
            Slot *slot = slot_at(self, (unsigned long)self->origin + (unsigned long)count);
            if (!slot->present)
                continue;
            if (run >= 0 && slot->timestamp != run_timestamp) {
                if (release(self, run, count - 1, &frames) < 0)
                    goto error;
                run = -1;
            }
            if (run < 0) {
                run = count;
                run_timestamp = slot->timestamp;
            }
        }
        if (run >= 0 && release(self, run, self->capacity - 1, &frames) < 0)
            goto error;
        buffer_remove(self, self->capacity);
        missing_clear(self);
    }
    return frames ? frames : PyList_New(0);
error:
    Py_XDECREF(frames);
    return NULL;
}

int assembler_keep(PyObject *assembler, PyObject *answer, long long arrival_ms)
{
    Assembler *self = (Assembler *)assembler;
    PyObject *item;
    int failed;

    if (!self->hold)
        return 0;
    if (self->held == NULL && (self->held = PyList_New(0)) == NULL)
        return -1;
    item = Py_BuildValue("(OLK)", answer, arrival_ms, self->octets);
    if (item == NULL)
        return -1;
    failed = PyList_Append(self->held, item);
    Py_DECREF(item);
    if (failed)
        return -1;
    self->octets = 0; /* as take_octets() when Python would have taken the answer */
    return 1;
}

static PyObject *Assembler_take_held(Assembler *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *held = self->held;
    self->held = NULL;
    return held != NULL ? held : PyList_New(0);
}

static PyObject *get_hold(Assembler *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->hold);
}

static int set_hold(Assembler *self, PyObject *value, void *closure)
{
    (void)closure;
    if (value == NULL || !PyBool_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "hold must be a bool");
        return -1;
    }
    self->hold = value == Py_True;
    return 0;
}

static PyObject *Assembler_take_octets(Assembler *self, PyObject *Py_UNUSED(ignored))
{
    unsigned long long octets = self->octets;
    self->octets = 0;
    return PyLong_FromUnsignedLongLong(octets);
}

static PyObject *get_packets_received(Assembler *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->packets_received);
}

static PyObject *get_base_seq(Assembler *self, void *closure)
{
    (void)closure;
    if (!self->has_seq)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->base_seq);
}

static PyObject *get_max_seq(Assembler *self, void *closure)
{
    (void)closure;
    if (!self->has_seq)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->max_seq);
}

static PyObject *get_cycles(Assembler *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->cycles);
}

static PyObject *get_jitter(Assembler *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->jitter_q4 >> 4);
}

static PyObject *get_packets_expected(Assembler *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(packets_expected(self));
}

static PyObject *get_packets_lost(Assembler *self, void *closure)
{
    long long lost = packets_expected(self) - self->packets_received;
    (void)closure;
    if (lost < PACKETS_LOST_MIN)
        lost = PACKETS_LOST_MIN;
    if (lost > PACKETS_LOST_MAX)
        lost = PACKETS_LOST_MAX;
    return PyLong_FromLongLong(lost);
}

/* StreamStatistics.fraction_lost, side effect included: it starts the next interval. */
static PyObject *get_fraction_lost(Assembler *self, void *closure)
{
    long long expected = packets_expected(self);
    long long expected_interval = expected - self->expected_prior;
    long long received_interval = self->packets_received - self->received_prior;
    long long lost_interval = expected_interval - received_interval;
    (void)closure;
    self->expected_prior = expected;
    self->received_prior = self->packets_received;
    if (expected_interval == 0 || lost_interval <= 0)
        return PyLong_FromLong(0);
    return PyLong_FromLongLong(floor_div(lost_interval * 256, expected_interval));
}

static PyMethodDef Assembler_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Assembler_add, METH_FASTCALL,
     "add(seq, timestamp, marker, payload_type, payload, now, stats=True, /): one RTP packet;\n"
     "(pli, frames or None, nack list or None), frames as\n"
     "(payload type, data, timestamp, after loss)."},
    {"flush", (PyCFunction)Assembler_flush, METH_NOARGS,
     "Everything still held, as (payload type, data, timestamp, after loss) frames; the buffer\n"
     "is emptied."},
    {"take_octets", (PyCFunction)Assembler_take_octets, METH_NOARGS,
     "Payload bytes added with stats since the last call."},
    {"take_held", (PyCFunction)Assembler_take_held, METH_NOARGS,
     "The answers held since the last call, oldest first, as (answer, arrival ms since the NTP\n"
     "epoch, octets as take_octets() would have given them then)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Assembler_getset[] = {
    {"packets_received", (getter)get_packets_received, NULL, "as aiortc's StreamStatistics",
     NULL},
    {"base_seq", (getter)get_base_seq, NULL, "first sequence number, or None", NULL},
    {"max_seq", (getter)get_max_seq, NULL, "highest sequence number, or None", NULL},
    {"cycles", (getter)get_cycles, NULL, "sequence number wraps, times 65536", NULL},
    {"jitter", (getter)get_jitter, NULL, "interarrival jitter in RTP ticks", NULL},
    {"packets_expected", (getter)get_packets_expected, NULL, "as aiortc's StreamStatistics",
     NULL},
    {"packets_lost", (getter)get_packets_lost, NULL, "as aiortc's, clamped to 24 bits", NULL},
    {"fraction_lost", (getter)get_fraction_lost, NULL,
     "loss since the last read, out of 256 (reading it starts the next interval)", NULL},
    {"hold", (getter)get_hold, (setter)set_hold,
     "SrtpReceiver.receive keeps answers that are frames only (no NACK, no PLI) for take_held",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject AssemblerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "streamserver.native._native.Assembler",
    .tp_doc = PyDoc_STR("Assembler(video, depayloader, clockrate=0, /): NACK bookkeeping, "
                        "depayloading, frame reassembly and receiver statistics for one "
                        "received RTP stream."),
    .tp_basicsize = sizeof(Assembler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Assembler_init,
    .tp_dealloc = (destructor)Assembler_dealloc,
    .tp_methods = Assembler_methods,
    .tp_getset = Assembler_getset,
};
