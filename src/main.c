/*
 * main.c - command line, settings, exit status.  The only file that exits.
 *
 * Exit statuses (README "Failure behaviour"): 0 success, 1 data or load
 * error, 2 usage or configuration error, 3 internal error, 128 + signal
 * (130 SIGINT, 143 SIGTERM) when a signal stopped the run (signals.h).
 * Before anything else, closed descriptors 0-2 are opened on /dev/null; a
 * closed stdout (and a closed stdin read as input) is then a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "driver.h"
#include "error.h"
#include "log.h"
#include "reader.h"
#include "redact.h"
#include "registry.h"
#include "signals.h"
#include "target.h"
#include "version.h"

/* How long the input may stay silent before a commit on age is considered. */
#define IDLE_POLL_MS 1000

static const char usage_text[] =
    "Usage: target-pg --config FILE|ENV [--config ...] [--input FILE]\n"
    "       target-pg --about [--format json|markdown]\n"
    "       target-pg --version | --help\n"
    "\n"
    "Loads Singer messages (SCHEMA, RECORD, STATE) from stdin, or from FILE with --input,\n"
    "plain or zstd-compressed, into PostgreSQL. STATE values are written to stdout once\n"
    "everything before them is committed.\n"
    "\n"
    "  --config FILE   JSON settings; repeat to layer files (later keys win)\n"
    "  --config ENV    settings from TARGET_PG_<SETTING> environment variables\n"
    "  --input FILE    read this file instead of stdin\n"
    "  --about         describe the plugin and its settings (for orchestrators)\n"
    "  --format FMT    with --about: json (default) or markdown\n"
    "  --version       print the version\n"
    "  --help          print this help\n"
    "\n"
    "Exit status: 0 success, 1 data or load error, 2 usage or configuration error,\n"
    "3 internal error, 130/143 stopped by SIGINT/SIGTERM after committing what was read.\n";

typedef struct options {
    const char **configs;
    size_t n_configs;
    const char *input;
    int about;
    int markdown;
    int stdin_closed; /* fd 0 was closed at start (now /dev/null) */
} options;

/* Opens /dev/null on each of fds 0-2 that the caller left closed, so that no
 * file or socket opened later (the config file, the spool, libpq's socket)
 * can land on one and receive log lines or STATE meant for the terminal.
 * Sets bit fd of *closed for each one.  -1 when /dev/null cannot be opened:
 * then nothing may run, as any open could still take a standard descriptor. */
static int occupy_closed_std_fds(unsigned *closed)
{
    *closed = 0;
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        /* the lower descriptors are open by now, so open() returns fd itself */
        int got = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
        if (got != fd) {
            if (got >= 0)
                close(got);
            return -1;
        }
        *closed |= 1u << fd;
    }
    return 0;
}

/* The error as one structured line (log_format json): what an orchestrator
 * shows as the run's failure, with where, detail, hint and SQLSTATE as
 * fields. */
static void print_error_json(const tgt_error *err)
{
    const char *const fields[] = {"where",   err->where, "detail",      err->detail, "hint",
                                  err->hint, "sqlstate", err->sqlstate, NULL,        NULL};
    tgt_log_fields(TGT_LOG_ERROR, err->message, fields);
}

static void print_error(const tgt_error *err)
{
    if (tgt_log_get_format() == TGT_LOG_JSON) {
        print_error_json(err);
        return;
    }
    /* "(while loading ...)" from the driver, "(at stdin line 12, ...)" otherwise; through
     * the logger's escaping, so names from the input stay inside their line */
    if (strncmp(err->where, "while ", 6) == 0)
        tgt_log_print_line("target-pg: error (%s): %s", err->where, err->message);
    else if (err->where[0] != '\0')
        tgt_log_print_line("target-pg: error (at %s): %s", err->where, err->message);
    else
        tgt_log_print_line("target-pg: error: %s", err->message);
    if (err->detail[0] != '\0')
        tgt_log_print_line("DETAIL: %s", err->detail);
    if (err->hint[0] != '\0')
        tgt_log_print_line("HINT: %s", err->hint);
    if (err->sqlstate[0] != '\0')
        tgt_log_print_line("SQLSTATE: %s", err->sqlstate);
}

__attribute__((format(printf, 2, 3))) static int usage_error(tgt_error *err, const char *fmt, ...)
{
    char message[TGT_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    tgt_error_set(err, TGT_ERR_USAGE, "%s", message);
    tgt_error_hint(err, "Run target-pg --help for the options.");
    return -1;
}

static int parse_args(int argc, char **argv, options *opt, tgt_error *err)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"input", required_argument, NULL, 'i'},
                                             {"about", no_argument, NULL, 'a'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    opt->configs = calloc((size_t)argc, sizeof(*opt->configs));
    if (opt->configs == NULL)
        return tgt_error_nomem(err);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:i:f:", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->configs[opt->n_configs++] = optarg;
            break;
        case 'i':
            opt->input = optarg;
            break;
        case 'a':
            opt->about = 1;
            break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "markdown") != 0)
                return usage_error(err, "--format must be json or markdown, not \"%s\"", optarg);
            opt->markdown = strcmp(optarg, "markdown") == 0;
            break;
        case 'V':
            printf("%s %s\n", TGT_NAME, TGT_VERSION);
            return 1;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case ':':
            return usage_error(err, "option %s needs a value", argv[optind - 1]);
        default:
            return usage_error(err, "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(err, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

static int write_about(int markdown, tgt_error *err)
{
    tgt_sbuf out;
    tgt_sbuf_init(&out);
    int rc = tgt_config_write_about(&out, markdown);
    if (rc == 0 && tgt_sbuf_ok(&out))
        rc = fputs(tgt_sbuf_str(&out), stdout) == EOF || fputc('\n', stdout) == EOF ? -1 : 0;
    else
        rc = tgt_error_nomem(err);
    tgt_sbuf_deinit(&out);
    return rc;
}

static int load_settings(const options *opt, tgt_config *cfg, tgt_error *err)
{
    if (opt->n_configs == 0)
        return usage_error(err, "%s", "no settings given: use --config FILE or --config ENV");
    for (size_t i = 0; i < opt->n_configs; i++) {
        int rc = strcmp(opt->configs[i], "ENV") == 0
                     ? tgt_config_load_env(cfg, err)
                     : tgt_config_load_file(cfg, opt->configs[i], err);
        if (rc != 0)
            return -1;
    }
    if (tgt_config_finish(cfg, err) != 0)
        return -1;
    tgt_log_level level;
    if (tgt_log_parse_level(cfg->log_level, &level) == 0)
        tgt_log_set_level(level);
    tgt_log_format format;
    if (tgt_log_parse_format(cfg->log_format, &format) == 0)
        tgt_log_set_format(format);
    return 0;
}

static int open_input(const char *path, int stdin_closed, int *fd, tgt_error *err)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        /* reading /dev/null would look like a tap that sent nothing */
        if (stdin_closed) {
            tgt_error_set(err, TGT_ERR_USAGE, "stdin is closed, so there is no input to read");
            tgt_error_hint(err, "Pipe the tap's output into target-pg or use --input FILE.");
            return -1;
        }
        *fd = STDIN_FILENO;
        return 0;
    }
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return tgt_error_set(err, TGT_ERR_USAGE, "cannot open input %s: %s", path, strerror(errno));
    /* a directory opens fine and fails only at the first read: a usage
     * error like a missing file, not an I/O error of the run */
    struct stat st;
    if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(*fd);
        *fd = -1;
        tgt_error_set(err, TGT_ERR_USAGE, "cannot use input %s: it is a directory", path);
        tgt_error_hint(err, "--input takes a file of Singer messages (plain or zstd).");
        return -1;
    }
    return 0;
}

static int load(const options *opt, tgt_error *err)
{
    tgt_config cfg;
    tgt_config_init(&cfg);
    tgt_reader *reader = NULL;
    tgt_driver *driver = NULL;
    int fd = -1, rc = -1;
    if (tgt_signals_install() != 0) {
        tgt_error_set(err, TGT_ERR_INTERNAL, "cannot install signal handlers: %s", strerror(errno));
        goto out;
    }
    if (load_settings(opt, &cfg, err) != 0 ||
        open_input(opt->input, opt->stdin_closed, &fd, err) != 0)
        goto out;
    reader = tgt_reader_new(fd, opt->input ? opt->input : "stdin", IDLE_POLL_MS, err);
    driver = reader ? tgt_driver_new(cfg.driver, err) : NULL;
    if (driver != NULL)
        rc = tgt_target_run(&cfg, reader, driver, stdout, err);
out:
    if (driver != NULL)
        driver->ops->free(driver);
    tgt_reader_free(reader);
    if (fd > STDIN_FILENO)
        close(fd);
    if (rc != 0)
        tgt_redact_error(err, &cfg); /* libpq may quote the conninfo back */
    tgt_config_deinit(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned closed;
    if (occupy_closed_std_fds(&closed) != 0)
        return tgt_error_exit_status(TGT_ERR_INTERNAL); /* stderr may be closed: say nothing */
    tgt_error err;
    tgt_error_init(&err);
    options opt = {.stdin_closed = (closed & (1u << STDIN_FILENO)) != 0};
    int rc = 0;
    if (closed & (1u << STDOUT_FILENO)) {
        /* every mode writes stdout; STATE lost in /dev/null would make the
         * next run start over, so a closed stdout is refused, not absorbed */
        rc = tgt_error_set(&err, TGT_ERR_USAGE, "stdout is closed: STATE lines would be lost");
        tgt_error_hint(&err, "Redirect stdout to a file, or to /dev/null to discard it.");
    }
    if (rc == 0)
        rc = parse_args(argc, argv, &opt, &err);
    if (rc == 0)
        rc = opt.about ? write_about(opt.markdown, &err) : load(&opt, &err);
    free(opt.configs);
    if (rc > 0)
        rc = 0; /* --help, --version */
    if (rc == 0 && fclose(stdout) != 0) {
        tgt_error_set(&err, TGT_ERR_IO, "cannot write to stdout: %s", strerror(errno));
        rc = -1;
    }
    int sig = tgt_signals_received();
    if (rc == 0 && sig != 0) {
        /* not an error, but not a complete run either: the status says so */
        tgt_log(TGT_LOG_WARN,
                "stopped by %s: every complete line read before it is committed and the "
                "latest STATE among them written; exit status %d",
                tgt_signals_name(sig), 128 + sig);
        return 128 + sig;
    }
    if (rc == 0)
        return 0;
    if (!tgt_error_is_set(&err))
        tgt_error_set(&err, TGT_ERR_INTERNAL, "failed without a message (a bug)");
    print_error(&err);
    if (err.code == TGT_ERR_INTERRUPTED)
        return tgt_error_exit_status(err.code) + sig;
    return tgt_error_exit_status(err.code);
}
