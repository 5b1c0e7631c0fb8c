/* The price levels of one order book, in C: what mdplatform.book.L2Book keeps and reads (see _l2.py).
 *
 * Each side holds its levels sorted by key, best last, in blocks of at most BLOCK: the key is the price for bids
 * and minus the price for asks, so both sides share one code path; a write searches a small directory then one
 * block and moves at most a block's levels; reads walk from the best level. With keep_raw each level also keeps
 * the price and size text exactly as given (checksums and checkpoints use it).
 *
 * Exactness is the contract: prices and sizes are the doubles Python's float() gives for the same strings, and
 * every sum adds the same doubles in the same order as the numpy code it replaced (best level first). Build with
 * -ffp-contract=off (setup.py) so no multiply-add is fused.
 *
 * depth_run reads Binance diff-depth frames straight from their JSON text (no Python objects per level) and
 * applies the run of them that continue the update-id chain; it takes only frames whose every byte it
 * understands and leaves anything else (a gap, a stale frame, an odd or invalid value, JSON it does not fully
 * validate) to the Python path, which decides as before. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

/* -- level text ------------------------------------------------------------------------------------------- */

#define INLINE_TEXT 40

/* "price" then "size", inline when both fit */
typedef struct {
    uint32_t plen, slen;
    union {
        char inl[INLINE_TEXT];
        char *heap;
    } u;
} Text;

static inline int text_on_heap(const Text *t) { return (size_t)t->plen + t->slen > INLINE_TEXT; }

static inline const char *text_ptr(const Text *t) { return text_on_heap(t) ? t->u.heap : t->u.inl; }

static inline void text_free(Text *t) {
    if (text_on_heap(t)) PyMem_Free(t->u.heap);
    t->plen = t->slen = 0;
}

static int text_set(Text *t, const char *p, Py_ssize_t plen, const char *s, Py_ssize_t slen) {
    if (plen > (Py_ssize_t)UINT32_MAX || slen > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "level text too long");
        return -1;
    }
    size_t total = (size_t)plen + (size_t)slen;
    char *dst;
    if (total <= INLINE_TEXT) {
        text_free(t);
        dst = t->u.inl;
    } else {
        dst = PyMem_Malloc(total);
        if (dst == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        text_free(t);
        t->u.heap = dst;
    }
    t->plen = (uint32_t)plen;
    t->slen = (uint32_t)slen;
    memcpy(dst, p, (size_t)plen);
    memcpy(dst + plen, s, (size_t)slen);
    return 0;
}

/* -- one side --------------------------------------------------------------------------------------------- */

/* levels per block: a write moves at most this many, and a lookup searches the block directory then one block (a
 * flat array of 5,000 levels moved 500 per write on the Binance futures books) */
#define BLOCK 64

/* consecutive levels: key (sign * price) ascending, size > 0, text id in the side's slab (keep_raw) */
typedef struct {
    double key[BLOCK];
    double size[BLOCK];
    uint32_t text[BLOCK];
} Block;

typedef struct {
    /* the levels ascending by key (best last) in blocks, none empty; maxkey: each block's last key */
    Block **blk;
    int *cnt;
    double *maxkey;
    Py_ssize_t nblocks, dcap;
    Py_ssize_t n; /* levels */
    double sign;
    int keep_raw;
    /* keep_raw: the text of each level, the unused entries listed in free_ids */
    Text *texts;
    uint32_t *free_ids;
    Py_ssize_t nfree, tcap;
} Side;

static inline void release_text(Side *s, uint32_t id) {
    text_free(&s->texts[id]);
    s->free_ids[s->nfree++] = id;
}

static void side_clear(Side *s) {
    for (Py_ssize_t b = 0; b < s->nblocks; b++) {
        if (s->keep_raw)
            for (int i = 0; i < s->cnt[b]; i++) release_text(s, s->blk[b]->text[i]);
        PyMem_Free(s->blk[b]);
    }
    s->nblocks = 0;
    s->n = 0;
}

static void side_dealloc(Side *s) {
    side_clear(s);
    PyMem_Free(s->blk);
    PyMem_Free(s->cnt);
    PyMem_Free(s->maxkey);
    PyMem_Free(s->texts);
    PyMem_Free(s->free_ids);
    memset(s, 0, sizeof(*s));
}

/* room for one more block in the directory and one more text: called before anything changes */
static int side_reserve(Side *s) {
    if (s->nblocks == s->dcap) {
        Py_ssize_t cap = s->dcap ? s->dcap * 2 : 16;
        Block **blk = PyMem_Realloc(s->blk, (size_t)cap * sizeof(Block *));
        if (blk == NULL) goto fail;
        s->blk = blk;
        int *cnt = PyMem_Realloc(s->cnt, (size_t)cap * sizeof(int));
        if (cnt == NULL) goto fail;
        s->cnt = cnt;
        double *maxkey = PyMem_Realloc(s->maxkey, (size_t)cap * sizeof(double));
        if (maxkey == NULL) goto fail;
        s->maxkey = maxkey;
        s->dcap = cap;
    }
    if (s->keep_raw && s->nfree == 0) {
        Py_ssize_t cap = s->tcap ? s->tcap * 2 : 256;
        if (cap > (Py_ssize_t)UINT32_MAX) goto fail;
        Text *texts = PyMem_Realloc(s->texts, (size_t)cap * sizeof(Text));
        if (texts == NULL) goto fail;
        s->texts = texts;
        uint32_t *free_ids = PyMem_Realloc(s->free_ids, (size_t)cap * sizeof(uint32_t));
        if (free_ids == NULL) goto fail;
        s->free_ids = free_ids;
        for (Py_ssize_t id = cap - 1; id >= s->tcap; id--) {
            texts[id].plen = texts[id].slen = 0;
            free_ids[s->nfree++] = (uint32_t)id;
        }
        s->tcap = cap;
    }
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

/* a new empty block at directory index b (room reserved) */
static Block *block_insert(Side *s, Py_ssize_t b) {
    Block *block = PyMem_Malloc(sizeof(Block));
    if (block == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t tail = s->nblocks - b;
    memmove(&s->blk[b + 1], &s->blk[b], (size_t)tail * sizeof(Block *));
    memmove(&s->cnt[b + 1], &s->cnt[b], (size_t)tail * sizeof(int));
    memmove(&s->maxkey[b + 1], &s->maxkey[b], (size_t)tail * sizeof(double));
    s->blk[b] = block;
    s->cnt[b] = 0;
    s->nblocks++;
    return block;
}

static void block_remove(Side *s, Py_ssize_t b) {
    PyMem_Free(s->blk[b]);
    Py_ssize_t tail = s->nblocks - b - 1;
    memmove(&s->blk[b], &s->blk[b + 1], (size_t)tail * sizeof(Block *));
    memmove(&s->cnt[b], &s->cnt[b + 1], (size_t)tail * sizeof(int));
    memmove(&s->maxkey[b], &s->maxkey[b + 1], (size_t)tail * sizeof(double));
    s->nblocks--;
}

/* levels [from, from + count) of a block to ``to`` of another (or the same: overlapping is fine) */
static inline void block_move(Block *dst, int to, const Block *src, int from, int count) {
    memmove(&dst->key[to], &src->key[from], (size_t)count * sizeof(double));
    memmove(&dst->size[to], &src->size[from], (size_t)count * sizeof(double));
    memmove(&dst->text[to], &src->text[from], (size_t)count * sizeof(uint32_t));
}

/* how many of ``n`` ascending keys are < key: where key is or goes (NaN: 0, as bisect_left). A sequential count
 * (two keys per SSE2 compare), cheaper than a binary search's chain of dependent, unpredictable steps. */
static inline Py_ssize_t count_below(const double *keys, Py_ssize_t n, double key) {
    Py_ssize_t below = 0, j = 0;
#ifdef __SSE2__
    __m128d kk = _mm_set1_pd(key);
    __m128i a0 = _mm_setzero_si128(), a1 = _mm_setzero_si128();
    for (; j + 4 <= n; j += 4) { /* a true compare is all ones: -1 per key below */
        a0 = _mm_sub_epi64(a0, _mm_castpd_si128(_mm_cmplt_pd(_mm_loadu_pd(keys + j), kk)));
        a1 = _mm_sub_epi64(a1, _mm_castpd_si128(_mm_cmplt_pd(_mm_loadu_pd(keys + j + 2), kk)));
    }
    a0 = _mm_add_epi64(a0, a1);
    below = (Py_ssize_t)(_mm_cvtsi128_si64(a0) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(a0, a0)));
#endif
    for (; j < n; j++) below += keys[j] < key;
    return below;
}

/* the block where ``key`` is or would go: the first whose last key is >= key, else the last (nblocks > 0). Writes
 * cluster at the top (the end): the search gallops down from there, then halves the stretch it found. */
static inline Py_ssize_t find_block(const Side *s, double key) {
    Py_ssize_t last = s->nblocks - 1;
    if (last == 0 || s->maxkey[last - 1] < key) return last;
    /* maxkey[hi] >= key; find lo with maxkey[lo] < key (or lo = -1) */
    Py_ssize_t hi = last - 1, step = 1, lo = hi - step;
    while (lo >= 0 && !(s->maxkey[lo] < key)) {
        hi = lo;
        step <<= 1;
        lo = hi - step;
    }
    if (lo < -1) lo = -1;
    /* the answer is in (lo, hi]: the first index there whose maxkey is >= key; a long stretch is halved
     * (branch-free), a short one counted */
    const double *base = s->maxkey + lo + 1;
    Py_ssize_t n = hi - lo - 1;
    while (n > 32) {
        Py_ssize_t half = n >> 1;
        base = base[half] < key ? base + half : base;
        n -= half;
    }
    return (base - s->maxkey) + count_below(base, n, key);
}

static inline int find_in_block(const Side *s, Py_ssize_t b, double key) {
    return (int)count_below(s->blk[b]->key, s->cnt[b], key);
}

/* remove the level at (b, i) */
static void side_remove(Side *s, Py_ssize_t b, int i) {
    Block *a = s->blk[b];
    if (s->keep_raw) release_text(s, a->text[i]);
    int c = --s->cnt[b];
    block_move(a, i, a, i + 1, c - i);
    s->n--;
    if (c == 0) {
        block_remove(s, b);
        return;
    }
    if (i == c) s->maxkey[b] = a->key[c - 1];
    /* blocks thinned out by removals are merged, so there are never many more blocks than levels / BLOCK * 4 */
    if (c < BLOCK / 4) {
        Py_ssize_t lo = b > 0 && s->cnt[b - 1] + c <= BLOCK / 2 ? b - 1 : b;
        if (lo + 1 < s->nblocks && s->cnt[lo] + s->cnt[lo + 1] <= BLOCK / 2) {
            block_move(s->blk[lo], s->cnt[lo], s->blk[lo + 1], 0, s->cnt[lo + 1]);
            s->cnt[lo] += s->cnt[lo + 1];
            s->maxkey[lo] = s->maxkey[lo + 1];
            block_remove(s, lo + 1);
        }
    }
}

/* set the level at ``price`` (valid: finite, > 0) to ``size`` (finite, >= 0; 0 removes it), with its text when
 * the side keeps text (ptext NULL: none given, only for a removal or a side without text) */
static int side_set(Side *s, double price, double size, const char *ptext, Py_ssize_t plen, const char *stext,
                    Py_ssize_t slen) {
    double key = s->sign * price;
    Py_ssize_t b = 0;
    int i = 0, found = 0;
    if (s->nblocks > 0) {
        b = find_block(s, key);
        i = find_in_block(s, b, key);
        found = i < s->cnt[b] && s->blk[b]->key[i] == key;
    }
    if (size == 0.0) {
        if (found) side_remove(s, b, i);
        return 0;
    }
    if (!found) {
        if (side_reserve(s) < 0) return -1;
        if (s->nblocks == 0) {
            if (block_insert(s, 0) == NULL) return -1;
        } else if (s->cnt[b] == BLOCK) { /* split: the upper half to a new block after it */
            Block *upper = block_insert(s, b + 1);
            if (upper == NULL) return -1;
            block_move(upper, 0, s->blk[b], BLOCK / 2, BLOCK / 2);
            s->cnt[b + 1] = BLOCK / 2;
            s->maxkey[b + 1] = s->maxkey[b];
            s->cnt[b] = BLOCK / 2;
            s->maxkey[b] = s->blk[b]->key[BLOCK / 2 - 1];
            if (i > BLOCK / 2) {
                b++;
                i -= BLOCK / 2;
            }
        }
        Block *a = s->blk[b];
        int c = s->cnt[b];
        block_move(a, i + 1, a, i, c - i);
        a->key[i] = key;
        if (s->keep_raw) a->text[i] = s->free_ids[--s->nfree];
        s->cnt[b] = c + 1;
        if (i == c) s->maxkey[b] = key;
        s->n++;
    }
    Block *a = s->blk[b];
    a->size[i] = size;
    if (s->keep_raw && ptext != NULL && text_set(&s->texts[a->text[i]], ptext, plen, stext, slen) < 0) {
        if (!found) side_remove(s, b, i); /* nothing half-listed */
        return -1;
    }
    return 0;
}

/* a walk over the levels from the best: level ``i`` of ``blk`` is the current one; ``blk`` NULL at the end */
typedef struct {
    const Side *s;
    Py_ssize_t b;
    int i;
    const Block *blk;
} Walk;

static inline void walk_start(Walk *w, const Side *s) {
    w->s = s;
    w->b = s->nblocks - 1;
    w->i = w->b >= 0 ? s->cnt[w->b] - 1 : -1;
    w->blk = w->b >= 0 ? s->blk[w->b] : NULL;
}

static inline void walk_next(Walk *w) {
    if (--w->i < 0) {
        if (--w->b < 0) {
            w->blk = NULL;
            return;
        }
        w->i = w->s->cnt[w->b] - 1;
        w->blk = w->s->blk[w->b];
    }
}

static inline double walk_key(const Walk *w) { return w->blk->key[w->i]; }
static inline double walk_size(const Walk *w) { return w->blk->size[w->i]; }
static inline double walk_price(const Walk *w) { return w->s->sign * w->blk->key[w->i]; }
static inline const Text *walk_text(const Walk *w) { return &w->s->texts[w->blk->text[w->i]]; }

/* -- decimal text -> double, as Python's float() -------------------------------------------------------- */

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* "digits" or "digits.digits" (at most 64 characters) -> its double, correctly rounded as float() does; -1 when
 * the text is not of that form. Up to 2^53 in the digits and 22 decimals the quotient of two exact doubles is
 * the correctly rounded value (IEEE division); otherwise Python's own converter. */
static int decimal_text(const char *p, Py_ssize_t n, double *out) {
    if (n <= 0 || n > 64) return -1;
    uint64_t m = 0; /* exact while there are at most 19 digits */
    Py_ssize_t i = 0;
    while (i < n && (unsigned)(p[i] - '0') < 10) m = m * 10 + (uint64_t)(p[i++] - '0');
    Py_ssize_t whole = i, frac = 0;
    if (whole == 0) return -1;
    if (i < n) {
        if (p[i] != '.' || i == n - 1) return -1;
        i++;
        while (i < n && (unsigned)(p[i] - '0') < 10) m = m * 10 + (uint64_t)(p[i++] - '0');
        if (i != n) return -1;
        frac = n - whole - 1;
    }
    if (whole + frac <= 19 && m < ((uint64_t)1 << 53) && frac <= 22) {
        *out = (double)m / POW10[frac];
        return 0;
    }
    char buf[72];
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    char *end = NULL;
    double v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (end != buf + n) return -1;
    *out = v;
    return 0;
}

/* float(obj), quickly for a plain decimal str */
static int as_double(PyObject *obj, double *out) {
    if (PyUnicode_CheckExact(obj) && PyUnicode_IS_ASCII(obj)) {
        if (decimal_text((const char *)PyUnicode_DATA(obj), PyUnicode_GET_LENGTH(obj), out) == 0) return 0;
    }
    PyObject *f = PyNumber_Float(obj);
    if (f == NULL) return -1;
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
}

/* str(obj) as UTF-8 (``*owned``: a new object to release after use, or NULL) */
static const char *as_text(PyObject *obj, Py_ssize_t *len, PyObject **owned) {
    *owned = NULL;
    if (!PyUnicode_CheckExact(obj)) {
        obj = *owned = PyObject_Str(obj);
        if (obj == NULL) return NULL;
    }
    const char *t = PyUnicode_AsUTF8AndSize(obj, len);
    if (t == NULL) Py_CLEAR(*owned);
    return t;
}

static inline int valid_price(double p) { return 0.0 < p && p < INFINITY; }
static inline int valid_size(double s) { return 0.0 <= s && s < INFINITY; }

/* -- the Book type ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD Side side[2]; /* 0: bids, 1: asks */
    int keep_raw;
} Book;

static PyObject *zero_index, *one_index;

static int get_side(int which, Side **out, Book *self) {
    if (which != 0 && which != 1) {
        PyErr_SetString(PyExc_ValueError, "side index must be 0 (bids) or 1 (asks)");
        return -1;
    }
    *out = &self->side[which];
    return 0;
}

static int invalid_level(PyObject *price, PyObject *size, double p) {
    /* the price is named first when both are wrong (L2Book's doc) */
    if (!valid_price(p))
        PyErr_Format(PyExc_ValueError, "price %R is not a finite positive number", price);
    else
        PyErr_Format(PyExc_ValueError, "size %R (at price %R) is not a finite number >= 0", size, price);
    return -1;
}

/* level[0], level[1] (new references), as Python's indexing does it */
static int level_items(PyObject *level, PyObject **price, PyObject **size) {
    if ((PyList_CheckExact(level) && PyList_GET_SIZE(level) >= 2)) {
        *price = Py_NewRef(PyList_GET_ITEM(level, 0));
        *size = Py_NewRef(PyList_GET_ITEM(level, 1));
        return 0;
    }
    if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) >= 2) {
        *price = Py_NewRef(PyTuple_GET_ITEM(level, 0));
        *size = Py_NewRef(PyTuple_GET_ITEM(level, 1));
        return 0;
    }
    *price = PyObject_GetItem(level, zero_index);
    if (*price == NULL) return -1;
    *size = PyObject_GetItem(level, one_index);
    if (*size == NULL) {
        Py_CLEAR(*price);
        return -1;
    }
    return 0;
}

/* levels [price, size, ...] of Python objects, in order; on an error the levels before it stay applied */
static int side_apply(Side *s, PyObject *levels) {
    PyObject *it = PyObject_GetIter(levels);
    if (it == NULL) return -1;
    PyObject *level;
    int rc = 0;
    while (rc == 0 && (level = PyIter_Next(it)) != NULL) {
        PyObject *price, *size;
        rc = level_items(level, &price, &size);
        Py_DECREF(level);
        if (rc < 0) break;
        double p, q;
        if (as_double(price, &p) < 0 || as_double(size, &q) < 0) {
            rc = -1;
        } else if (!valid_price(p) || !valid_size(q)) {
            rc = invalid_level(price, size, p);
        } else if (q == 0.0 || !s->keep_raw) {
            rc = side_set(s, p, q, NULL, 0, NULL, 0);
        } else {
            PyObject *pown, *sown;
            Py_ssize_t plen, slen;
            const char *pt = as_text(price, &plen, &pown);
            const char *st = pt == NULL ? NULL : as_text(size, &slen, &sown);
            if (st == NULL)
                rc = -1;
            else
                rc = side_set(s, p, q, pt, plen, st, slen);
            Py_XDECREF(pown);
            if (pt != NULL) Py_XDECREF(sown);
        }
        Py_DECREF(price);
        Py_DECREF(size);
    }
    Py_DECREF(it);
    if (rc == 0 && PyErr_Occurred()) rc = -1; /* the iterator failed */
    return rc;
}

static PyObject *Book_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"keep_raw", NULL};
    int keep_raw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p", kwlist, &keep_raw)) return NULL;
    Book *self = (Book *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->keep_raw = keep_raw;
    self->side[0].sign = 1.0;
    self->side[1].sign = -1.0;
    self->side[0].keep_raw = self->side[1].keep_raw = keep_raw;
    return (PyObject *)self;
}

static void Book_dealloc(Book *self) {
    side_dealloc(&self->side[0]);
    side_dealloc(&self->side[1]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Book_clear(Book *self, PyObject *Py_UNUSED(ignored)) {
    side_clear(&self->side[0]);
    side_clear(&self->side[1]);
    Py_RETURN_NONE;
}

static PyObject *Book_apply(Book *self, PyObject *args) {
    PyObject *bids, *asks;
    if (!PyArg_ParseTuple(args, "OO", &bids, &asks)) return NULL;
    if (side_apply(&self->side[0], bids) < 0 || side_apply(&self->side[1], asks) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Book_count(Book *self, PyObject *arg) {
    Side *s;
    if (get_side(PyLong_AsLong(arg), &s, self) < 0) return NULL;
    return PyLong_FromSsize_t(s->n);
}

/* a tuple of two new references (NULL, both released, when one is NULL) */
static PyObject *pair(PyObject *a, PyObject *b) {
    PyObject *t = a != NULL && b != NULL ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

static PyObject *level_tuple(const Walk *w) {
    return pair(PyFloat_FromDouble(walk_price(w)), PyFloat_FromDouble(walk_size(w)));
}

/* (price text, size text) */
static PyObject *text_tuple(const Walk *w) {
    const Text *t = walk_text(w);
    const char *c = text_ptr(t);
    return pair(PyUnicode_DecodeUTF8(c, t->plen, NULL), PyUnicode_DecodeUTF8(c + t->plen, t->slen, NULL));
}

static PyObject *Book_best(Book *self, PyObject *arg) {
    Side *s;
    if (get_side(PyLong_AsLong(arg), &s, self) < 0) return NULL;
    Walk w;
    walk_start(&w, s);
    if (w.blk == NULL) Py_RETURN_NONE;
    return level_tuple(&w);
}

static PyObject *Book_worst(Book *self, PyObject *arg) {
    Side *s;
    if (get_side(PyLong_AsLong(arg), &s, self) < 0) return NULL;
    if (s->n == 0) Py_RETURN_NONE;
    return PyFloat_FromDouble(s->sign * s->blk[0]->key[0]);
}

/* how many of the best levels ``n`` (None: all) asks for */
static int take_count(const Side *s, PyObject *n, Py_ssize_t *out) {
    if (n == Py_None) {
        *out = s->n;
        return 0;
    }
    Py_ssize_t k = PyLong_AsSsize_t(n);
    if (k == -1 && PyErr_Occurred()) return -1;
    *out = k < 0 ? 0 : (k > s->n ? s->n : k);
    return 0;
}

/* [(price, size)] of the best levels, best first: the best ``n`` (None: all), or (``n`` NULL) those at ``bound``
 * or better */
static PyObject *levels_list(const Side *s, Py_ssize_t n, const double *bound, int raw) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    double kb = bound != NULL ? s->sign * *bound : 0.0;
    Walk w;
    Py_ssize_t j = 0;
    /* !(key < kb): what bisect_left leaves after it, NaN included */
    for (walk_start(&w, s); w.blk != NULL && (bound != NULL ? !(walk_key(&w) < kb) : j < n); walk_next(&w), j++) {
        PyObject *item = raw ? text_tuple(&w) : level_tuple(&w);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

static PyObject *Book_top(Book *self, PyObject *args) {
    int which;
    PyObject *n;
    Side *s;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "iO", &which, &n) || get_side(which, &s, self) < 0 || take_count(s, n, &k) < 0)
        return NULL;
    return levels_list(s, k, NULL, 0);
}

static PyObject *Book_top_raw(Book *self, PyObject *args) {
    int which;
    PyObject *n;
    Side *s;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "iO", &which, &n) || get_side(which, &s, self) < 0 || take_count(s, n, &k) < 0)
        return NULL;
    if (!self->keep_raw) {
        PyErr_SetString(PyExc_ValueError, "this book does not keep raw strings: create it with L2Book(keep_raw=True)");
        return NULL;
    }
    return levels_list(s, k, NULL, 1);
}

static PyObject *Book_within(Book *self, PyObject *args) {
    int which;
    double bound;
    Side *s;
    if (!PyArg_ParseTuple(args, "id", &which, &bound) || get_side(which, &s, self) < 0) return NULL;
    return levels_list(s, 0, &bound, 0);
}

static PyObject *Book_size_at(Book *self, PyObject *args) {
    int which;
    double price;
    Side *s;
    if (!PyArg_ParseTuple(args, "id", &which, &price) || get_side(which, &s, self) < 0) return NULL;
    double key = s->sign * price, size = 0.0;
    if (s->nblocks > 0) {
        Py_ssize_t b = find_block(s, key);
        int i = find_in_block(s, b, key);
        if (i < s->cnt[b] && s->blk[b]->key[i] == key) size = s->blk[b]->size[i];
    }
    return PyFloat_FromDouble(size);
}

static PyObject *Book_truncate(Book *self, PyObject *arg) {
    Py_ssize_t depth = PyLong_AsSsize_t(arg);
    if (depth == -1 && PyErr_Occurred()) return NULL;
    if (depth < 0) depth = 0;
    for (int k = 0; k < 2; k++) {
        Side *s = &self->side[k];
        Py_ssize_t cut = s->n - depth; /* the worst ones, at the start */
        while (cut > 0) {
            Block *a = s->blk[0];
            int c = s->cnt[0], m = cut < c ? (int)cut : c;
            if (s->keep_raw)
                for (int i = 0; i < m; i++) release_text(s, a->text[i]);
            s->n -= m;
            cut -= m;
            if (m == c) {
                block_remove(s, 0);
            } else {
                block_move(a, 0, a, m, c - m);
                s->cnt[0] = c - m;
            }
        }
    }
    Py_RETURN_NONE;
}

/* (prices, sizes) as bytearrays of float64, best first */
static PyObject *Book_arrays(Book *self, PyObject *arg) {
    Side *s;
    if (get_side(PyLong_AsLong(arg), &s, self) < 0) return NULL;
    PyObject *prices = PyByteArray_FromStringAndSize(NULL, s->n * (Py_ssize_t)sizeof(double));
    PyObject *sizes = PyByteArray_FromStringAndSize(NULL, s->n * (Py_ssize_t)sizeof(double));
    if (prices == NULL || sizes == NULL) {
        Py_XDECREF(prices);
        Py_XDECREF(sizes);
        return NULL;
    }
    double *p = (double *)PyByteArray_AS_STRING(prices), *q = (double *)PyByteArray_AS_STRING(sizes);
    Walk w;
    for (walk_start(&w, s); w.blk != NULL; walk_next(&w)) {
        *p++ = walk_price(&w);
        *q++ = walk_size(&w);
    }
    return Py_BuildValue("(NN)", prices, sizes);
}

/* ([prices], [sizes]) of the best ``n`` levels, best first */
static PyObject *Book_columns(Book *self, PyObject *args) {
    int which;
    PyObject *n;
    Side *s;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "iO", &which, &n) || get_side(which, &s, self) < 0 || take_count(s, n, &k) < 0)
        return NULL;
    PyObject *prices = PyList_New(k), *sizes = PyList_New(k);
    if (prices == NULL || sizes == NULL) goto fail;
    Walk w;
    walk_start(&w, s);
    for (Py_ssize_t j = 0; j < k; j++, walk_next(&w)) {
        PyObject *p = PyFloat_FromDouble(walk_price(&w));
        if (p == NULL) goto fail;
        PyList_SET_ITEM(prices, j, p);
        PyObject *q = PyFloat_FromDouble(walk_size(&w));
        if (q == NULL) goto fail;
        PyList_SET_ITEM(sizes, j, q);
    }
    return Py_BuildValue("(NN)", prices, sizes);
fail:
    Py_XDECREF(prices);
    Py_XDECREF(sizes);
    return NULL;
}

/* [the sizes of the levels at each bound or better, added best first from 0.0] (numpy's cumsum and searchsorted
 * did the same: a NaN bound takes every level). One walk for all the bounds: the running total is read off as the
 * walk passes each bound, nearest to the top first, so each is the same sequence of additions as a walk of its own. */
static PyObject *Book_depth_sums(Book *self, PyObject *args) {
    int which;
    PyObject *bounds;
    Side *s;
    if (!PyArg_ParseTuple(args, "iO!", &which, &PyList_Type, &bounds) || get_side(which, &s, self) < 0) return NULL;
    Py_ssize_t m = PyList_GET_SIZE(bounds);
    size_t room = (size_t)(m ? m : 1);
    double *kb = PyMem_Malloc(room * sizeof(double)), *total = PyMem_Malloc(room * sizeof(double));
    Py_ssize_t *order = PyMem_Malloc(room * sizeof(Py_ssize_t));
    PyObject *out = NULL;
    if (kb == NULL || total == NULL || order == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        double bound = PyFloat_AsDouble(PyList_GET_ITEM(bounds, j));
        if (bound == -1.0 && PyErr_Occurred()) goto done;
        kb[j] = isnan(bound) ? -INFINITY : s->sign * bound; /* NaN: every level, as -inf takes them */
        order[j] = j;
    }
    for (Py_ssize_t j = 1; j < m; j++) /* the bounds nearest to the top (largest key) first; a handful of them */
        for (Py_ssize_t k = j; k > 0 && kb[order[k - 1]] < kb[order[k]]; k--) {
            Py_ssize_t t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    double run = 0.0;
    Py_ssize_t next = 0;
    Walk w;
    for (walk_start(&w, s); w.blk != NULL && next < m; walk_next(&w)) {
        double key = walk_key(&w);
        while (next < m && key < kb[order[next]]) total[order[next++]] = run; /* this level is past the bound */
        run += walk_size(&w);
    }
    while (next < m) total[order[next++]] = run;
    out = PyList_New(m);
    if (out == NULL) goto done;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *v = PyFloat_FromDouble(total[j]);
        if (v == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, j, v);
    }
done:
    PyMem_Free(kb);
    PyMem_Free(total);
    PyMem_Free(order);
    return out;
}

/* (k, summed size) of the buckets lo_k <= k < hi_k as int64 and float64 bytes, k ascending; bucket k of a level
 * is floor(q + q * edge) with q = price / bucket (as numpy's floor and astype(int64) gave it), each bucket's sizes
 * added best first from 0.0 (as numpy's bincount did). k is monotonic in the price (every operation is), so the
 * walk from the best level stops at the first one past the range. */
static PyObject *Book_buckets(Book *self, PyObject *args) {
    int which;
    double bucket, edge;
    long long lo_k, hi_k;
    Side *s;
    if (!PyArg_ParseTuple(args, "iddLL", &which, &bucket, &edge, &lo_k, &hi_k) || get_side(which, &s, self) < 0)
        return NULL;
    if (!(bucket > 0.0 && bucket < INFINITY && edge >= 0.0 && edge < 1.0)) {
        PyErr_SetString(PyExc_ValueError, "bucket must be finite and > 0, edge in [0, 1)");
        return NULL;
    }
    Py_ssize_t cap = 64, m = 0;
    int64_t *ks = PyMem_Malloc((size_t)cap * sizeof(int64_t));
    double *sums = PyMem_Malloc((size_t)cap * sizeof(double));
    PyObject *kbytes = NULL, *sbytes = NULL;
    if (ks == NULL || sums == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Walk w;
    for (walk_start(&w, s); w.blk != NULL; walk_next(&w)) {
        double q = walk_price(&w) / bucket;
        /* q + q * edge >= 0 (a positive price and bucket), so truncating is flooring */
        long long k = (long long)(q + q * edge);
        if (which == 0 ? k < lo_k : k >= hi_k) break;
        if (which == 0 ? k >= hi_k : k < lo_k) continue;
        if (m > 0 && ks[m - 1] == k) {
            sums[m - 1] += walk_size(&w);
            continue;
        }
        if (m == cap) {
            cap *= 2;
            int64_t *nk = PyMem_Realloc(ks, (size_t)cap * sizeof(int64_t));
            if (nk == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            ks = nk;
            double *ns = PyMem_Realloc(sums, (size_t)cap * sizeof(double));
            if (ns == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            sums = ns;
        }
        ks[m] = k;
        sums[m] = 0.0 + walk_size(&w);
        m++;
    }
    if (which == 0) /* bids were walked downwards */
        for (Py_ssize_t j = 0; j < m / 2; j++) {
            int64_t tk = ks[j];
            ks[j] = ks[m - 1 - j];
            ks[m - 1 - j] = tk;
            double ts = sums[j];
            sums[j] = sums[m - 1 - j];
            sums[m - 1 - j] = ts;
        }
    kbytes = PyBytes_FromStringAndSize((const char *)ks, m * (Py_ssize_t)sizeof(int64_t));
    sbytes = PyBytes_FromStringAndSize((const char *)sums, m * (Py_ssize_t)sizeof(double));
done:
    PyMem_Free(ks);
    PyMem_Free(sums);
    if (kbytes == NULL || sbytes == NULL) {
        Py_XDECREF(kbytes);
        Py_XDECREF(sbytes);
        return NULL;
    }
    return Py_BuildValue("(NN)", kbytes, sbytes);
}

/* -- Binance diff-depth frames read from their JSON text -------------------------------------------------- */

typedef struct {
    const char *p, *end;
} Cursor;

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (unsigned char)*c->p <= ' ' &&
           (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static inline int expect(Cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 0;
    }
    return -1;
}

/* a string with no escape and no control character: its content [*s, *e) */
static int read_string(Cursor *c, const char **s, const char **e) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') return -1;
    const char *q = ++c->p;
    while (q < c->end) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '"') {
            *s = c->p;
            *e = q;
            c->p = q + 1;
            return 0;
        }
        if (ch == '\\' || ch < 0x20) return -1;
        q++;
    }
    return -1;
}

/* an integer of at most 18 digits (no fraction, no exponent): every such JSON number is an int to orjson */
static int read_int(Cursor *c, long long *out) {
    skip_ws(c);
    const char *q = c->p;
    int neg = 0;
    if (q < c->end && *q == '-') {
        neg = 1;
        q++;
    }
    const char *digits = q;
    long long v = 0;
    while (q < c->end && *q >= '0' && *q <= '9') v = v * 10 + (*q++ - '0');
    Py_ssize_t n = q - digits;
    if (n == 0 || n > 18 || (n > 1 && *digits == '0')) return -1;
    if (q < c->end && (*q == '.' || *q == 'e' || *q == 'E')) return -1;
    c->p = q;
    *out = neg ? -v : v;
    return 0;
}

static int read_literal(Cursor *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return -1;
    c->p += n;
    return 0;
}

/* any value of the subset taken (strings as read_string, integers as read_int, literals, arrays, objects) */
static int skip_value(Cursor *c, int depth) {
    skip_ws(c);
    if (c->p >= c->end || depth > 32) return -1;
    const char *s, *e;
    long long v;
    switch (*c->p) {
        case '"':
            return read_string(c, &s, &e);
        case 't':
            return read_literal(c, "true");
        case 'f':
            return read_literal(c, "false");
        case 'n':
            return read_literal(c, "null");
        case '[':
            c->p++;
            skip_ws(c);
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                return 0;
            }
            for (;;) {
                if (skip_value(c, depth + 1) < 0) return -1;
                skip_ws(c);
                if (c->p < c->end && *c->p == ',') {
                    c->p++;
                    continue;
                }
                return expect(c, ']');
            }
        case '{':
            c->p++;
            skip_ws(c);
            if (c->p < c->end && *c->p == '}') {
                c->p++;
                return 0;
            }
            for (;;) {
                if (read_string(c, &s, &e) < 0 || expect(c, ':') < 0 || skip_value(c, depth + 1) < 0) return -1;
                skip_ws(c);
                if (c->p < c->end && *c->p == ',') {
                    c->p++;
                    continue;
                }
                return expect(c, '}');
            }
        default:
            return read_int(c, &v);
    }
}

/* a level parsed: its values and where its text is */
typedef struct {
    double price, size;
    const char *ptext, *stext;
    Py_ssize_t plen, slen;
} Parsed;

typedef struct {
    Parsed *items;
    Py_ssize_t n, cap;
} Levels;

/* a price or size: a JSON string "digits" or "digits.digits", its value (as float() gives it) and where its text
 * is; -1 for anything else */
static inline int read_decimal(Cursor *c, double *value, const char **text, Py_ssize_t *len) {
    skip_ws(c);
    const char *p = c->p, *end = c->end;
    if (p >= end || *p != '"') return -1;
    const char *q = ++p;
    uint64_t m = 0; /* exact while there are at most 19 digits */
    while (q < end && (unsigned)(*q - '0') < 10) m = m * 10 + (uint64_t)(*q++ - '0');
    Py_ssize_t whole = q - p, frac = 0;
    if (whole == 0) return -1;
    if (q < end && *q == '.') {
        const char *f = ++q;
        while (q < end && (unsigned)(*q - '0') < 10) m = m * 10 + (uint64_t)(*q++ - '0');
        frac = q - f;
        if (frac == 0) return -1;
    }
    if (q >= end || *q != '"') return -1;
    *text = p;
    *len = q - p;
    c->p = q + 1;
    if (whole + frac <= 19 && m < ((uint64_t)1 << 53) && frac <= 22) {
        *value = (double)m / POW10[frac];
        return 0;
    }
    return decimal_text(p, q - p, value); /* the long way, Python's own converter */
}

/* [[price, size, ...], ...] with valid decimal strings (price > 0, size >= 0), replacing ``out``'s levels */
static int read_levels(Cursor *c, Levels *out) {
    out->n = 0;
    if (expect(c, '[') < 0) return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (out->n == out->cap) {
            Py_ssize_t cap = out->cap ? out->cap * 2 : 256;
            Parsed *items = PyMem_Realloc(out->items, (size_t)cap * sizeof(Parsed));
            if (items == NULL) return -1;
            out->items = items;
            out->cap = cap;
        }
        Parsed *lv = &out->items[out->n];
        if (expect(c, '[') < 0 || read_decimal(c, &lv->price, &lv->ptext, &lv->plen) < 0 || expect(c, ',') < 0 ||
            read_decimal(c, &lv->size, &lv->stext, &lv->slen) < 0)
            return -1;
        if (!valid_price(lv->price) || !valid_size(lv->size)) return -1;
        for (;;) { /* fields after the size are ignored */
            skip_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                if (skip_value(c, 2) < 0) return -1;
                continue;
            }
            if (expect(c, ']') < 0) return -1;
            break;
        }
        out->n++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return expect(c, ']');
    }
}

/* the fields of a depthUpdate the sync reads; a field given twice counts once, the last (as in a dict) */
typedef struct {
    long long U, u, pu, T, E;
    int has_U, has_u, has_pu, has_T, has_E; /* 1: an integer, 2: null (U and u: integers only) */
    int has_b, has_a;
    Levels b, a;
} Diff;

static void diff_reset(Diff *d) {
    d->has_U = d->has_u = d->has_pu = d->has_T = d->has_E = d->has_b = d->has_a = 0;
    d->b.n = d->a.n = 0;
}

/* an integer or null field (``has``: 1 or 2 as in Diff) */
static int read_int_or_null(Cursor *c, long long *v, int *has) {
    skip_ws(c);
    if (c->p < c->end && *c->p == 'n') {
        *has = 2;
        return read_literal(c, "null");
    }
    *has = 1;
    return read_int(c, v);
}

static int key_is(const char *s, const char *e, const char *word) {
    size_t n = strlen(word);
    return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

/* an object's fields into ``d``; with ``inner``, a "data" object's into it (*has_data set) */
static int read_fields(Cursor *c, Diff *d, Diff *inner, int *has_data) {
    diff_reset(d);
    if (expect(c, '{') < 0) return -1;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        const char *s, *e;
        if (read_string(c, &s, &e) < 0 || expect(c, ':') < 0) return -1;
        int rc;
        if (key_is(s, e, "U")) {
            rc = read_int(c, &d->U);
            d->has_U = 1;
        } else if (key_is(s, e, "u")) {
            rc = read_int(c, &d->u);
            d->has_u = 1;
        } else if (key_is(s, e, "pu")) {
            rc = read_int_or_null(c, &d->pu, &d->has_pu);
        } else if (key_is(s, e, "T")) {
            rc = read_int_or_null(c, &d->T, &d->has_T);
        } else if (key_is(s, e, "E")) {
            rc = read_int_or_null(c, &d->E, &d->has_E);
        } else if (key_is(s, e, "b")) {
            rc = read_levels(c, &d->b);
            d->has_b = 1;
        } else if (key_is(s, e, "a")) {
            rc = read_levels(c, &d->a);
            d->has_a = 1;
        } else if (inner != NULL && key_is(s, e, "data")) {
            rc = read_fields(c, inner, NULL, NULL);
            *has_data = 1;
        } else {
            rc = skip_value(c, 1);
        }
        if (rc < 0) return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return expect(c, '}');
    }
}

/* one frame, bare or in a combined stream's "data": the diff read (top or inner), NULL when any part of it is
 * not understood */
static Diff *read_frame(const char *text, Py_ssize_t len, Diff *top, Diff *inner) {
    Cursor c = {text, text + len};
    int has_data = 0;
    if (read_fields(&c, top, inner, &has_data) < 0) return NULL;
    skip_ws(&c);
    if (c.p != c.end) return NULL;
    Diff *d = has_data ? inner : top;
    if (d->has_U != 1 || d->has_u != 1 || !d->has_b || !d->has_a) return NULL;
    return d;
}

static int apply_levels(Side *s, const Levels *levels) {
    for (Py_ssize_t i = 0; i < levels->n; i++) {
        const Parsed *lv = &levels->items[i];
        if (side_set(s, lv->price, lv->size, lv->ptext, lv->plen, lv->stext, lv->slen) < 0) return -1;
    }
    return 0;
}

/* -- texts read in place from Arrow string buffers ------------------------------------------------------- */

/* rows of an Arrow large_string array: ``offsets`` (int64, one more than the rows, from ``base``) into ``data`` */
typedef struct {
    Py_buffer offsets, data;
    Py_ssize_t base, rows;
} Texts;

static int texts_open(Texts *t, PyObject *offsets, PyObject *data, Py_ssize_t base, Py_ssize_t rows) {
    if (PyObject_GetBuffer(offsets, &t->offsets, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(data, &t->data, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&t->offsets);
        return -1;
    }
    t->base = base;
    t->rows = rows;
    if (base < 0 || rows < 0 || (base + rows + 1) * (Py_ssize_t)sizeof(int64_t) > t->offsets.len) {
        PyBuffer_Release(&t->offsets);
        PyBuffer_Release(&t->data);
        PyErr_SetString(PyExc_ValueError, "offsets do not cover the rows");
        return -1;
    }
    return 0;
}

static void texts_close(Texts *t) {
    PyBuffer_Release(&t->offsets);
    PyBuffer_Release(&t->data);
}

/* row i's bytes; -1 when the offsets point outside the data */
static inline int texts_row(const Texts *t, Py_ssize_t i, const char **text, Py_ssize_t *len) {
    const int64_t *off = (const int64_t *)t->offsets.buf + t->base + i;
    if (off[0] < 0 || off[1] < off[0] || off[1] > t->data.len) return -1;
    *text = (const char *)t->data.buf + off[0];
    *len = (Py_ssize_t)(off[1] - off[0]);
    return 0;
}

/* depth_run(offsets, data, base, rows, takes, start, stop, last_update_id, futures) -> (end, last_update_id, ts_ms)
 *
 * Applies the rows from ``start`` while each is one ``takes`` marks (uint8 per row: a diff row, not null) whose
 * payload is a diff (bare or in a combined stream's "data") that DepthSync's synced rule applies (futures: pu ==
 * the previous u; spot: u > the previous u and U <= it + 1), and stops before ``stop`` or the first row it does
 * not take, which it leaves untouched. ``ts_ms``: the T (or E when there is no T; none when that is not an
 * integer) of the last diff applied that has one, None when none has. */
static PyObject *Book_depth_run(Book *self, PyObject *args) {
    PyObject *offsets, *data, *takes_obj, *last;
    Py_ssize_t base, rows, start, stop;
    int futures;
    if (!PyArg_ParseTuple(args, "OOnnOnnO!p", &offsets, &data, &base, &rows, &takes_obj, &start, &stop,
                          &PyLong_Type, &last, &futures))
        return NULL;
    int overflow;
    long long cur = PyLong_AsLongLongAndOverflow(last, &overflow);
    if (overflow || cur == LLONG_MAX) /* beyond what a run follows: left to the Python path */
        return Py_BuildValue("(nOO)", start, last, Py_None);
    Texts t;
    if (texts_open(&t, offsets, data, base, rows) < 0) return NULL;
    Py_buffer takes;
    if (PyObject_GetBuffer(takes_obj, &takes, PyBUF_SIMPLE) < 0) {
        texts_close(&t);
        return NULL;
    }
    if (stop > rows) stop = rows;
    if (stop > takes.len) stop = takes.len;
    Diff top, inner;
    memset(&top, 0, sizeof(top));
    memset(&inner, 0, sizeof(inner));
    int has_ts = 0, failed = 0;
    long long ts = 0;
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < stop && !(cur == LLONG_MAX); i++) {
        const char *text;
        Py_ssize_t len;
        if (!((const uint8_t *)takes.buf)[i] || texts_row(&t, i, &text, &len) < 0) break;
        Diff *d = read_frame(text, len, &top, &inner);
        if (d == NULL) break;
        if (futures ? d->has_pu != 1 || d->pu != cur : !(d->u > cur && d->U <= cur + 1)) break;
        if (apply_levels(&self->side[0], &d->b) < 0 || apply_levels(&self->side[1], &d->a) < 0) {
            failed = 1; /* out of memory only: every value was checked */
            break;
        }
        cur = d->u;
        int kind = d->has_T ? d->has_T : d->has_E;
        if (kind == 1) {
            ts = d->has_T ? d->T : d->E;
            has_ts = 1;
        }
    }
    PyMem_Free(top.b.items);
    PyMem_Free(top.a.items);
    PyMem_Free(inner.b.items);
    PyMem_Free(inner.a.items);
    PyBuffer_Release(&takes);
    texts_close(&t);
    if (failed) return NULL;
    if (has_ts) return Py_BuildValue("(nLL)", i, cur, ts);
    return Py_BuildValue("(nLO)", i, cur, Py_None);
}

/* the first place of ``needle`` (not empty) in [at, end), NULL when there is none. memchr looks for the needle's
 * first letter or digit (``anchor``: its index), rarer in JSON than quotes and colons. */
static inline const char *find_text(const char *at, const char *end, const char *needle, Py_ssize_t n,
                                    Py_ssize_t anchor) {
    const char *from = at + anchor;
    while (end - from >= n - anchor) {
        const char *hit = memchr(from, needle[anchor], (size_t)(end - from - (n - anchor) + 1));
        if (hit == NULL) return NULL;
        if (memcmp(hit - anchor, needle, (size_t)n) == 0) return hit - anchor;
        from = hit + 1;
    }
    return NULL;
}

static Py_ssize_t anchor_of(const char *needle, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if ((needle[i] >= 'A' && needle[i] <= 'Z') || (needle[i] >= 'a' && needle[i] <= 'z') ||
            (needle[i] >= '0' && needle[i] <= '9'))
            return i;
    return 0;
}

/* first_integers(offsets, data, base, rows, patterns) -> (values, found) | None
 *
 * For each row, the integer of the first pattern (prefix, suffix) found in it: the leftmost place where the
 * prefix, ASCII digits and the suffix follow one another, as the regex prefix(\d+)suffix finds it (Python's
 * ``re`` and polars' ``str.extract`` alike) and polars casts it: values as int64 bytes, found as uint8 bytes.
 * None when that equivalence is not certain for some row (a non-ASCII character where a digit could be: \d
 * matches other digits too; more than 18 digits), for the regex path to decide. */
static PyObject *first_integers(PyObject *module, PyObject *args) {
    PyObject *offsets, *data, *patterns;
    Py_ssize_t base, rows;
    if (!PyArg_ParseTuple(args, "OOnnO!", &offsets, &data, &base, &rows, &PyList_Type, &patterns)) return NULL;
    Py_ssize_t np = PyList_GET_SIZE(patterns);
    const char *pre[8], *suf[8];
    Py_ssize_t prelen[8], suflen[8], anchor[8];
    if (np > 8) {
        PyErr_SetString(PyExc_ValueError, "at most 8 patterns");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < np; k++) {
        PyObject *pair = PyList_GET_ITEM(patterns, k);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0)) ||
            !PyBytes_Check(PyTuple_GET_ITEM(pair, 1)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 0)) == 0) {
            PyErr_SetString(PyExc_TypeError, "patterns: (prefix, suffix) pairs of bytes, the prefix not empty");
            return NULL;
        }
        pre[k] = PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 0));
        prelen[k] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 0));
        suf[k] = PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 1));
        suflen[k] = PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1));
        anchor[k] = anchor_of(pre[k], prelen[k]);
    }
    Texts t;
    if (texts_open(&t, offsets, data, base, rows) < 0) return NULL;
    PyObject *values = PyByteArray_FromStringAndSize(NULL, rows * (Py_ssize_t)sizeof(int64_t));
    PyObject *found = PyByteArray_FromStringAndSize(NULL, rows);
    if (values == NULL || found == NULL) goto fail;
    int64_t *v = (int64_t *)PyByteArray_AS_STRING(values);
    uint8_t *f = (uint8_t *)PyByteArray_AS_STRING(found);
    for (Py_ssize_t i = 0; i < rows; i++) {
        const char *text;
        Py_ssize_t len;
        if (texts_row(&t, i, &text, &len) < 0) goto unsure;
        const char *end = text + len;
        f[i] = 0;
        v[i] = 0;
        for (Py_ssize_t k = 0; k < np && !f[i]; k++) {
            const char *at = text;
            while ((at = find_text(at, end, pre[k], prelen[k], anchor[k])) != NULL) {
                const char *q = at + prelen[k];
                int64_t x = 0;
                int digits = 0;
                while (q < end && *q >= '0' && *q <= '9') {
                    if (++digits > 18) goto unsure;
                    x = x * 10 + (*q++ - '0');
                }
                if (q < end && (unsigned char)*q >= 0x80) goto unsure;
                if (digits > 0 && end - q >= suflen[k] && memcmp(q, suf[k], (size_t)suflen[k]) == 0) {
                    v[i] = x;
                    f[i] = 1;
                    break;
                }
                at++;
            }
        }
    }
    texts_close(&t);
    return Py_BuildValue("(NN)", values, found);
unsure:
    texts_close(&t);
    Py_DECREF(values);
    Py_DECREF(found);
    Py_RETURN_NONE;
fail:
    texts_close(&t);
    Py_XDECREF(values);
    Py_XDECREF(found);
    return NULL;
}

static PyMethodDef Book_methods[] = {
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "Remove every level."},
    {"apply", (PyCFunction)Book_apply, METH_VARARGS, "apply(bids, asks): levels [price, size, ...] in order."},
    {"count", (PyCFunction)Book_count, METH_O, "count(side) -> levels on the side."},
    {"best", (PyCFunction)Book_best, METH_O, "best(side) -> (price, size) | None."},
    {"worst", (PyCFunction)Book_worst, METH_O, "worst(side) -> price | None."},
    {"top", (PyCFunction)Book_top, METH_VARARGS, "top(side, n | None) -> [(price, size)], best first."},
    {"top_raw", (PyCFunction)Book_top_raw, METH_VARARGS, "top_raw(side, n | None) -> [(price, size) texts]."},
    {"within", (PyCFunction)Book_within, METH_VARARGS, "within(side, bound) -> levels at bound or better."},
    {"size_at", (PyCFunction)Book_size_at, METH_VARARGS, "size_at(side, price) -> size (0.0: none)."},
    {"truncate", (PyCFunction)Book_truncate, METH_O, "truncate(depth): keep the best depth levels per side."},
    {"arrays", (PyCFunction)Book_arrays, METH_O, "arrays(side) -> (prices, sizes) float64 bytearrays."},
    {"columns", (PyCFunction)Book_columns, METH_VARARGS, "columns(side, n) -> ([prices], [sizes])."},
    {"depth_sums", (PyCFunction)Book_depth_sums, METH_VARARGS, "depth_sums(side, [bound]) -> [summed size]."},
    {"buckets", (PyCFunction)Book_buckets, METH_VARARGS, "buckets(side, bucket, edge, lo_k, hi_k) -> (k, size) bytes."},
    {"depth_run", (PyCFunction)Book_depth_run, METH_VARARGS, "Apply a run of Binance diff-depth rows."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mdplatform.book._native.Book",
    .tp_basicsize = sizeof(Book),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("Both sides of one order book (see _l2.L2Book)."),
    .tp_new = Book_new,
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_methods = Book_methods,
};

static PyMethodDef module_methods[] = {
    {"first_integers", first_integers, METH_VARARGS, "The integer after the first pattern found in each text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mdplatform.book._native",
    .m_doc = PyDoc_STR("The order book's levels in C (see _native.c)."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&BookType) < 0) return NULL;
    zero_index = PyLong_FromLong(0);
    one_index = PyLong_FromLong(1);
    if (zero_index == NULL || one_index == NULL) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Book", (PyObject *)&BookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
