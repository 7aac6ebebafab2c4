/* raft_msg.c: the binary encoding of Raft messages and configurations.
 *
 * Compact and versioned: a version byte, a type byte, a flags byte, then LEB128 varints for every
 * number, entries as {term, type, length, bytes} (their indexes follow from the message's), and an
 * encoded configuration for snapshots. The decoder trusts nothing: every count and length is
 * checked against the bytes that remain and against named limits, varints may not be overlong,
 * and trailing bytes are an error.
 */
#include "raftlog/raft.h"

#include <stdlib.h>
#include <string.h>

#define F_REJECT     0x01
#define F_FORCE      0x02
#define F_ENTRIES    0x04
#define F_CONF       0x08
#define CONF_VERSION 1

const char *raft_errstr(int code)
{
    switch (code) {
    case RAFT_OK:
        return "ok";
    case RAFT_ENOMEM:
        return "out of memory";
    case RAFT_EINVAL:
        return "invalid argument";
    case RAFT_ENOTLEADER:
        return "not the leader";
    case RAFT_ETRANSFER:
        return "leadership transfer in progress";
    case RAFT_EFULL:
        return "too many uncommitted bytes";
    case RAFT_ECONFPENDING:
        return "a configuration change is pending";
    case RAFT_ENOTFOUND:
        return "index not in the log";
    case RAFT_EIO:
        return "storage failed";
    case RAFT_EMALFORMED:
        return "malformed message";
    case RAFT_EBUSY:
        return "a ready is outstanding";
    case RAFT_ENOLEADER:
        return "no leader known";
    case RAFT_ENOTREADY:
        return "learner has not caught up";
    default:
        return "unknown error";
    }
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "?";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *names[] = {
        "?",           "append",       "append-resp",    "vote",           "vote-resp",
        "prevote",     "prevote-resp", "heartbeat",      "heartbeat-resp", "snapshot",
        "timeout-now", "read-index",   "read-index-resp"};
    if (type < 1 || type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}

/* ---- varints ------------------------------------------------------------------------------- */

static size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

struct reader {
    const uint8_t *p, *end;
    int err;
};

static uint64_t get_uvarint(struct reader *rd)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (rd->p >= rd->end) {
            rd->err = 1;
            return 0;
        }
        uint8_t b = *rd->p++;
        if (shift == 63 && b > 1) { /* more than 64 bits */
            rd->err = 1;
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) { /* overlong: a trailing zero group */
                rd->err = 1;
                return 0;
            }
            return v;
        }
    }
    rd->err = 1;
    return 0;
}

static uint8_t get_u8(struct reader *rd)
{
    if (rd->p >= rd->end) {
        rd->err = 1;
        return 0;
    }
    return *rd->p++;
}

/* Returns a pointer to n bytes in the buffer, or NULL (and err) if fewer remain. */
static const uint8_t *get_bytes(struct reader *rd, uint64_t n)
{
    if (rd->err || n > (uint64_t)(rd->end - rd->p)) {
        rd->err = 1;
        return NULL;
    }
    const uint8_t *p = rd->p;
    rd->p += n;
    return p;
}

/* ---- configurations ------------------------------------------------------------------------ */

const struct raft_member *raft_conf_find(const struct raft_conf *c, uint64_t id)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->members[i].id == id)
            return &c->members[i];
    return NULL;
}

unsigned raft_conf_voters(const struct raft_conf *c)
{
    unsigned v = 0;
    for (unsigned i = 0; i < c->n; i++)
        v += c->members[i].voter != 0;
    return v;
}

static size_t conf_size(const struct raft_conf *c)
{
    size_t n = 1 + uvarint_size(c->n);
    for (unsigned i = 0; i < c->n; i++)
        n += uvarint_size(c->members[i].id) + 1 + uvarint_size(c->members[i].blob_len) +
             c->members[i].blob_len;
    return n;
}

static uint8_t *put_conf(uint8_t *p, const struct raft_conf *c)
{
    *p++ = CONF_VERSION;
    p = put_uvarint(p, c->n);
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_member *m = &c->members[i];
        p = put_uvarint(p, m->id);
        *p++ = m->voter ? 1 : 0;
        p = put_uvarint(p, m->blob_len);
        memcpy(p, m->blob, m->blob_len);
        p += m->blob_len;
    }
    return p;
}

static int conf_valid(const struct raft_conf *c)
{
    if (c->n > RAFT_MEMBERS_MAX)
        return 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->members[i].id == 0 || c->members[i].blob_len > RAFT_MEMBER_BLOB_BYTES_MAX)
            return 0;
        for (unsigned j = 0; j < i; j++)
            if (c->members[j].id == c->members[i].id)
                return 0;
    }
    return 1;
}

static void get_conf(struct reader *rd, struct raft_conf *out)
{
    memset(out, 0, sizeof(*out));
    if (get_u8(rd) != CONF_VERSION) {
        rd->err = 1;
        return;
    }
    uint64_t n = get_uvarint(rd);
    if (rd->err || n > RAFT_MEMBERS_MAX) {
        rd->err = 1;
        return;
    }
    out->n = (unsigned)n;
    for (unsigned i = 0; i < out->n && !rd->err; i++) {
        struct raft_member *m = &out->members[i];
        m->id = get_uvarint(rd);
        uint8_t voter = get_u8(rd);
        uint64_t blen = get_uvarint(rd);
        if (rd->err || voter > 1 || blen > RAFT_MEMBER_BLOB_BYTES_MAX) {
            rd->err = 1;
            return;
        }
        m->voter = voter;
        m->blob_len = (uint16_t)blen;
        const uint8_t *b = get_bytes(rd, blen);
        if (b)
            memcpy(m->blob, b, blen);
    }
    if (!rd->err && !conf_valid(out))
        rd->err = 1;
}

int raft_conf_encode(const struct raft_conf *c, uint8_t *buf, size_t cap, size_t *len_out)
{
    if (!conf_valid(c))
        return RAFT_EINVAL;
    size_t need = conf_size(c);
    if (need > cap)
        return RAFT_EINVAL;
    put_conf(buf, c);
    *len_out = need;
    return RAFT_OK;
}

int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out)
{
    struct reader rd = {buf, (const uint8_t *)buf + len, 0};
    get_conf(&rd, out);
    if (rd.err || rd.p != rd.end)
        return RAFT_EMALFORMED;
    return RAFT_OK;
}

int raft_conf_entry_encode(int change, uint64_t node, const struct raft_conf *c, uint8_t *buf,
                           size_t cap, size_t *len_out)
{
    if (change < RAFT_CONF_ADD_LEARNER || change > RAFT_CONF_SET_BLOB || !conf_valid(c))
        return RAFT_EINVAL;
    size_t need = 1 + 1 + uvarint_size(node) + conf_size(c);
    if (need > cap)
        return RAFT_EINVAL;
    uint8_t *p = buf;
    *p++ = CONF_VERSION;
    *p++ = (uint8_t)change;
    p = put_uvarint(p, node);
    put_conf(p, c);
    *len_out = need;
    return RAFT_OK;
}

int raft_conf_entry_decode(const void *buf, size_t len, int *change_out, uint64_t *node_out,
                           struct raft_conf *out)
{
    struct reader rd = {buf, (const uint8_t *)buf + len, 0};
    uint8_t v = get_u8(&rd);
    uint8_t change = get_u8(&rd);
    uint64_t node = get_uvarint(&rd);
    if (rd.err || v != CONF_VERSION || change < RAFT_CONF_ADD_LEARNER ||
        change > RAFT_CONF_SET_BLOB)
        return RAFT_EMALFORMED;
    get_conf(&rd, out);
    if (rd.err || rd.p != rd.end)
        return RAFT_EMALFORMED;
    if (change_out)
        *change_out = change;
    if (node_out)
        *node_out = node;
    return RAFT_OK;
}

/* ---- messages ------------------------------------------------------------------------------ */

static uint8_t msg_flags(const struct raft_msg *m)
{
    uint8_t f = 0;
    if (m->reject)
        f |= F_REJECT;
    if (m->force)
        f |= F_FORCE;
    if (m->n_entries)
        f |= F_ENTRIES;
    if (m->conf_len)
        f |= F_CONF;
    return f;
}

size_t raft_msg_encoded_size(const struct raft_msg *m)
{
    size_t n = 3;
    n += uvarint_size(m->from) + uvarint_size(m->to) + uvarint_size(m->term);
    n += uvarint_size(m->index) + uvarint_size(m->log_term) + uvarint_size(m->commit);
    n += uvarint_size(m->hint_index) + uvarint_size(m->hint_term) + uvarint_size(m->ctx);
    if (m->n_entries) {
        n += uvarint_size(m->n_entries);
        for (size_t i = 0; i < m->n_entries; i++)
            n += uvarint_size(m->entries[i].term) + 1 + uvarint_size(m->entries[i].len) +
                 m->entries[i].len;
    }
    if (m->conf_len)
        n += uvarint_size(m->conf_len) + m->conf_len;
    return n;
}

int raft_msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *len_out)
{
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->n_entries > RAFT_MSG_ENTRIES_MAX)
        return RAFT_EINVAL;
    size_t need = raft_msg_encoded_size(m);
    if (need > cap)
        return RAFT_EINVAL;
    uint8_t *p = buf;
    *p++ = RAFT_MSG_VERSION;
    *p++ = m->type;
    *p++ = msg_flags(m);
    p = put_uvarint(p, m->from);
    p = put_uvarint(p, m->to);
    p = put_uvarint(p, m->term);
    p = put_uvarint(p, m->index);
    p = put_uvarint(p, m->log_term);
    p = put_uvarint(p, m->commit);
    p = put_uvarint(p, m->hint_index);
    p = put_uvarint(p, m->hint_term);
    p = put_uvarint(p, m->ctx);
    if (m->n_entries) {
        p = put_uvarint(p, m->n_entries);
        for (size_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            p = put_uvarint(p, e->term);
            *p++ = e->type;
            p = put_uvarint(p, e->len);
            if (e->len)
                memcpy(p, e->data, e->len);
            p += e->len;
        }
    }
    if (m->conf_len) {
        p = put_uvarint(p, m->conf_len);
        memcpy(p, m->conf_data, m->conf_len);
        p += m->conf_len;
    }
    *len_out = (size_t)(p - buf);
    return RAFT_OK;
}

int raft_msg_decode(const void *buf, size_t len, struct raft_msg *out)
{
    struct reader rd = {buf, (const uint8_t *)buf + len, 0};
    memset(out, 0, sizeof(*out));
    uint8_t version = get_u8(&rd);
    uint8_t type = get_u8(&rd);
    uint8_t flags = get_u8(&rd);
    if (rd.err || version != RAFT_MSG_VERSION || type < 1 || type > RAFT_MSG_TYPE_MAX ||
        (flags & ~(F_REJECT | F_FORCE | F_ENTRIES | F_CONF)))
        return RAFT_EMALFORMED;
    out->type = type;
    out->reject = (flags & F_REJECT) != 0;
    out->force = (flags & F_FORCE) != 0;
    out->from = get_uvarint(&rd);
    out->to = get_uvarint(&rd);
    out->term = get_uvarint(&rd);
    out->index = get_uvarint(&rd);
    out->log_term = get_uvarint(&rd);
    out->commit = get_uvarint(&rd);
    out->hint_index = get_uvarint(&rd);
    out->hint_term = get_uvarint(&rd);
    out->ctx = get_uvarint(&rd);
    if (rd.err)
        return RAFT_EMALFORMED;
    if (flags & F_ENTRIES) {
        uint64_t n = get_uvarint(&rd);
        /* Each entry takes at least 3 bytes: never allocate more than the buffer can hold. */
        if (rd.err || type != RAFT_MSG_APPEND || n == 0 || n > RAFT_MSG_ENTRIES_MAX ||
            n > (uint64_t)(rd.end - rd.p) / 3 || out->index > UINT64_MAX - n)
            return RAFT_EMALFORMED;
        out->entries = calloc((size_t)n, sizeof(*out->entries));
        if (!out->entries)
            return RAFT_ENOMEM;
        out->n_entries = (size_t)n;
        for (size_t i = 0; i < n && !rd.err; i++) {
            struct raft_entry *e = &out->entries[i];
            e->index = out->index + 1 + i;
            e->term = get_uvarint(&rd);
            e->type = get_u8(&rd);
            uint64_t elen = get_uvarint(&rd);
            if (rd.err || e->type > RAFT_ENTRY_CONF)
                rd.err = 1;
            const uint8_t *d = get_bytes(&rd, elen);
            e->data = (void *)d;
            e->len = d ? (size_t)elen : 0;
        }
    }
    if (!rd.err && (flags & F_CONF)) {
        uint64_t clen = get_uvarint(&rd);
        if (type != RAFT_MSG_SNAPSHOT || clen == 0 || clen > RAFT_CONF_BYTES_MAX)
            rd.err = 1;
        const uint8_t *d = get_bytes(&rd, clen);
        if (d) {
            struct raft_conf tmp;
            if (raft_conf_decode(d, (size_t)clen, &tmp) != RAFT_OK)
                rd.err = 1;
            out->conf_data = d;
            out->conf_len = (size_t)clen;
        }
    }
    if (rd.err || rd.p != rd.end) {
        raft_msg_release(out);
        return RAFT_EMALFORMED;
    }
    return RAFT_OK;
}

void raft_msg_release(struct raft_msg *m)
{
    free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}
