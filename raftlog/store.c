/* store.c: the Raft log in RocksDB (see store.h for the contract).
 *
 * On-disk format, all in the default column family. Keys start with a one-byte kind:
 *   'e' + u64 index (big-endian, so entries sort by index)   a log entry
 *   'h'                                                      the hard state
 *   's'                                                      the snapshot metadata
 *   'm' + key bytes (1..RLOG_META_KEY_MAX)                   a named metadata value
 * Every value is   [version u8 = 1][body][crc32c u32]   where the CRC (Castagnoli, big-endian)
 * covers the key, the version byte and the body, so a record copied under the wrong key fails too.
 * Bodies (integers big-endian):
 *   entry:    term u64, type u8, data length u32, data
 *   hard:     term u64, vote u64, commit u64
 *   snapshot: index u64, term u64
 *   meta:     the value bytes
 * Everything read back is checked (version, lengths, CRC) and rejected with RLOG_ECORRUPT.
 *
 * Invariants: first_index == snap_index + 1 always; the entries on disk plus the staged overlay are
 * exactly [first_index, last_index]. The overlay holds the entries staged since the last flush;
 * they always form the tail of the log, [ents_lo, last_index], because an append may only extend
 * the log or replace a suffix of it. Entries below ents_lo are read from RocksDB, where nothing
 * staged can have changed them (staged deletes only touch indexes >= ents_lo or < first_index).
 */
#include "raftlog/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#define REC_VERSION 1
#define REC_CRC     4 /* trailing CRC bytes */
#define KEY_ENTRY   'e'
#define KEY_HARD    'h'
#define KEY_SNAP    's'
#define KEY_META    'm'
#define ENT_KEY_LEN 9
#define ENT_HDR     (1 + 8 + 1 + 4) /* version, term, type, length */
#define HARD_LEN    (1 + 24 + REC_CRC)
#define SNAP_LEN    (1 + 16 + REC_CRC)
#define ERR_MAX     256

/* RocksDB tuning: the log is append-mostly, read mostly near its tail, and trimmed from the front.
 */
#define WRITE_BUFFER_BYTES (16u * 1024 * 1024)
#define MAX_OPEN_FILES     256
#define INFO_LOG_KEEP      3
/* The staged entries' records share one buffer (one allocation per flush, not one per entry);
 * a buffer grown beyond this by a large batch is given back after the flush. */
#define STAGE_KEEP_BYTES (1u << 20)

struct staged_ent {
    uint64_t term;
    size_t off; /* the encoded record, as put into the batch: stage + off */
    size_t vlen;
};

struct staged_meta {
    char key[RLOG_META_KEY_MAX + 1];
    void *val; /* raw value bytes */
    size_t len;
};

struct rlog {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wsync;
    rocksdb_writeoptions_t *wnosync;
    rocksdb_writebatch_t *batch;
    int pending;

    uint64_t last;
    uint64_t snap_index;
    uint64_t snap_term;
    struct rlog_hard_state hs;

    struct staged_ent *ents; /* entries [ents_lo, ents_lo + n_ents) staged since the last flush */
    size_t n_ents, cap_ents;
    char *stage; /* their records (and those of entries replaced since) */
    size_t stage_len, stage_cap;
    uint64_t ents_lo;
    struct staged_meta *metas;
    size_t n_metas, cap_metas;

    int failed;
    char err[ERR_MAX];

    /* rlog_compact_log runs RocksDB's range compaction on a thread of its own (the db handle
     * is thread-safe); the loop thread never waits for it, except in rlog_close. */
    pthread_t compact_thread;
    int compact_started, compact_busy;
    uint64_t compact_to;

    /* rlog_flush_start hands the batch to a writer thread, which writes it synced and calls
     * notify. Until the caller's thread sees it finished (rlog_flush_busy, or any call that
     * stages, which waits), the batch and the overlay stay as they are: reads see the overlay,
     * and the writer touches nothing but the batch and the db handle. */
    pthread_t writer;
    pthread_mutex_t mu; /* made with the store; guards job, done, stop, job_err and notify */
    pthread_cond_t cv;
    int job, done, stop; /* a batch waits for the writer / it was written / the writer exits */
    char *job_err;       /* RocksDB's error for the batch written, or NULL */
    int writer_started;
    int inflight; /* the caller's view: a batch is with the writer and not yet finished */
    void (*notify)(void *);
    void *notify_arg;
};

/* ---- CRC32C (Castagnoli), slicing-by-8, tables built once ---- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_tab[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_tab[0][c & 0xff] ^ (c >> 8);
            crc_tab[k][n] = c;
        }
    }
}

/* Extends a finished CRC over more bytes: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
static uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
              crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- byte order helpers ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- records: [version][body][crc over key || version || body] ---- */

static void rec_seal(const void *key, size_t klen, unsigned char *val, size_t vlen)
{
    uint32_t c = crc32c(crc32c(0, key, klen), val, vlen - REC_CRC);
    put_be32(val + vlen - REC_CRC, c);
}

static int rec_check(const void *key, size_t klen, const unsigned char *val, size_t vlen)
{
    if (vlen < 1 + REC_CRC || val[0] != REC_VERSION)
        return RLOG_ECORRUPT;
    uint32_t c = crc32c(crc32c(0, key, klen), val, vlen - REC_CRC);
    return c == get_be32(val + vlen - REC_CRC) ? RLOG_OK : RLOG_ECORRUPT;
}

static void ent_key(unsigned char key[ENT_KEY_LEN], uint64_t index)
{
    key[0] = KEY_ENTRY;
    put_be64(key + 1, index);
}

static size_t ent_record_len(const struct rlog_entry *e)
{
    return ENT_HDR + e->len + REC_CRC;
}

/* Encodes one entry into v (ent_record_len(e) bytes). */
static void ent_encode(const struct rlog_entry *e, unsigned char *v)
{
    size_t vlen = ent_record_len(e);
    unsigned char key[ENT_KEY_LEN];
    ent_key(key, e->index);
    v[0] = REC_VERSION;
    put_be64(v + 1, e->term);
    v[9] = e->type;
    put_be32(v + 10, (uint32_t)e->len);
    if (e->len)
        memcpy(v + ENT_HDR, e->data, e->len);
    rec_seal(key, sizeof(key), v, vlen);
}

/* Validates the record stored for `index` and fills `out`; out->data is a malloc'd copy when
 * copy_data, else left NULL. */
static int ent_decode(uint64_t index, const char *val, size_t vlen, struct rlog_entry *out,
                      int copy_data)
{
    const unsigned char *v = (const unsigned char *)val;
    unsigned char key[ENT_KEY_LEN];
    ent_key(key, index);
    if (vlen < ENT_HDR + REC_CRC || v[0] != REC_VERSION)
        return RLOG_ECORRUPT;
    uint32_t len = get_be32(v + 10);
    if (len > RLOG_ENTRY_DATA_MAX || vlen != ENT_HDR + (size_t)len + REC_CRC)
        return RLOG_ECORRUPT;
    if (rec_check(key, sizeof(key), v, vlen) != RLOG_OK)
        return RLOG_ECORRUPT;
    void *data = NULL;
    if (copy_data) {
        data = malloc(len ? len : 1);
        if (!data)
            return RLOG_ENOMEM;
        memcpy(data, v + ENT_HDR, len);
    }
    out->index = index;
    out->term = get_be64(v + 1);
    out->type = v[9];
    out->data = data;
    out->len = len;
    return RLOG_OK;
}

/* ---- errors ---- */

const char *rlog_errstr(int code)
{
    switch (code) {
    case RLOG_OK:
        return "ok";
    case RLOG_EIO:
        return "storage I/O error";
    case RLOG_ENOTFOUND:
        return "not found";
    case RLOG_EINVAL:
        return "invalid argument";
    case RLOG_ECORRUPT:
        return "corrupt record";
    case RLOG_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

const char *rlog_last_error(const struct rlog *s)
{
    return s->err;
}

/* Records a RocksDB error (consuming errptr) and makes the store fail from now on. */
static int fail(struct rlog *s, const char *what, char *errptr)
{
    if (!s->failed)
        snprintf(s->err, sizeof(s->err), "%s: %s", what, errptr ? errptr : "unknown error");
    s->failed = 1;
    rocksdb_free(errptr);
    return RLOG_EIO;
}

/* ---- staged overlay ---- */

static void clear_overlay(struct rlog *s)
{
    s->n_ents = 0;
    s->stage_len = 0;
    if (s->stage_cap > STAGE_KEEP_BYTES) {
        free(s->stage);
        s->stage = NULL;
        s->stage_cap = 0;
    }
    for (size_t i = 0; i < s->n_metas; i++)
        free(s->metas[i].val);
    s->n_metas = 0;
}

/* Makes room for `need` elements; returns the (possibly moved) array, or NULL leaving it as it was.
 */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(arr, ncap * elem);
    if (p)
        *cap = ncap;
    return p;
}

static struct staged_ent *staged_at(const struct rlog *s, uint64_t index)
{
    if (s->n_ents == 0 || index < s->ents_lo || index - s->ents_lo >= s->n_ents)
        return NULL;
    return &s->ents[index - s->ents_lo];
}

/* ---- open / close ---- */

void rlog_close(struct rlog *s)
{
    if (!s)
        return;
    if (s->compact_started)
        pthread_join(s->compact_thread, NULL);
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    rocksdb_free(s->job_err);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    clear_overlay(s);
    free(s->ents);
    free(s->stage);
    free(s->metas);
    if (s->db)
        rocksdb_close(s->db);
    if (s->batch)
        rocksdb_writebatch_destroy(s->batch);
    if (s->wsync)
        rocksdb_writeoptions_destroy(s->wsync);
    if (s->wnosync)
        rocksdb_writeoptions_destroy(s->wnosync);
    if (s->ropts)
        rocksdb_readoptions_destroy(s->ropts);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    free(s);
}

/* Reads a fixed-size record (hard state or snapshot); *found = 0 when absent. */
static int load_fixed(struct rlog *s, char kind, unsigned char *val, size_t vlen, int *found)
{
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(s->db, s->ropts, &kind, 1, &err);
    if (err)
        return fail(s, "read", err);
    *found = ps != NULL;
    if (!ps)
        return RLOG_OK;
    size_t n = 0;
    const char *p = rocksdb_pinnableslice_value(ps, &n);
    int rc = RLOG_ECORRUPT;
    if (n == vlen && rec_check(&kind, 1, (const unsigned char *)p, n) == RLOG_OK) {
        memcpy(val, p, n);
        rc = RLOG_OK;
    }
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

/* Index of the first (dir > 0) or last (dir < 0) entry key; *found = 0 when there are none. */
static int seek_entry(struct rlog *s, int dir, uint64_t *index, int *found)
{
    unsigned char key[ENT_KEY_LEN];
    key[0] = KEY_ENTRY;
    memset(key + 1, dir > 0 ? 0x00 : 0xff, 8);
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ropts);
    if (dir > 0)
        rocksdb_iter_seek(it, (const char *)key, sizeof(key));
    else
        rocksdb_iter_seek_for_prev(it, (const char *)key, sizeof(key));
    int rc = RLOG_OK;
    *found = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen >= 1 && k[0] == KEY_ENTRY) {
            if (klen != ENT_KEY_LEN)
                rc = RLOG_ECORRUPT;
            else {
                *index = get_be64((const unsigned char *)k + 1);
                *found = 1;
            }
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err)
        rc = fail(s, "seek", err);
    rocksdb_iter_destroy(it);
    return rc;
}

/* Loads hard state, snapshot and the entry range, checking they agree. */
static int recover(struct rlog *s)
{
    unsigned char hv[HARD_LEN], sv[SNAP_LEN];
    int found = 0, rc = load_fixed(s, KEY_HARD, hv, sizeof(hv), &found);
    if (rc)
        return rc;
    if (found) {
        s->hs.term = get_be64(hv + 1);
        s->hs.vote = get_be64(hv + 9);
        s->hs.commit = get_be64(hv + 17);
    }
    if ((rc = load_fixed(s, KEY_SNAP, sv, sizeof(sv), &found)))
        return rc;
    if (found) {
        s->snap_index = get_be64(sv + 1);
        s->snap_term = get_be64(sv + 9);
        if (s->snap_index > RLOG_INDEX_MAX)
            return RLOG_ECORRUPT;
    }
    uint64_t lo = 0, hi = 0;
    int have_lo = 0, have_hi = 0;
    if ((rc = seek_entry(s, 1, &lo, &have_lo)) || (rc = seek_entry(s, -1, &hi, &have_hi)))
        return rc;
    s->last = s->snap_index;
    if (have_lo) {
        /* The log must start right after the snapshot and not run past the last index. */
        if (!have_hi || lo != s->snap_index + 1 || hi < lo || hi > RLOG_INDEX_MAX)
            return RLOG_ECORRUPT;
        s->last = hi;
    }
    return RLOG_OK;
}

int rlog_open(const char *dir, struct rlog **out, char *errbuf, size_t errlen)
{
    int rc = RLOG_ENOMEM;
    char *err = NULL;
    struct rlog *s = NULL;
    const char *why = "out of memory";

    *out = NULL;
    if (!dir || !*dir) {
        rc = RLOG_EINVAL;
        why = "no directory given";
        goto done;
    }
    pthread_once(&crc_once, crc_init);
    s = calloc(1, sizeof(*s));
    if (!s)
        goto done;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        goto done;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        s = NULL;
        goto done;
    }
    s->opts = rocksdb_options_create();
    s->ropts = rocksdb_readoptions_create();
    s->wsync = rocksdb_writeoptions_create();
    s->wnosync = rocksdb_writeoptions_create();
    s->batch = rocksdb_writebatch_create();
    if (!s->opts || !s->ropts || !s->wsync || !s->wnosync || !s->batch)
        goto done;
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_increase_parallelism(s->opts, 2);
    rocksdb_options_set_write_buffer_size(s->opts, WRITE_BUFFER_BYTES);
    rocksdb_options_set_max_open_files(s->opts, MAX_OPEN_FILES);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_keep_log_file_num(s->opts, INFO_LOG_KEEP);
    rocksdb_writeoptions_set_sync(s->wsync, 1);
    rocksdb_writeoptions_set_sync(s->wnosync, 0);

    s->db = rocksdb_open(s->opts, dir, &err);
    if (err) {
        rc = RLOG_EIO;
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "cannot open log store in %s: %s", dir, err);
        rocksdb_free(err);
        why = NULL;
        goto done;
    }
    rc = recover(s);
    if (rc == RLOG_EIO)
        why = s->err;
    else if (rc == RLOG_ECORRUPT)
        why = "stored log state failed validation";
done:
    if (rc == RLOG_OK) {
        *out = s;
        return RLOG_OK;
    }
    if (why && errbuf && errlen)
        snprintf(errbuf, errlen, "cannot open log store in %s: %s", dir ? dir : "(null)", why);
    rlog_close(s);
    return rc;
}

/* ---- reads ---- */

uint64_t rlog_first_index(const struct rlog *s)
{
    return s->snap_index + 1;
}

uint64_t rlog_last_index(const struct rlog *s)
{
    return s->last;
}

void rlog_hard_state(const struct rlog *s, struct rlog_hard_state *out)
{
    *out = s->hs;
}

void rlog_snapshot(const struct rlog *s, uint64_t *index_out, uint64_t *term_out)
{
    if (index_out)
        *index_out = s->snap_index;
    if (term_out)
        *term_out = s->snap_term;
}

/* Reads entry `index` (known to be in [first, last]) from the overlay or RocksDB. */
static int read_entry(struct rlog *s, uint64_t index, struct rlog_entry *out, int copy_data)
{
    const struct staged_ent *se = staged_at(s, index);
    if (se)
        return ent_decode(index, s->stage + se->off, se->vlen, out, copy_data);
    unsigned char key[ENT_KEY_LEN];
    ent_key(key, index);
    char *err = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned(s->db, s->ropts, (const char *)key, sizeof(key), &err);
    if (err)
        return fail(s, "read entry", err);
    if (!ps)
        return RLOG_ECORRUPT; /* a hole inside [first, last] */
    size_t n = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &n);
    int rc = ent_decode(index, v, n, out, copy_data);
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rlog_get(struct rlog *s, uint64_t index, struct rlog_entry *out)
{
    if (s->failed)
        return RLOG_EIO;
    if (!out)
        return RLOG_EINVAL;
    if (index <= s->snap_index || index > s->last)
        return RLOG_ENOTFOUND;
    return read_entry(s, index, out, 1);
}

int rlog_term(struct rlog *s, uint64_t index, uint64_t *term_out)
{
    if (s->failed)
        return RLOG_EIO;
    if (!term_out)
        return RLOG_EINVAL;
    if (index == s->snap_index) {
        *term_out = s->snap_term;
        return RLOG_OK;
    }
    if (index < s->snap_index || index > s->last)
        return RLOG_ENOTFOUND;
    const struct staged_ent *se = staged_at(s, index);
    if (se) {
        *term_out = se->term; /* built by us this turn; verified when read back from disk */
        return RLOG_OK;
    }
    struct rlog_entry e;
    int rc = read_entry(s, index, &e, 0);
    if (rc == RLOG_OK)
        *term_out = e.term;
    return rc;
}

/* ---- the writer thread ---- */

static void *writer_main(void *arg)
{
    struct rlog *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->job && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->job)
            break; /* stop, with nothing left to write */
        s->job = 0;
        pthread_mutex_unlock(&s->mu);
        char *err = NULL;
        rocksdb_write(s->db, s->wsync, s->batch, &err);
        pthread_mutex_lock(&s->mu);
        s->job_err = err;
        s->done = 1;
        pthread_cond_broadcast(&s->cv);
        /* Under the lock: once rlog_set_flush_notify(NULL) returns, no call is under way. */
        if (s->notify)
            s->notify(s->notify_arg);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The end of every flush, on the caller's thread: the batch and the overlay start over. */
static int flush_done(struct rlog *s, char *err)
{
    rocksdb_writebatch_clear(s->batch);
    clear_overlay(s);
    s->pending = 0;
    if (err)
        return fail(s, "write", err);
    return RLOG_OK;
}

/* Finishes the batch with the writer once it is written; waits for it when `wait`. Returns 1
 * while it is still being written (never when waiting), else what the write returned (RLOG_EIO
 * whenever the store has failed). Every call that stages or flushes waits here first, so a
 * batch never changes under the writer and batches reach RocksDB in the order staged. */
static int finish_inflight(struct rlog *s, int wait)
{
    /* Finished already (a call that stages waited for it): its outcome is the store's state. */
    if (!s->inflight)
        return s->failed ? RLOG_EIO : RLOG_OK;
    pthread_mutex_lock(&s->mu);
    while (wait && !s->done)
        pthread_cond_wait(&s->cv, &s->mu);
    int done = s->done;
    char *err = s->job_err;
    if (done) {
        s->done = 0;
        s->job_err = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!done)
        return 1;
    s->inflight = 0;
    return flush_done(s, err);
}

/* ---- writes ---- */

static int check_append(const struct rlog *s, const struct rlog_entry *ents, size_t n)
{
    uint64_t lo = ents[0].index;
    if (lo <= s->snap_index || lo > s->last + 1 || lo > RLOG_INDEX_MAX)
        return RLOG_EINVAL;
    if (n - 1 > RLOG_INDEX_MAX - lo)
        return RLOG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].index != lo + i || ents[i].len > RLOG_ENTRY_DATA_MAX)
            return RLOG_EINVAL;
        if (ents[i].len && !ents[i].data)
            return RLOG_EINVAL;
    }
    return RLOG_OK;
}

int rlog_append(struct rlog *s, const struct rlog_entry *ents, size_t n)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (n == 0)
        return RLOG_OK;
    if (!ents)
        return RLOG_EINVAL;
    int rc = check_append(s, ents, n);
    if (rc)
        return rc;

    /* Entries staged from lo on are replaced; those below it stay. */
    uint64_t lo = ents[0].index;
    size_t keep = (s->n_ents && lo >= s->ents_lo) ? (size_t)(lo - s->ents_lo) : 0;
    struct staged_ent *grown = grow(s->ents, &s->cap_ents, keep + n, sizeof(*s->ents));
    if (!grown)
        return RLOG_ENOMEM;
    s->ents = grown;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += ent_record_len(&ents[i]);
    if (s->stage_cap - s->stage_len < need) {
        size_t cap = s->stage_cap ? s->stage_cap : 4096;
        while (cap - s->stage_len < need)
            cap *= 2;
        char *p = realloc(s->stage, cap);
        if (!p)
            return RLOG_ENOMEM;
        s->stage = p;
        s->stage_cap = cap;
    }

    /* Nothing can fail from here on. Drop the old suffix the new entries do not overwrite. */
    if (lo + n <= s->last) {
        unsigned char from[ENT_KEY_LEN], to[ENT_KEY_LEN];
        ent_key(from, lo + n);
        ent_key(to, s->last + 1);
        rocksdb_writebatch_delete_range(s->batch, (const char *)from, sizeof(from),
                                        (const char *)to, sizeof(to));
    }
    if (keep == 0)
        s->ents_lo = lo;
    for (size_t i = 0; i < n; i++) {
        struct staged_ent *se = &s->ents[keep + i];
        se->term = ents[i].term;
        se->off = s->stage_len;
        se->vlen = ent_record_len(&ents[i]);
        ent_encode(&ents[i], (unsigned char *)s->stage + se->off);
        s->stage_len += se->vlen;
        unsigned char key[ENT_KEY_LEN];
        ent_key(key, lo + i);
        rocksdb_writebatch_put(s->batch, (const char *)key, sizeof(key), s->stage + se->off,
                               se->vlen);
    }
    s->n_ents = keep + n;
    s->last = lo + n - 1;
    s->pending = 1;
    return RLOG_OK;
}

int rlog_set_hard_state(struct rlog *s, const struct rlog_hard_state *hs)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (!hs)
        return RLOG_EINVAL;
    unsigned char v[HARD_LEN];
    char key = KEY_HARD;
    v[0] = REC_VERSION;
    put_be64(v + 1, hs->term);
    put_be64(v + 9, hs->vote);
    put_be64(v + 17, hs->commit);
    rec_seal(&key, 1, v, sizeof(v));
    rocksdb_writebatch_put(s->batch, &key, 1, (const char *)v, sizeof(v));
    s->hs = *hs;
    s->pending = 1;
    return RLOG_OK;
}

int rlog_set_snapshot(struct rlog *s, uint64_t index, uint64_t term)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (index < s->snap_index || index > RLOG_INDEX_MAX)
        return RLOG_EINVAL;

    /* Entries [first, min(index, last)] go; RocksDB drops them at compaction. */
    uint64_t first = s->snap_index + 1;
    uint64_t hi = index < s->last ? index : s->last;
    if (first <= hi) {
        unsigned char from[ENT_KEY_LEN], to[ENT_KEY_LEN];
        ent_key(from, first);
        ent_key(to, hi + 1);
        rocksdb_writebatch_delete_range(s->batch, (const char *)from, sizeof(from),
                                        (const char *)to, sizeof(to));
    }
    if (s->n_ents && index >= s->ents_lo) {
        size_t drop =
            index - s->ents_lo + 1 >= s->n_ents ? s->n_ents : (size_t)(index - s->ents_lo + 1);
        memmove(s->ents, s->ents + drop, (s->n_ents - drop) * sizeof(*s->ents));
        s->n_ents -= drop;
        s->ents_lo = index + 1;
    }

    unsigned char v[SNAP_LEN];
    char key = KEY_SNAP;
    v[0] = REC_VERSION;
    put_be64(v + 1, index);
    put_be64(v + 9, term);
    rec_seal(&key, 1, v, sizeof(v));
    rocksdb_writebatch_put(s->batch, &key, 1, (const char *)v, sizeof(v));
    s->snap_index = index;
    s->snap_term = term;
    if (s->last < index)
        s->last = index;
    s->pending = 1;
    return RLOG_OK;
}

int rlog_reset_to_snapshot(struct rlog *s, uint64_t index, uint64_t term)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (index > RLOG_INDEX_MAX)
        return RLOG_EINVAL;
    /* Every stored entry goes, whichever side of index it is on. */
    uint64_t first = s->snap_index + 1;
    if (first <= s->last) {
        unsigned char from[ENT_KEY_LEN], to[ENT_KEY_LEN];
        ent_key(from, first);
        ent_key(to, s->last + 1);
        rocksdb_writebatch_delete_range(s->batch, (const char *)from, sizeof(from),
                                        (const char *)to, sizeof(to));
    }
    s->n_ents = 0;
    s->snap_index = 0; /* rlog_set_snapshot refuses to go back; this is a reset */
    s->last = 0;
    int rc = rlog_set_snapshot(s, index, term);
    if (rc == RLOG_OK)
        s->last = index;
    return rc;
}

static void *compact_main(void *arg)
{
    struct rlog *s = arg;
    unsigned char from[ENT_KEY_LEN], to[ENT_KEY_LEN];
    ent_key(from, 0);
    ent_key(to, s->compact_to + 1);
    rocksdb_compact_range(s->db, (const char *)from, sizeof(from), (const char *)to, sizeof(to));
    __atomic_store_n(&s->compact_busy, 0, __ATOMIC_RELEASE);
    return NULL;
}

void rlog_compact_log(struct rlog *s)
{
    if (s->failed || s->snap_index == 0 || __atomic_load_n(&s->compact_busy, __ATOMIC_ACQUIRE))
        return;
    if (s->compact_started) {
        pthread_join(s->compact_thread, NULL);
        s->compact_started = 0;
    }
    s->compact_to = s->snap_index;
    __atomic_store_n(&s->compact_busy, 1, __ATOMIC_RELEASE);
    if (pthread_create(&s->compact_thread, NULL, compact_main, s) != 0) {
        __atomic_store_n(&s->compact_busy, 0, __ATOMIC_RELEASE);
        return;
    }
    s->compact_started = 1;
}

/* Builds the RocksDB key for a named value; returns its length or 0 when the name is invalid. */
static size_t meta_key(const char *key, char out[1 + RLOG_META_KEY_MAX])
{
    if (!key)
        return 0;
    size_t n = strnlen(key, RLOG_META_KEY_MAX + 1);
    if (n == 0 || n > RLOG_META_KEY_MAX)
        return 0;
    out[0] = KEY_META;
    memcpy(out + 1, key, n);
    return n + 1;
}

static struct staged_meta *staged_meta_find(const struct rlog *s, const char *key)
{
    for (size_t i = 0; i < s->n_metas; i++)
        if (strcmp(s->metas[i].key, key) == 0)
            return &s->metas[i];
    return NULL;
}

int rlog_set_meta(struct rlog *s, const char *key, const void *val, size_t len)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    char k[1 + RLOG_META_KEY_MAX];
    size_t klen = meta_key(key, k);
    if (klen == 0 || len > RLOG_META_VAL_MAX || (len && !val))
        return RLOG_EINVAL;

    int rc = RLOG_ENOMEM;
    size_t vlen = 1 + len + REC_CRC;
    unsigned char *v = malloc(vlen);
    void *copy = malloc(len ? len : 1);
    struct staged_meta *m = staged_meta_find(s, key);
    if (!v || !copy)
        goto out;
    if (!m) {
        struct staged_meta *grown = grow(s->metas, &s->cap_metas, s->n_metas + 1, sizeof(*m));
        if (!grown)
            goto out;
        s->metas = grown;
        m = &s->metas[s->n_metas++];
        memcpy(m->key, key, klen - 1);
        m->key[klen - 1] = '\0';
        m->val = NULL;
    }
    v[0] = REC_VERSION;
    if (len) {
        memcpy(v + 1, val, len);
        memcpy(copy, val, len);
    }
    rec_seal(k, klen, v, vlen);
    rocksdb_writebatch_put(s->batch, k, klen, (const char *)v, vlen);
    free(m->val);
    m->val = copy;
    m->len = len;
    copy = NULL;
    s->pending = 1;
    rc = RLOG_OK;
out:
    free(v);
    free(copy);
    return rc;
}

int rlog_get_meta(struct rlog *s, const char *key, void **val_out, size_t *len_out)
{
    if (s->failed)
        return RLOG_EIO;
    char k[1 + RLOG_META_KEY_MAX];
    size_t klen = meta_key(key, k);
    if (klen == 0 || !val_out || !len_out)
        return RLOG_EINVAL;

    const struct staged_meta *m = staged_meta_find(s, key);
    if (m) {
        void *copy = malloc(m->len ? m->len : 1);
        if (!copy)
            return RLOG_ENOMEM;
        memcpy(copy, m->val, m->len);
        *val_out = copy;
        *len_out = m->len;
        return RLOG_OK;
    }
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(s->db, s->ropts, k, klen, &err);
    if (err)
        return fail(s, "read meta", err);
    if (!ps)
        return RLOG_ENOTFOUND;
    size_t n = 0;
    const unsigned char *v = (const unsigned char *)rocksdb_pinnableslice_value(ps, &n);
    int rc = rec_check(k, klen, v, n);
    if (rc == RLOG_OK && n - 1 - REC_CRC > RLOG_META_VAL_MAX)
        rc = RLOG_ECORRUPT;
    if (rc == RLOG_OK) {
        size_t len = n - 1 - REC_CRC;
        void *copy = malloc(len ? len : 1);
        if (copy) {
            memcpy(copy, v + 1, len);
            *val_out = copy;
            *len_out = len;
        } else {
            rc = RLOG_ENOMEM;
        }
    }
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rlog_set_meta_u64(struct rlog *s, const char *key, uint64_t v)
{
    unsigned char b[8];
    put_be64(b, v);
    return rlog_set_meta(s, key, b, sizeof(b));
}

int rlog_get_meta_u64(struct rlog *s, const char *key, uint64_t *v_out)
{
    void *val = NULL;
    size_t len = 0;
    if (!v_out)
        return RLOG_EINVAL;
    int rc = rlog_get_meta(s, key, &val, &len);
    if (rc == RLOG_OK && len != 8)
        rc = RLOG_ECORRUPT;
    if (rc == RLOG_OK)
        *v_out = get_be64(val);
    free(val);
    return rc;
}

/* ---- flush ---- */

int rlog_flush(struct rlog *s, int sync)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (!s->pending)
        return RLOG_OK;
    char *err = NULL;
    rocksdb_write(s->db, sync ? s->wsync : s->wnosync, s->batch, &err);
    return flush_done(s, err);
}

int rlog_flush_start(struct rlog *s)
{
    if (rlog_flush_wait(s) != RLOG_OK)
        return RLOG_EIO;
    if (!s->pending)
        return RLOG_OK;
    if (!s->writer_started) {
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
            return rlog_flush(s, 1); /* no thread: the write happens here, as rlog_flush */
        s->writer_started = 1;
    }
    pthread_mutex_lock(&s->mu);
    s->job = 1;
    s->done = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->inflight = 1;
    return 1;
}

int rlog_flush_busy(struct rlog *s)
{
    return finish_inflight(s, 0);
}

int rlog_flush_wait(struct rlog *s)
{
    return finish_inflight(s, 1);
}

void rlog_set_flush_notify(struct rlog *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->notify = fn;
    s->notify_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

int rlog_pending(const struct rlog *s)
{
    return s->pending && !s->inflight;
}

uint64_t rlog_disk_bytes(struct rlog *s)
{
    /* SST files plus memtables; the memtables stand in for the WAL, which holds the same data. */
    static const char *const props[] = {"rocksdb.total-sst-files-size",
                                        "rocksdb.cur-size-all-mem-tables"};
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        uint64_t v = 0;
        if (rocksdb_property_int(s->db, props[i], &v) == 0)
            total += v;
    }
    return total;
}
