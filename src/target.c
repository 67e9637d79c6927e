/*
 * target.c - the main loop (see target.h).  It owns the one JSON parser and
 * the loader for the run; the reader and driver are the caller's.
 */
#include "target.h"

#include "json.h"
#include "loader.h"
#include "log.h"
#include "message.h"
#include "signals.h"

static int run_loop(tgt_loader *l, tgt_reader *reader, tgt_json_parser *p, tgt_error *err)
{
    tgt_sbuf scratch;
    tgt_sbuf_init(&scratch);
    int rc = -1;
    unsigned long last_line = 0;
    for (;;) {
        const char *line;
        size_t len;
        unsigned long line_no;
        tgt_read_status st = tgt_reader_next(reader, &line, &len, &line_no, err);
        if (st == TGT_READ_ERROR) {
            /* a corrupt or cut-off zstd stream: say how far the input was read */
            if (last_line > 0)
                tgt_error_where(err, "%s, after line %lu", tgt_reader_name(reader), last_line);
            break;
        }
        if (st == TGT_READ_EOF) {
            int sig = tgt_signals_received();
            if (sig != 0)
                tgt_log(TGT_LOG_INFO, "%s received: reading stopped after %s line %lu%s",
                        tgt_signals_name(sig), tgt_reader_name(reader), last_line,
                        l->b.overwrite ? "" : "; committing what was read");
            rc = tgt_loader_finish(l, err);
            break;
        }
        if (st == TGT_READ_IDLE) {
            if (tgt_loader_idle(l, err) != 0)
                break;
            continue;
        }
        last_line = line_no;
        tgt_message msg;
        if (tgt_message_parse(p, line, len, &msg, &scratch, err) != 0 ||
            tgt_loader_handle(l, p, line, len, line_no, &msg, err) != 0) {
            tgt_error_where(err, "%s line %lu", tgt_reader_name(reader), line_no);
            break;
        }
    }
    tgt_sbuf_deinit(&scratch);
    return rc;
}

int tgt_target_run(const tgt_config *cfg, tgt_reader *reader, tgt_driver *driver, FILE *state_out,
                   tgt_error *err)
{
    tgt_loader loader;
    tgt_json_parser parser;
    tgt_json_parser_init(&parser);
    parser.skip_array_items = 1;
    int rc = tgt_loader_init(&loader, cfg, driver, tgt_reader_name(reader), state_out, err);
    if (rc == 0)
        rc = run_loop(&loader, reader, &parser, err);
    if (rc != 0)
        tgt_loader_abort(&loader);
    tgt_loader_deinit(&loader);
    tgt_json_parser_deinit(&parser);
    return rc;
}
