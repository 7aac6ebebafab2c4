/* powerfs: a pass-through FUSE filesystem that forgets, on command, everything not yet synced.
 *
 * Usage: powerfs BACKING_DIR MOUNTPOINT [-d]
 *   Every operation on MOUNTPOINT goes straight to BACKING_DIR, and what it changed is remembered
 *   until it becomes durable in the POSIX sense:
 *     - file data (write, truncate, fallocate) becomes durable with fsync/fdatasync of the file;
 *     - names (create, mkdir, rmdir, unlink, rename, link, symlink) become durable with an fsync
 *       of the directory that holds them (for a rename, the target's directory).
 *   Writing "crash" to MOUNTPOINT/.powerfs undoes, newest first, everything not yet durable: the
 *   backing directory then holds exactly what a machine that lost power would find. "torn SEED"
 *   keeps, per file, a random part of the bytes appended since its last sync, and a random
 *   prefix of the unsynced name changes (an ordered-journal filesystem), chosen from SEED.
 *   "sync" makes everything durable (a clean shutdown). "lie" makes the disk lie from now on:
 *   fsync answers success and makes nothing durable, until the next crash (for the harness's own
 *   self-test: lost acknowledged writes must then be noticed). Reading .powerfs gives counters.
 *
 * The caller kills the processes using the mount (kill -9) before "crash": files they still
 * have open would otherwise keep writing into the undone state. Reopened files show the undone
 * content at once: every cache timeout is 0 and all I/O is direct.
 *
 * How: writes go to the backing file at once; before overwriting bytes below the size the file
 * had at its last sync, the old bytes are saved. Undo restores them and truncates the file back to
 * that size, through a descriptor kept open for the purpose (names may change meanwhile). A
 * removed or replaced name is moved into BACKING_DIR/.powerfs-stash until its removal is durable,
 * so that it can be put back. Single-threaded (-s): "crash" runs between two operations.
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define CTL_NAME     ".powerfs"
#define STASH_NAME   ".powerfs-stash"
#define CTL_FH       UINT64_MAX
#define SAVED_MAX    (256ull * 1024 * 1024) /* saved old bytes before a forced write-back */
#define CTL_REPLY_SZ 1024

/* Unsynced data of one file: its size at its last sync and the old bytes overwritten since. */
struct saved {
    struct saved *next; /* newest first */
    off_t off;
    size_t len;
    char bytes[];
};

struct dfile {
    struct dfile *next;
    dev_t dev;
    ino_t ino;
    int fd; /* our own descriptor: the file's names may change before an undo */
    off_t synced_size;
    struct saved *saves;
};

enum mkind { M_CREATE, M_MKDIR, M_RMDIR, M_UNLINK, M_RENAME, M_LINK };

/* One unsynced name change; paths are relative to the backing directory. */
struct mrec {
    struct mrec *prev, *next; /* oldest .. newest */
    enum mkind kind;
    char dir[PATH_MAX];   /* the directory whose fsync makes it durable */
    char path[PATH_MAX];  /* the name created or removed; for a rename, the source */
    char path2[PATH_MAX]; /* rename: the target */
    char stash[PATH_MAX]; /* unlink/rename: where the removed or replaced file waits ("" none) */
    mode_t mode;          /* rmdir: the directory's mode */
};

static struct {
    int root;  /* the backing directory */
    int lying; /* fsync makes nothing durable ("lie") */
    struct dfile *files;
    struct mrec *mhead, *mtail;
    unsigned long long stash_seq;
    unsigned long long saved_bytes;
    unsigned long long writes, fsyncs, dirsyncs, crashes, writebacks;
    unsigned long long lost_bytes, lost_names, lost_files;
    char reply[CTL_REPLY_SZ];
} g;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("powerfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* "/a/b" -> "a/b"; "/" -> "." */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static int is_ctl(const char *path)
{
    return path != NULL && strcmp(rel(path), CTL_NAME) == 0;
}

static int is_stash(const char *path)
{
    const char *r = rel(path);
    size_t n = strlen(STASH_NAME);
    return strncmp(r, STASH_NAME, n) == 0 && (r[n] == '\0' || r[n] == '/');
}

static void parent_of(const char *relpath, char *out, size_t outlen)
{
    const char *slash = strrchr(relpath, '/');
    if (slash == NULL)
        snprintf(out, outlen, ".");
    else
        snprintf(out, outlen, "%.*s", (int)(slash - relpath), relpath);
}

static int exists(const char *relpath)
{
    struct stat st;
    return fstatat(g.root, relpath, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- data ---------------------------------------------------------------------------------- */

static void dfile_drop(struct dfile *f)
{
    while (f->saves != NULL) {
        struct saved *s = f->saves;
        f->saves = s->next;
        g.saved_bytes -= s->len;
        free(s);
    }
    close(f->fd);
    free(f);
}

/* Everything of every file becomes durable (the kernel wrote it back on its own: allowed). */
static void dfile_writeback_all(void)
{
    while (g.files != NULL) {
        struct dfile *f = g.files;
        g.files = f->next;
        dfile_drop(f);
    }
}

/* The record of the file behind fd, made on its first change since its last sync. */
static struct dfile *dfile_get(int fd, int *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *err = -errno;
        return NULL;
    }
    for (struct dfile *f = g.files; f != NULL; f = f->next)
        if (f->dev == st.st_dev && f->ino == st.st_ino)
            return f;
    struct dfile *f = calloc(1, sizeof(*f));
    int dfd = f != NULL ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (dfd < 0) {
        *err = f != NULL ? -errno : -ENOMEM;
        free(f);
        return NULL;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->fd = dfd;
    f->synced_size = st.st_size;
    f->next = g.files;
    g.files = f;
    return f;
}

/* Saves the bytes in [off, off+len) that were durable, before they are overwritten or cut. */
static int save_old(struct dfile *f, off_t off, size_t len)
{
    if (off >= f->synced_size || len == 0)
        return 0;
    if ((off_t)len > f->synced_size - off)
        len = (size_t)(f->synced_size - off);
    if (g.saved_bytes + len > SAVED_MAX) {
        /* Bounded memory: behave as a kernel that flushed its dirty pages. */
        g.writebacks++;
        say("more than %llu unsynced overwritten bytes: writing everything back",
            (unsigned long long)SAVED_MAX);
        dfile_writeback_all();
        return 1;
    }
    struct saved *s = malloc(sizeof(*s) + len);
    if (s == NULL)
        return -ENOMEM;
    ssize_t n = pread(f->fd, s->bytes, len, off);
    if (n < 0) {
        int e = -errno;
        free(s);
        return e;
    }
    s->off = off;
    s->len = (size_t)n;
    s->next = f->saves;
    f->saves = s;
    g.saved_bytes += s->len;
    return 0;
}

static void dfile_sync(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    for (struct dfile **pp = &g.files; *pp != NULL; pp = &(*pp)->next) {
        struct dfile *f = *pp;
        if (f->dev == st.st_dev && f->ino == st.st_ino) {
            *pp = f->next;
            dfile_drop(f);
            return;
        }
    }
}

/* Puts every file back to its last synced state; with a seed, keeps a random part of what was
 * appended since (a torn tail). */
static void dfile_undo_all(unsigned *seed)
{
    while (g.files != NULL) {
        struct dfile *f = g.files;
        g.files = f->next;
        for (struct saved *s = f->saves; s != NULL; s = s->next) {
            if (pwrite(f->fd, s->bytes, s->len, s->off) != (ssize_t)s->len)
                say("undo: pwrite of %zu bytes failed: %s", s->len, strerror(errno));
            g.lost_bytes += s->len;
        }
        struct stat st;
        off_t keep = f->synced_size;
        if (fstat(f->fd, &st) == 0 && st.st_size > keep) {
            off_t extra = st.st_size - keep;
            if (seed != NULL)
                keep += (off_t)(rand_r(seed) % ((unsigned long long)extra + 1));
            g.lost_bytes += (unsigned long long)(st.st_size - keep);
        }
        if (ftruncate(f->fd, keep) != 0)
            say("undo: ftruncate failed: %s", strerror(errno));
        g.lost_files++;
        dfile_drop(f);
    }
}

/* ---- names --------------------------------------------------------------------------------- */

static struct mrec *mrec_add(enum mkind kind, const char *path, const char *path2)
{
    struct mrec *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->kind = kind;
    snprintf(m->path, sizeof(m->path), "%s", rel(path));
    if (path2 != NULL)
        snprintf(m->path2, sizeof(m->path2), "%s", rel(path2));
    parent_of(path2 != NULL ? m->path2 : m->path, m->dir, sizeof(m->dir));
    m->prev = g.mtail;
    if (g.mtail != NULL)
        g.mtail->next = m;
    else
        g.mhead = m;
    g.mtail = m;
    return m;
}

static void mrec_unlink(struct mrec *m)
{
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        g.mhead = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        g.mtail = m->prev;
    free(m);
}

/* Moves relpath into the stash; the stash name goes to out. */
static int stash_move(const char *relpath, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%llu", STASH_NAME, ++g.stash_seq);
    return renameat(g.root, relpath, g.root, out) == 0 ? 0 : -errno;
}

static void stash_remove(const char *stash)
{
    if (stash[0] == '\0')
        return;
    struct stat st;
    if (fstatat(g.root, stash, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (unlinkat(g.root, stash, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0)
        say("cannot remove %s: %s", stash, strerror(errno));
}

/* The name changes in dir become durable, oldest first. */
static void mrec_sync_dir(const char *dir)
{
    struct mrec *m = g.mhead;
    while (m != NULL) {
        struct mrec *next = m->next;
        if (strcmp(m->dir, dir) == 0) {
            stash_remove(m->stash);
            mrec_unlink(m);
        }
        m = next;
    }
}

static void warn_undo(const char *what, const char *path)
{
    say("undo: %s %s failed: %s", what, path, strerror(errno));
}

static void mrec_undo(struct mrec *m)
{
    switch (m->kind) {
    case M_CREATE:
    case M_LINK:
        if (unlinkat(g.root, m->path, 0) != 0 && errno != ENOENT)
            warn_undo("unlink", m->path);
        break;
    case M_MKDIR:
        if (unlinkat(g.root, m->path, AT_REMOVEDIR) != 0 && errno != ENOENT)
            warn_undo("rmdir", m->path);
        break;
    case M_RMDIR:
        if (mkdirat(g.root, m->path, m->mode) != 0)
            warn_undo("mkdir", m->path);
        break;
    case M_UNLINK:
        if (renameat(g.root, m->stash, g.root, m->path) != 0)
            warn_undo("restore", m->path);
        break;
    case M_RENAME:
        if (renameat(g.root, m->path2, g.root, m->path) != 0)
            warn_undo("rename back", m->path2);
        if (m->stash[0] != '\0' && renameat(g.root, m->stash, g.root, m->path2) != 0)
            warn_undo("restore", m->path2);
        break;
    }
    g.lost_names++;
}

/* Undoes the unsynced name changes newest first; with a seed, a random oldest part survives. */
static void mrec_undo_all(unsigned *seed)
{
    size_t n = 0;
    for (struct mrec *m = g.mhead; m != NULL; m = m->next)
        n++;
    size_t keep = seed != NULL ? (size_t)(rand_r(seed) % (n + 1)) : 0;
    while (n > keep) {
        mrec_undo(g.mtail);
        mrec_unlink(g.mtail);
        n--;
    }
    while (g.mhead != NULL) {
        stash_remove(g.mhead->stash);
        mrec_unlink(g.mhead);
    }
}

/* ---- control file -------------------------------------------------------------------------- */

static int ctl_command(const char *cmd)
{
    unsigned seed;
    if (strcmp(cmd, "crash") == 0) {
        dfile_undo_all(NULL);
        mrec_undo_all(NULL);
    } else if (sscanf(cmd, "torn %u", &seed) == 1) {
        dfile_undo_all(&seed);
        mrec_undo_all(&seed);
    } else if (strcmp(cmd, "lie") == 0) {
        g.lying = 1;
        say("lying from now on: fsync makes nothing durable");
        return 0;
    } else if (strcmp(cmd, "sync") == 0) {
        dfile_writeback_all();
        while (g.mhead != NULL) {
            stash_remove(g.mhead->stash);
            mrec_unlink(g.mhead);
        }
        return 0;
    } else {
        return -EINVAL;
    }
    g.crashes++;
    g.lying = 0;
    say("%s: lost %llu bytes in %llu files and %llu name changes so far", cmd, g.lost_bytes,
        g.lost_files, g.lost_names);
    return 0;
}

static size_t ctl_text(void)
{
    size_t unsynced_files = 0, unsynced_names = 0;
    for (struct dfile *f = g.files; f != NULL; f = f->next)
        unsynced_files++;
    for (struct mrec *m = g.mhead; m != NULL; m = m->next)
        unsynced_names++;
    int n = snprintf(g.reply, sizeof(g.reply),
                     "writes %llu\nfsyncs %llu\ndirsyncs %llu\ncrashes %llu\nwritebacks %llu\n"
                     "unsynced_files %zu\nunsynced_names %zu\nlost_bytes %llu\nlost_files %llu\n"
                     "lost_names %llu\n",
                     g.writes, g.fsyncs, g.dirsyncs, g.crashes, g.writebacks, unsynced_files,
                     unsynced_names, g.lost_bytes, g.lost_files, g.lost_names);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- operations ---------------------------------------------------------------------------- */

static void *pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->kernel_cache = 0;
    return NULL;
}

static int pf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (is_ctl(path)) {
        memset(st, 0, sizeof(*st));
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        return 0;
    }
    if (fi != NULL && fi->fh != CTL_FH)
        return fstat((int)fi->fh, st) == 0 ? 0 : -errno;
    if (path == NULL)
        return -EBADF;
    if (is_stash(path))
        return -ENOENT;
    return fstatat(g.root, rel(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pf_access(const char *path, int mask)
{
    if (is_ctl(path))
        return 0;
    if (is_stash(path))
        return -ENOENT;
    return faccessat(g.root, rel(path), mask, 0) == 0 ? 0 : -errno;
}

static int pf_readlink(const char *path, char *buf, size_t size)
{
    ssize_t n = readlinkat(g.root, rel(path), buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

/* An open directory: the handle and its path (with nullpath_ok, fsyncdir is given no path). */
struct pdir {
    DIR *d;
    char path[PATH_MAX];
};

static int pf_opendir(const char *path, struct fuse_file_info *fi)
{
    if (is_stash(path))
        return -ENOENT;
    struct pdir *pd = calloc(1, sizeof(*pd));
    if (pd == NULL)
        return -ENOMEM;
    int fd = openat(g.root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pd->d = fd >= 0 ? fdopendir(fd) : NULL;
    if (pd->d == NULL) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        free(pd);
        return e;
    }
    snprintf(pd->path, sizeof(pd->path), "%s", rel(path));
    fi->fh = (uint64_t)(uintptr_t)pd;
    return 0;
}

static int pf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    struct pdir *pd = (struct pdir *)(uintptr_t)fi->fh;
    int top = strcmp(pd->path, ".") == 0;
    rewinddir(pd->d);
    struct dirent *e;
    while ((e = readdir(pd->d)) != NULL) {
        if (top && strcmp(e->d_name, STASH_NAME) == 0)
            continue;
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_ino = e->d_ino;
        st.st_mode = (mode_t)DTTOIF(e->d_type);
        if (fill(buf, e->d_name, &st, 0, 0))
            break;
    }
    return 0;
}

static int pf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct pdir *pd = (struct pdir *)(uintptr_t)fi->fh;
    closedir(pd->d);
    free(pd);
    return 0;
}

static int pf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    g.dirsyncs++;
    if (!g.lying)
        mrec_sync_dir(((struct pdir *)(uintptr_t)fi->fh)->path);
    return 0;
}

static int pf_mkdir(const char *path, mode_t mode)
{
    if (is_ctl(path) || is_stash(path))
        return -EEXIST;
    if (mkdirat(g.root, rel(path), mode) != 0)
        return -errno;
    return mrec_add(M_MKDIR, path, NULL) != NULL ? 0 : -ENOMEM;
}

static int pf_rmdir(const char *path)
{
    if (is_stash(path))
        return -ENOENT;
    struct stat st;
    if (fstatat(g.root, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (unlinkat(g.root, rel(path), AT_REMOVEDIR) != 0)
        return -errno;
    struct mrec *m = mrec_add(M_RMDIR, path, NULL);
    if (m == NULL)
        return -ENOMEM;
    m->mode = st.st_mode & 07777;
    return 0;
}

static int pf_unlink(const char *path)
{
    if (is_ctl(path))
        return -EPERM;
    if (is_stash(path))
        return -ENOENT;
    struct stat st;
    if (fstatat(g.root, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    struct mrec *m = mrec_add(M_UNLINK, path, NULL);
    if (m == NULL)
        return -ENOMEM;
    int rc = stash_move(m->path, m->stash, sizeof(m->stash));
    if (rc != 0)
        mrec_unlink(m);
    return rc;
}

static int pf_symlink(const char *target, const char *path)
{
    if (is_ctl(path) || is_stash(path))
        return -EEXIST;
    if (symlinkat(target, g.root, rel(path)) != 0)
        return -errno;
    return mrec_add(M_CREATE, path, NULL) != NULL ? 0 : -ENOMEM;
}

static int pf_link(const char *from, const char *to)
{
    if (is_ctl(from) || is_ctl(to) || is_stash(from) || is_stash(to))
        return -EPERM;
    if (linkat(g.root, rel(from), g.root, rel(to), 0) != 0)
        return -errno;
    return mrec_add(M_LINK, to, NULL) != NULL ? 0 : -ENOMEM;
}

static int pf_rename(const char *from, const char *to, unsigned int flags)
{
    if (is_ctl(from) || is_ctl(to) || is_stash(from) || is_stash(to))
        return -EPERM;
    if (flags & ~RENAME_NOREPLACE)
        return -EINVAL; /* RENAME_EXCHANGE and whiteouts: nobody here needs them */
    if (!exists(rel(from)))
        return -ENOENT;
    int replaces = exists(rel(to));
    if (replaces && (flags & RENAME_NOREPLACE))
        return -EEXIST;
    struct mrec *m = mrec_add(M_RENAME, from, to);
    if (m == NULL)
        return -ENOMEM;
    int rc = 0;
    if (replaces) {
        struct stat sf, st;
        if (fstatat(g.root, m->path, &sf, AT_SYMLINK_NOFOLLOW) == 0 &&
            fstatat(g.root, m->path2, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(sf.st_mode) != S_ISDIR(st.st_mode))
            rc = S_ISDIR(st.st_mode) ? -EISDIR : -ENOTDIR;
        else
            rc = stash_move(m->path2, m->stash, sizeof(m->stash));
    }
    if (rc == 0 && renameat(g.root, m->path, g.root, m->path2) != 0) {
        rc = -errno;
        if (m->stash[0] != '\0')
            renameat(g.root, m->stash, g.root, m->path2);
    }
    if (rc != 0)
        mrec_unlink(m);
    return rc;
}

static int pf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (is_ctl(path))
        return 0;
    if (fi != NULL)
        return fchmod((int)fi->fh, mode) == 0 ? 0 : -errno;
    return fchmodat(g.root, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int pf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    if (is_ctl(path))
        return 0;
    if (fi != NULL)
        return fchown((int)fi->fh, uid, gid) == 0 ? 0 : -errno;
    return fchownat(g.root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    if (is_ctl(path))
        return 0;
    if (fi != NULL)
        return futimens((int)fi->fh, tv) == 0 ? 0 : -errno;
    return utimensat(g.root, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

/* Truncates the file behind fd, saving the durable bytes it cuts. */
static int do_truncate(int fd, off_t size)
{
    int err = 0;
    struct dfile *f = dfile_get(fd, &err);
    if (f == NULL)
        return err;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (size < st.st_size) {
        int rc = save_old(f, size, (size_t)(st.st_size - size));
        if (rc < 0)
            return rc;
    }
    return ftruncate(fd, size) == 0 ? 0 : -errno;
}

static int pf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (is_ctl(path) || (fi != NULL && fi->fh == CTL_FH))
        return 0;
    if (fi != NULL)
        return do_truncate((int)fi->fh, size);
    int fd = openat(g.root, rel(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = do_truncate(fd, size);
    close(fd);
    return rc;
}

static int backing_flags(int flags)
{
    /* Offsets come from the kernel; the backing file may not support O_DIRECT. */
    return (flags & ~(O_APPEND | O_DIRECT | O_TRUNC)) | O_CLOEXEC;
}

static int pf_open(const char *path, struct fuse_file_info *fi)
{
    if (is_ctl(path)) {
        fi->fh = CTL_FH;
        fi->direct_io = 1;
        return 0;
    }
    if (is_stash(path))
        return -ENOENT;
    int fd = openat(g.root, rel(path), backing_flags(fi->flags));
    if (fd < 0)
        return -errno;
    if (fi->flags & O_TRUNC) {
        int rc = do_truncate(fd, 0);
        if (rc != 0) {
            close(fd);
            return rc;
        }
    }
    fi->fh = (uint64_t)fd;
    fi->direct_io = 1;
    return 0;
}

static int pf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (is_ctl(path) || is_stash(path))
        return -EEXIST;
    if (exists(rel(path))) {
        if (fi->flags & O_EXCL)
            return -EEXIST;
        return pf_open(path, fi);
    }
    int fd = openat(g.root, rel(path), backing_flags(fi->flags) | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return -errno;
    if (mrec_add(M_CREATE, path, NULL) == NULL) {
        close(fd);
        unlinkat(g.root, rel(path), 0);
        return -ENOMEM;
    }
    fi->fh = (uint64_t)fd;
    fi->direct_io = 1;
    return 0;
}

static int pf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CTL_FH) {
        size_t n = ctl_text();
        if (off >= (off_t)n)
            return 0;
        if (size > n - (size_t)off)
            size = n - (size_t)off;
        memcpy(buf, g.reply + off, size);
        return (int)size;
    }
    ssize_t n = pread((int)fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int pf_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CTL_FH) {
        char cmd[64];
        size_t n = size < sizeof(cmd) - 1 ? size : sizeof(cmd) - 1;
        memcpy(cmd, buf, n);
        cmd[n] = '\0';
        cmd[strcspn(cmd, "\r\n")] = '\0';
        int rc = ctl_command(cmd);
        return rc != 0 ? rc : (int)size;
    }
    int fd = (int)fi->fh, err = 0;
    struct dfile *f = dfile_get(fd, &err);
    if (f == NULL)
        return err;
    int rc = save_old(f, off, size);
    if (rc < 0)
        return rc;
    ssize_t n = pwrite(fd, buf, size, off);
    if (n < 0)
        return -errno;
    g.writes++;
    return (int)n;
}

static int pf_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(g.root, st) == 0 ? 0 : -errno;
}

static int pf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh != CTL_FH)
        close((int)fi->fh);
    return 0;
}

static int pf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync; /* the size is part of what fdatasync makes durable, too */
    if (fi->fh == CTL_FH)
        return 0;
    g.fsyncs++;
    if (!g.lying)
        dfile_sync((int)fi->fh);
    return 0;
}

static int pf_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
    (void)path;
    if (fi->fh == CTL_FH)
        return -EOPNOTSUPP;
    if (mode & ~FALLOC_FL_KEEP_SIZE)
        return -EOPNOTSUPP; /* hole punching would need its bytes saved; nobody here uses it */
    int fd = (int)fi->fh, err = 0;
    if (!(mode & FALLOC_FL_KEEP_SIZE) && dfile_get(fd, &err) == NULL)
        return err;
    return fallocate(fd, mode, off, len) == 0 ? 0 : -errno;
}

static void pf_destroy(void *data)
{
    (void)data;
    dfile_writeback_all();
    while (g.mhead != NULL)
        mrec_unlink(g.mhead);
}

static const struct fuse_operations ops = {
    .init = pf_init,
    .destroy = pf_destroy,
    .getattr = pf_getattr,
    .access = pf_access,
    .readlink = pf_readlink,
    .opendir = pf_opendir,
    .readdir = pf_readdir,
    .releasedir = pf_releasedir,
    .fsyncdir = pf_fsyncdir,
    .mkdir = pf_mkdir,
    .rmdir = pf_rmdir,
    .unlink = pf_unlink,
    .symlink = pf_symlink,
    .link = pf_link,
    .rename = pf_rename,
    .chmod = pf_chmod,
    .chown = pf_chown,
    .utimens = pf_utimens,
    .truncate = pf_truncate,
    .open = pf_open,
    .create = pf_create,
    .read = pf_read,
    .write = pf_write,
    .statfs = pf_statfs,
    .release = pf_release,
    .fsync = pf_fsync,
    .fallocate = pf_fallocate,
};

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "-d") != 0)) {
        fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT [-d]\n", argv[0]);
        return 2;
    }
    g.root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.root < 0) {
        say("cannot open %s: %s", argv[1], strerror(errno));
        return 1;
    }
    if (mkdirat(g.root, STASH_NAME, 0700) != 0 && errno != EEXIST) {
        say("cannot make %s/%s: %s", argv[1], STASH_NAME, strerror(errno));
        return 1;
    }
    /* Foreground, single-threaded: a "crash" never overlaps another operation. */
    char *fargv[] = {argv[0], argv[2], "-f", "-s", "-o", "fsname=powerfs", argc == 4 ? "-d" : NULL,
                     NULL};
    int rc = fuse_main(argc == 4 ? 7 : 6, fargv, &ops, NULL);
    close(g.root);
    return rc;
}
