# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled receive path: picows hands each frame to ``Batcher.on_ws_frame`` as a C call (no Python call, no
``str`` per frame), which copies a complete text frame's payload into a batch, with its receive time and its
route, and gives whole batches to Python (``land``). Everything else is the Python link's (``_Receiver`` in
``_connection.py``), exactly as in the pure-Python path:

- a frame that is not a complete data frame, or not UTF-8, or any frame while ``plain`` is off (a fragmented
  message being assembled, a close begun) goes to ``link.on_ws_frame`` once the frames before it are landed;
- a frame whose route the link must see live (book and control channels, and every frame until the first one
  carrying an exchange time) is landed, then handed to ``link.interpret`` as text;
- a watched frame of a route whose session checks an id chain (``ChainedSession``: Binance's depth) is checked
  here while its chain is in sequence: its ids are read from its bytes (``IdChain``'s keys) and, when it continues
  the chain or is stale (already in it: the session has nothing to say of it), it is landed without the link; the
  link is told how far the chain went at each hand-over (``link.chain_advance``) and before the first frame that
  does not continue it, which goes to ``interpret`` as every watched frame did. After ``interpret`` the link says
  whether the route's chain is in sequence again (``link.chain_at``). A frame the link handles itself (``_slow``)
  may move any chain: every route is then asked again;
- routes are looked up in a table of stream keys: the text between the exchange's ``prefix`` and the
  ``quotes``-th quote after it (Binance: the stream name). A key seen for the first time is routed by
  ``link.learn`` (the exchange's ``route_key``), which may answer -1 (no route from the key alone): such frames,
  and frames without the prefix, are routed one by one by ``link.classify``.

A route code is ``index * 2 + watched``: ``index`` into the link's route list, ``watched`` when the frame must be
interpreted live.

A batch goes to Python as soon as it holds ``HANDOVER_ROWS`` frames or ``HANDOVER_BYTES`` of payload, else at the
end of a socket read once its first frame is ``HANDOVER_NS`` old, else ``HANDOVER_NS`` later from a timer: the
journal's 200 ms tick sees every frame at most that much later than the pure-Python path would hand it over.

A batch's buffers are used by Arrow as they are (the lake writer's columns), so they live until the batch is
journaled, or written. They are then taken again for a new batch (``_Buffers``: the batcher keeps the buffers it
handed over, and reuses those nobody else holds any more): memory the process has touched already, where fresh
buffers would cost a page fault every 4 KiB - at high rates the largest cost of the receive path.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize, PyByteArray_Resize
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memchr, memcmp, memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

cdef extern from "string.h":
    void* memmem(const void* haystack, size_t haystacklen, const void* needle, size_t needlelen) nogil

cdef extern from *:
    """
    #ifndef MDP_PICOWS_VERSION
    #define MDP_PICOWS_VERSION "unknown"
    #endif
    """
    const char* MDP_PICOWS_VERSION

cdef extern from "Python.h":
    Py_ssize_t Py_REFCNT(PyObject* o)
    ctypedef struct PyByteArrayObject:
        Py_ssize_t ob_exports

#: the picows version whose frame and listener layouts this module was compiled against
PICOWS_VERSION = MDP_PICOWS_VERSION.decode()

cdef enum:
    MAX_FRAME = 1 << 24  # ``MAX_FRAME_BYTES``: a larger frame goes to the link, which refuses it
    C_HANDOVER_ROWS = 8192
    C_HANDOVER_BYTES = 1 << 20
    KEY_MAX = 120  # longer stream keys are routed frame by frame
    MAX_KEYS = 4096  # distinct keys remembered per connection; beyond, routed frame by frame
    FIRST_SLOTS = 64
    FIRST_ROWS = 256
    FIRST_DATA = 65536
    POOL_BYTES = 64 << 20  # buffers handed over that are kept track of, to be reused, at most
    POOL_IDLE = 2  # unused ones kept however long they have been unused (others go after POOL_IDLE_NS)
    REUSE_MAX = 8 << 20  # larger buffers (a huge frame) are not kept

cdef int64_t C_HANDOVER_NS = 10_000_000
cdef int64_t POOL_IDLE_NS = 1_000_000_000

#: frames of a batch handed to Python as soon as it has them
HANDOVER_ROWS = C_HANDOVER_ROWS
#: payload bytes of a batch handed to Python as soon as it has them
HANDOVER_BYTES = C_HANDOVER_BYTES
#: age of a batch's first frame at which it is handed to Python (at the end of a read, or from a timer)
HANDOVER_NS = C_HANDOVER_NS

cdef struct Slot:
    uint64_t hash
    int32_t code  # route code, or -1: route each frame of this key by classify
    int32_t key_len  # -1: empty slot
    char key[KEY_MAX]


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline bint _ascii(const char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t a = 0, b = 0, w
    cdef Py_ssize_t i = 0
    while i + 16 <= n:
        memcpy(&w, p + i, 8)
        a |= w
        memcpy(&w, p + i + 8, 8)
        b |= w
        i += 16
    while i < n:
        a |= <unsigned char>p[i]
        i += 1
    return ((a | b) & 0x8080808080808080ULL) == 0


cdef inline uint64_t _hash(const char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL  # FNV-1a
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <unsigned char>p[i]) * 1099511628211ULL
    return h


cdef inline bint _number(const char* p, Py_ssize_t n, bytes key, bint signed, int64_t* out) noexcept:
    """The integer right after the first ``key`` in ``p[:n]`` (digits, a leading minus when ``signed``; at most 18
    digits), into ``out``; False when there is none."""
    cdef const char* stop = p + n
    cdef const char* at = <const char*>memmem(p, n, <const char*>key, len(key))
    cdef bint minus = False
    cdef int64_t v = 0
    cdef int digits = 0
    if at == NULL:
        return False
    at += len(key)
    if signed and at < stop and at[0] == b'-':
        minus = True
        at += 1
    while at < stop and b'0' <= at[0] <= b'9':
        if digits == 18:
            return False
        v = v * 10 + (at[0] - 48)
        digits += 1
        at += 1
    if digits == 0:
        return False
    out[0] = -v if minus else v
    return True


cdef class _Chain:
    """A route's id chain as the compiled path checks it (``IdChain``): its keys, its last id while in sequence
    (``armed``), and the last id the link was told."""

    cdef bytes first, last, prev
    cdef bint armed
    cdef int64_t at, told


#: a route whose frames are never checked here
cdef object _NO_CHAIN = object()


cdef inline bint _alone(PyObject* b) noexcept:
    """Only one reference to the bytearray ``b``, and no view of it."""
    return Py_REFCNT(b) == 1 and (<PyByteArrayObject*>b).ob_exports == 0


cdef class _Buffers:
    """The four buffers of a batch, as large as they have grown (a batch uses their beginning)."""

    cdef bytearray data, offsets, routes, recv
    #: when they were last handed over
    cdef int64_t handed

    cdef Py_ssize_t size(self) noexcept:
        return len(self.data) + len(self.offsets) + len(self.routes) + len(self.recv)

    cdef bint idle(self) noexcept:
        """Nobody but this object holds them: no batch, no view (Arrow's buffers are views)."""
        return (_alone(<PyObject*>self.data) and _alone(<PyObject*>self.offsets)
                and _alone(<PyObject*>self.routes) and _alone(<PyObject*>self.recv))


cdef class Batch:
    """Frames received on one connection, in order: ``rows`` payloads (UTF-8) back to back in ``data``, where
    frame i is ``data[offsets[i]:offsets[i + 1]]`` (int32), its route index in ``routes`` (int32) and its receive
    time in ``recv`` (int64 ns) - Arrow's layouts, so the columns need no conversion (each a memoryview of the
    buffer it is in). ``min_recv``/``max_recv`` bound the receive times (the wall clock may step back),
    ``last_recv`` is the last frame's."""

    cdef readonly Py_ssize_t rows
    cdef Py_ssize_t _used
    cdef bytearray _data, _offsets, _routes, _recv
    cdef readonly int64_t min_recv
    cdef readonly int64_t max_recv
    cdef readonly int64_t last_recv

    @property
    def data(self):
        return memoryview(self._data)[: self._used]

    @property
    def offsets(self):
        return memoryview(self._offsets)[: (self.rows + 1) * 4]

    @property
    def routes(self):
        return memoryview(self._routes)[: self.rows * 4]

    @property
    def recv(self):
        return memoryview(self._recv)[: self.rows * 8]

    def last_text(self):
        """The payload of the last frame, as text."""
        cdef const int32_t* off = <const int32_t*>PyByteArray_AS_STRING(self._offsets)
        cdef const char* p = PyByteArray_AS_STRING(self._data)
        return PyUnicode_DecodeUTF8(p + off[self.rows - 1], off[self.rows] - off[self.rows - 1], NULL)


cdef class Batcher(WSListener):
    """picows' listener for one connection on the compiled path; ``link`` is the Python side (see the module)."""

    cdef readonly object link
    #: complete data frames are landed here (the link turns it off while it assembles fragments or closes)
    cdef public bint plain
    #: an exchange time was seen: frames of unwatched routes need no interpretation
    cdef public bint started
    #: binary frames are read as text when they are UTF-8 (off for an exchange whose binary frames it decodes
    #: itself: they go to the link, whatever their bytes)
    cdef public bint binary_text
    cdef bytes _prefix
    cdef Py_ssize_t _plen
    cdef int _quotes
    cdef Slot* _slots
    cdef Py_ssize_t _nslots
    cdef Py_ssize_t _nkeys
    # the batch being filled
    cdef Py_ssize_t _rows, _used, _cap_rows, _cap_data
    cdef bytearray _data, _offsets, _routes, _recv
    cdef _Buffers _buffers
    cdef list _pool
    cdef Py_ssize_t _pool_bytes
    #: batches that reused buffers handed over before, and buffers allocated
    cdef readonly Py_ssize_t reused, allocated
    cdef int64_t _read_ts, _first_ts, _min_ts, _max_ts
    cdef object _timer, _loop
    cdef object _land, _learn, _classify, _interpret, _chain_at, _chain_advance
    #: per route index: its ``_Chain``, ``_NO_CHAIN``, or None (not asked yet)
    cdef list _chains

    def __cinit__(self):
        self._slots = NULL

    def __init__(self, link, loop, prefix, int quotes):
        """``prefix`` (bytes, or None: every frame is routed by ``classify``) and ``quotes``: where a frame's stream
        key is; ``link``: ``land(batch)``, ``learn(key) -> code``, ``classify(text) -> code``, ``interpret(text,
        index, recv) -> started``, ``on_ws_frame``/``on_ws_connected``/``on_ws_disconnected``, ``recv``,
        ``hand_over()``."""
        super().__init__()
        self.link = link
        self._loop = loop
        self.plain = True
        self.started = False
        self.binary_text = True
        self._prefix = prefix
        self._plen = len(prefix) if prefix is not None else 0
        self._quotes = quotes
        self._nslots = FIRST_SLOTS
        self._slots = <Slot*>calloc(self._nslots, sizeof(Slot))
        if self._slots == NULL:
            raise MemoryError()
        self._clear_slots(self._slots, self._nslots)
        self._pool = []
        self._cap_data, self._cap_rows = FIRST_DATA, FIRST_ROWS
        self._land, self._learn = link.land, link.learn
        self._classify, self._interpret = link.classify, link.interpret
        self._chain_at, self._chain_advance = link.chain_at, link.chain_advance
        self._chains = []

    def __dealloc__(self):
        if self._slots != NULL:
            free(self._slots)

    @property
    def pending(self):
        """Frames received and not yet handed over."""
        return self._rows

    # --- picows callbacks ---------------------------------------------------------------------------------------

    cpdef on_ws_connected(self, WSTransport transport):
        self.link.on_ws_connected(transport)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.hand_over()
        self.link.on_ws_disconnected(transport)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType kind = frame.msg_type
        cdef const char* p = frame.payload_ptr
        cdef Py_ssize_t n = frame.payload_size
        cdef int32_t code
        cdef object text = None
        if (self.plain and frame.fin and (kind == WSMsgType.TEXT or (kind == WSMsgType.BINARY and self.binary_text))
                and n <= MAX_FRAME):
            if not _ascii(p, n):
                try:
                    text = PyUnicode_DecodeUTF8(p, n, NULL)
                except UnicodeDecodeError:
                    text = False  # not UTF-8: the link lands it as binary
            if text is not False:
                if self._read_ts == 0:
                    self._read_ts = _now_ns()
                code = self._lookup(p, n)
                if code < 0:
                    if text is None:
                        text = PyUnicode_DecodeUTF8(p, n, NULL)
                    code = self._classify(text)
                self._append(p, n, code >> 1)
                if (code & 1) or not self.started:
                    if not (self.started and self._continues(p, n, code >> 1)):
                        if text is None:
                            text = PyUnicode_DecodeUTF8(p, n, NULL)
                        self.started = self._interpret(text, code >> 1, self._read_ts)
                        if self.started and (code & 1):
                            self._arm(code >> 1)
                if frame.last_in_buffer:
                    self._end_of_read()
                elif self._rows >= C_HANDOVER_ROWS or self._used >= C_HANDOVER_BYTES:
                    self.hand_over()  # a long read (the loop was busy): in batches of a bounded size all the same
                return
        self._slow(transport, frame)

    # --- the hot path -------------------------------------------------------------------------------------------

    cdef int32_t _lookup(self, const char* p, Py_ssize_t n) except? -2:
        """The route code of a frame from its stream key; -1: the frame is routed by itself."""
        cdef Py_ssize_t plen = self._plen, klen
        cdef const char* start
        cdef const char* end
        cdef const char* stop = p + n
        cdef int q
        if self._prefix is None:
            return -1
        if n < plen or memcmp(p, <const char*>self._prefix, plen) != 0:
            return -1
        start = p + plen
        end = start - 1
        for q in range(self._quotes):
            end = <const char*>memchr(end + 1, b'"', stop - end - 1)
            if end == NULL:
                return -1
        klen = end - start
        if klen > KEY_MAX:
            return -1
        cdef uint64_t h = _hash(start, klen)
        cdef Py_ssize_t mask = self._nslots - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & mask)
        cdef Slot* s
        while True:
            s = &self._slots[i]
            if s.key_len < 0:
                break
            if s.hash == h and s.key_len == klen and memcmp(s.key, start, klen) == 0:
                return s.code
            i = (i + 1) & mask
        return self._new_key(start, klen, h)

    cdef int32_t _new_key(self, const char* key, Py_ssize_t klen, uint64_t h) except? -2:
        cdef int32_t code = self._learn(PyUnicode_DecodeUTF8(key, klen, NULL))
        if self._nkeys >= MAX_KEYS:
            return code
        if 2 * (self._nkeys + 1) > self._nslots:
            self._grow_slots()
        cdef Py_ssize_t mask = self._nslots - 1
        cdef Py_ssize_t i = <Py_ssize_t>(h & mask)
        while self._slots[i].key_len >= 0:
            i = (i + 1) & mask
        self._slots[i].hash = h
        self._slots[i].code = code
        self._slots[i].key_len = <int32_t>klen
        memcpy(self._slots[i].key, key, klen)
        self._nkeys += 1
        return code

    cdef void _clear_slots(self, Slot* slots, Py_ssize_t n) noexcept:
        cdef Py_ssize_t i
        for i in range(n):
            slots[i].key_len = -1

    cdef int _grow_slots(self) except -1:
        cdef Py_ssize_t n = self._nslots * 2, i, j
        cdef Slot* slots = <Slot*>calloc(n, sizeof(Slot))
        if slots == NULL:
            raise MemoryError()
        self._clear_slots(slots, n)
        for i in range(self._nslots):
            if self._slots[i].key_len >= 0:
                j = <Py_ssize_t>(self._slots[i].hash & (n - 1))
                while slots[j].key_len >= 0:
                    j = (j + 1) & (n - 1)
                slots[j] = self._slots[i]
        free(self._slots)
        self._slots, self._nslots = slots, n
        return 0

    # --- id chains checked here ---------------------------------------------------------------------------------

    cdef bint _continues(self, const char* p, Py_ssize_t n, int32_t index) except -1:
        """Route ``index``'s frame continues its armed chain (which then moves on); else the chain is disarmed, the
        link told how far it went, and the frame is the link's."""
        cdef _Chain c
        cdef int64_t first, last, prev
        if index >= len(self._chains):
            return False
        entry = self._chains[index]
        if entry is None or entry is _NO_CHAIN:
            return False
        c = <_Chain>entry
        if not c.armed:
            return False
        if _number(p, n, c.first, False, &first) and _number(p, n, c.last, False, &last):
            if c.prev is not None:
                if _number(p, n, c.prev, True, &prev):
                    if prev == c.at:
                        c.at = last
                        return True
                    if last <= c.at:
                        return True  # stale: already in the chain, nothing to say (as the session would)
            elif last <= c.at:
                return True  # stale
            elif first <= c.at + 1:
                c.at = last
                return True
        c.armed = False
        self._tell(index, c)
        return False

    cdef int _arm(self, int32_t index) except -1:
        """After the link interpreted a frame of route ``index``: arm its chain if the link says it is in sequence."""
        cdef _Chain c
        while len(self._chains) <= index:
            self._chains.append(None)
        entry = self._chains[index]
        if entry is _NO_CHAIN:
            return 0
        got = self._chain_at(index)
        if got is False:
            self._chains[index] = _NO_CHAIN
            return 0
        if entry is None:
            entry = _Chain.__new__(_Chain)
            self._chains[index] = entry
        c = <_Chain>entry
        if got is True:
            c.armed = False
            return 0
        c.first, c.last, c.prev, c.at = got
        c.told = c.at
        c.armed = True
        return 0

    cdef int _tell(self, Py_ssize_t index, _Chain c) except -1:
        if c.at != c.told:
            c.told = c.at
            self._chain_advance(index, c.at)
        return 0

    cdef int _tell_all(self, bint disarm) except -1:
        """The link told how far every chain went (``disarm``: and none checked here until the link says so)."""
        cdef Py_ssize_t i
        for i in range(len(self._chains)):
            entry = self._chains[i]
            if entry is not None and entry is not _NO_CHAIN:
                self._tell(i, <_Chain>entry)
                if disarm:
                    (<_Chain>entry).armed = False
        return 0

    cdef int _append(self, const char* p, Py_ssize_t n, int32_t route) except -1:
        cdef Py_ssize_t rows = self._rows
        if rows == 0:
            self._start_batch(n)
        elif rows + 2 > self._cap_rows or self._used + n > self._cap_data:
            self._grow(n)
        memcpy(PyByteArray_AS_STRING(self._data) + self._used, p, n)
        self._used += n
        (<int32_t*>PyByteArray_AS_STRING(self._offsets))[rows + 1] = <int32_t>self._used
        (<int32_t*>PyByteArray_AS_STRING(self._routes))[rows] = route
        (<int64_t*>PyByteArray_AS_STRING(self._recv))[rows] = self._read_ts
        if self._read_ts < self._min_ts:
            self._min_ts = self._read_ts
        if self._read_ts > self._max_ts:
            self._max_ts = self._read_ts
        self._rows = rows + 1
        return 0

    cdef int _start_batch(self, Py_ssize_t n) except -1:
        """Buffers for a new batch: an idle set handed over before, or new ones. Idle sets unused for a while go
        (the rate dropped), but a few."""
        cdef _Buffers b = None, e
        cdef Py_ssize_t i = len(self._pool) - 1, idle = 0, cap_data, cap_rows
        while i >= 0:
            e = self._pool[i]
            if e.idle():
                if b is None:
                    b = e
                    del self._pool[i]
                    self._pool_bytes -= e.size()
                    self.reused += 1
                else:
                    idle += 1
                    if idle > POOL_IDLE and self._read_ts - e.handed > POOL_IDLE_NS:
                        del self._pool[i]
                        self._pool_bytes -= e.size()
            i -= 1
        if b is None:
            # as large as the last batch's buffers (at a high rate, no growing them again frame after frame)
            b = _Buffers.__new__(_Buffers)
            cap_data = min(self._cap_data, 2 * C_HANDOVER_BYTES)
            cap_rows = min(self._cap_rows, 2 * C_HANDOVER_ROWS)
            b.data = PyByteArray_FromStringAndSize(NULL, cap_data)
            b.offsets = PyByteArray_FromStringAndSize(NULL, cap_rows * 4)
            b.routes = PyByteArray_FromStringAndSize(NULL, cap_rows * 4)
            b.recv = PyByteArray_FromStringAndSize(NULL, cap_rows * 8)
            self.allocated += 1
        self._buffers = b
        self._data, self._offsets, self._routes, self._recv = b.data, b.offsets, b.routes, b.recv
        self._cap_data = len(b.data)
        self._cap_rows = len(b.recv) // 8
        if self._cap_data < n:
            self._grow(n)
        (<int32_t*>PyByteArray_AS_STRING(self._offsets))[0] = 0
        self._used = 0
        self._first_ts = self._min_ts = self._max_ts = self._read_ts
        return 0

    cdef int _grow(self, Py_ssize_t n) except -1:
        # (the buffers of the batch being filled are nobody else's: they can be resized)
        if self._rows + 2 > self._cap_rows:
            self._cap_rows *= 2
            PyByteArray_Resize(self._offsets, self._cap_rows * 4)
            PyByteArray_Resize(self._routes, self._cap_rows * 4)
            PyByteArray_Resize(self._recv, self._cap_rows * 8)
        if self._used + n > self._cap_data:
            while self._used + n > self._cap_data:
                self._cap_data *= 2
            PyByteArray_Resize(self._data, self._cap_data)
        return 0

    cdef int _end_of_read(self) except -1:
        cdef int64_t read_ts = self._read_ts
        self._read_ts = 0
        if self._rows == 0:
            return 0
        if (self._rows >= C_HANDOVER_ROWS or self._used >= C_HANDOVER_BYTES
                or read_ts - self._first_ts >= C_HANDOVER_NS):
            self.hand_over()
        elif self._timer is None:
            self._timer = self._loop.call_later(C_HANDOVER_NS / 1e9, self._on_timer)
        return 0

    def _on_timer(self):
        self._timer = None
        self.hand_over()

    cpdef hand_over(self):
        """Give the frames received so far to the link (``land``), as one ``Batch``."""
        cdef Py_ssize_t rows = self._rows
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if rows == 0:
            return
        cdef Batch batch = Batch.__new__(Batch)
        batch.rows, batch._used = rows, self._used
        batch._data, batch._offsets, batch._routes, batch._recv = self._data, self._offsets, self._routes, self._recv
        batch.min_recv, batch.max_recv = self._min_ts, self._max_ts
        batch.last_recv = (<int64_t*>PyByteArray_AS_STRING(self._recv))[rows - 1]
        cdef Py_ssize_t size = self._buffers.size()
        if self._cap_data <= REUSE_MAX and self._pool_bytes + size <= POOL_BYTES:
            self._buffers.handed = batch.last_recv
            self._pool.append(self._buffers)
            self._pool_bytes += size
        self._buffers = None
        self._data = self._offsets = self._routes = self._recv = None
        self._rows = self._used = 0
        self._tell_all(False)
        self._land(batch)

    cdef int _slow(self, WSTransport transport, WSFrame frame) except -1:
        """A frame for the link: after the frames before it, in the same read (same receive time), and handed over
        with them before the next one is landed here."""
        cdef object link = self.link
        self.hand_over()
        self._tell_all(True)  # (hand_over tells only when it has frames) the link may move any chain now
        if self._read_ts == 0:
            self._read_ts = _now_ns()
        link.recv = self._read_ts
        link.on_ws_frame(transport, frame)
        link.hand_over()  # the link's own
        if frame.last_in_buffer:
            self._read_ts = 0
        return 0
