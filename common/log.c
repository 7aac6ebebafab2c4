#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static FILE *log_fp;
static int log_level = RD_LL_NOTICE;
static char log_role = 'N';

int rd_log_open(const char *logfile, int level)
{
    log_level = level;
    if (logfile == NULL || logfile[0] == '\0')
        return 0;
    FILE *fp = fopen(logfile, "a");
    if (fp == NULL)
        return -1;
    if (log_fp != NULL)
        fclose(log_fp);
    log_fp = fp;
    return 0;
}

void rd_log_close(void)
{
    if (log_fp != NULL)
        fclose(log_fp);
    log_fp = NULL;
}

void rd_log_set_role(char role)
{
    log_role = role;
}

int rd_log_level(void)
{
    return log_level;
}

int rd_log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "verbose", "notice", "warning"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

void rd_log(int level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    if (level < log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[64];
    size_t off = strftime(ts, sizeof(ts), "%d %b %Y %H:%M:%S.", &tm);
    snprintf(ts + off, sizeof(ts) - off, "%03d", (int)(tv.tv_usec / 1000));

    FILE *fp = log_fp != NULL ? log_fp : stdout;
    fprintf(fp, "%d:%c %s %c %s\n", (int)getpid(), log_role, ts, marks[level], msg);
    fflush(fp);
}
