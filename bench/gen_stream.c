/*
 * gen_stream.c - deterministic generator of realistic Singer streams for the
 * benchmark (scripts/bench.sh, `make bench`).
 *
 *   gen_stream [--rows N] [--variant orders|wide|interleaved] [--keyed|--unkeyed]
 *              [--seed S] [--key-offset K] [--update] [--stream NAME]
 *              [--streams N] [--output FILE]
 *
 * Writes one SCHEMA per stream first, then N RECORD lines, a STATE after
 * every 10,000 records and one at the end.  Every value is a pure function of
 * (seed, key, update): the same options always give the same bytes, and
 * --update re-sends the same keys with changed non-key values (amount always
 * changes, the rest is drawn afresh), which is what an upsert run needs.
 * Keys are K+1 .. K+N.
 *
 *   orders       one stream of orders-like records: 13 properties, non-ASCII
 *                names, exact decimals, timestamps with offsets, a nullable
 *                note full of quotes, commas, tabs, emoji and JSON escapes, an
 *                address object two levels deep and a string array
 *   wide         one stream of 200 properties (integers, numbers, strings,
 *                booleans, timestamps)
 *   interleaved  --streams streams (default 50, at most 10,000) named
 *                <stream>_00 .. <stream>_99, <stream>_100 .. of the orders
 *                shape, records round-robin across them
 *
 * Speed matters more than elegance here (it must outrun the loader by far):
 * records are formatted by hand into one large output buffer with no
 * per-value bounds checks; every record is bounded (ROW_MAX bytes) and the
 * buffer is flushed whenever less than that is left.  JSON text in the tables
 * below is already escaped.  The only file of the generator; it exits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CAP (4u << 20)
#define ROW_MAX (64u << 10) /* far above the longest record any variant writes */
#define STATE_EVERY 10000
#define WIDE_PROPS 200

typedef enum { V_ORDERS, V_WIDE, V_INTERLEAVED } variant_kind;

typedef struct options {
    unsigned long long rows;
    variant_kind variant;
    int keyed;
    uint64_t seed;
    unsigned long long key_offset;
    int update;
    const char *stream;
    unsigned streams;
    const char *output;
} options;

/* ---- output buffer ---------------------------------------------------- */

typedef struct out_buf {
    char *buf;
    size_t len;
    FILE *fp;
    int failed;
} out_buf;

static void out_flush(out_buf *o)
{
    if (o->len > 0 && !o->failed && fwrite(o->buf, 1, o->len, o->fp) != o->len)
        o->failed = 1;
    o->len = 0;
}

static void out_room(out_buf *o)
{
    if (OUT_CAP - o->len < ROW_MAX)
        out_flush(o);
}

static inline void put_mem(out_buf *o, const char *s, size_t n)
{
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define PUT_LIT(o, lit) put_mem((o), (lit), sizeof(lit) - 1)

static inline void put_str(out_buf *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static inline void put_char(out_buf *o, char c)
{
    o->buf[o->len++] = c;
}

static inline void put_u64(out_buf *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        o->buf[o->len++] = tmp[--n];
}

static inline void put_i64(out_buf *o, int64_t v)
{
    if (v < 0) {
        put_char(o, '-');
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(o, (uint64_t)v);
    }
}

/* v / 10^decimals with exactly `decimals` digits after the point. */
static inline void put_fixed(out_buf *o, int64_t v, int decimals)
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        put_char(o, '-');
    put_u64(o, mag / scale);
    put_char(o, '.');
    uint64_t frac = mag % scale;
    for (int i = decimals - 1; i >= 0; i--) {
        o->buf[o->len + (size_t)i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    o->len += (size_t)decimals;
}

static inline void put_2d(out_buf *o, unsigned v)
{
    put_char(o, (char)('0' + v / 10 % 10));
    put_char(o, (char)('0' + v % 10));
}

/* ---- randomness: splitmix64, seeded per (seed, key, generation) ------- */

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline rng rng_for(uint64_t seed, uint64_t key, uint64_t generation)
{
    rng r = {mix64(mix64(seed) ^ (key * 0x9e3779b97f4a7c15ULL) ^ (generation << 56))};
    return r;
}

static inline uint64_t rng_next(rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

/* uniform in [0, n) */
static inline uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* true with probability pct/100 */
static inline int rng_pct(rng *r, uint32_t pct)
{
    return rng_below(r, 100) < pct;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- realistic values ------------------------------------------------- */

/* Names as JSON text (UTF-8) and their ASCII form for e-mail addresses. */
typedef struct name_pair {
    const char *text;
    const char *ascii;
} name_pair;

static const name_pair first_names[] = {
    {"Zoë", "zoe"},         {"Øyvind", "oyvind"}, {"José", "jose"},
    {"Anna", "anna"},       {"Björn", "bjorn"},   {"Françoise", "francoise"},
    {"Mateusz", "mateusz"}, {"Ελένη", "eleni"},   {"Siobhán", "siobhan"},
    {"Jürgen", "jurgen"},   {"Ayşe", "ayse"},     {"Priya", "priya"},
    {"Olga", "olga"},       {"Noah", "noah"},     {"Emma", "emma"},
    {"Łukasz", "lukasz"},   {"Chloé", "chloe"},   {"Mohammed", "mohammed"}};

static const name_pair last_names[] = {{"Müller", "muller"},
                                       {"Hansen", "hansen"},
                                       {"García", "garcia"},
                                       {"O'Brien", "obrien"},
                                       {"Nowak", "nowak"},
                                       {"Dubois", "dubois"},
                                       {"Smith", "smith"},
                                       {"Papadopoulou", "papadopoulou"},
                                       {"Yılmaz", "yilmaz"},
                                       {"Sharma", "sharma"},
                                       {"Иванова", "ivanova"},
                                       {"Johansson", "johansson"},
                                       {"van der Berg", "vanderberg"},
                                       {"Kowalski", "kowalski"},
                                       {"Ødegård", "odegard"},
                                       {"Núñez", "nunez"}};

/* Whole names written family name first. */
static const name_pair cjk_names[] = {{"李雷", "li.lei"},
                                      {"韩梅梅", "han.meimei"},
                                      {"王芳", "wang.fang"},
                                      {"佐藤 健", "sato.ken"},
                                      {"김민준", "kim.minjun"}};

static const char *const email_domains[] = {"example.com", "example.org", "mail.example.net",
                                            "posteo.example", "firma.example.de"};

typedef struct city {
    const char *name; /* JSON text */
    const char *country;
    const char *currency;
    const char *postal_prefix;
    int32_t lat_e6, lon_e6;
} city;

static const city cities[] = {{"Berlin", "DE", "EUR", "101", 52520008, 13404954},
                              {"São Paulo", "BR", "BRL", "013", -23550520, -46633308},
                              {"Zürich", "CH", "CHF", "80", 47376887, 8541694},
                              {"Kraków", "PL", "PLN", "31-", 50064650, 19944980},
                              {"Oslo", "NO", "NOK", "01", 59913869, 10752245},
                              {"München", "DE", "EUR", "803", 48135125, 11581981},
                              {"Reykjavík", "IS", "ISK", "10", 64146582, -21942635},
                              {"北京", "CN", "CNY", "1000", 39904202, 116407394},
                              {"Москва", "RU", "RUB", "1010", 55755826, 37617300},
                              {"New York", "US", "USD", "100", 40712776, -74005974},
                              {"Montréal", "CA", "CAD", "H2", 45501689, -73567256},
                              {"Kathmandu", "NP", "NPR", "446", 27717245, 85323961},
                              {"Mumbai", "IN", "INR", "4000", 19075984, 72877656},
                              {"Lisboa", "PT", "EUR", "1100-", 38722252, -9139337}};

static const char *const streets[] = {"Hauptstraße",    "Rue de la Paix",   "Main St",
                                      "Storgata",       "Avenida Paulista", "Calle Mayor",
                                      "ul. Floriańska", "Bahnhofstrasse",   "Baker Street"};

/* Notes, already JSON-escaped: quotes, commas, tabs, newlines, backslashes,
 * emoji raw and as surrogate pairs, \u escapes, an empty string. */
static const char *const notes[] = {"Leave at the door, \\\"ring twice\\\"",
                                    "Gift wrap\\tplease 🎁",
                                    "Call before delivery: +47 22 00 00 00",
                                    "Fragile!\\nHandle with care",
                                    "Back-door code is 12\\\\34",
                                    "Customer wrote: \\\"Ça va très bien\\\" 😀",
                                    "Allergic to nuts; no peanuts, please",
                                    "Rocket \\ud83d\\ude80 shipping, thanks",
                                    "Comma, separated, values, inside",
                                    "",
                                    "Tab\\tseparated\\tnotes",
                                    "Caf\\u00e9 delivery before 10:00",
                                    "\\\\N is not NULL",
                                    "Deliver to neighbour (Nr. 12) if absent — danke 👍"};

static const char *const tags[] = {"gift",        "express", "fragile",  "b2b",
                                   "first-order", "vip",     "returned", "promo-2024"};

static const char *const words[] = {
    "alpha", "bravo",   "charlie", "delta", "echo",       "foxtrot", "golf",         "hotel",
    "india", "juliett", "kilo",    "lima",  "Ærøskøbing", "naïve",   "crème brûlée", "straße"};

static const char *const offsets[] = {"Z",      "+00:00", "+02:00", "-05:30",
                                      "+05:45", "-08:00", "+09:00", "+01:00"};
static const int offset_minutes[] = {0, 0, 120, -330, 345, -480, 540, 60};

/* Days since 1970-01-01 -> civil date (Howard Hinnant's algorithm). */
static inline void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static inline void put_date(out_buf *o, int64_t days)
{
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    put_u64(o, (uint64_t)y);
    put_char(o, '-');
    put_2d(o, m);
    put_char(o, '-');
    put_2d(o, d);
}

#define T_BASE 1672531200LL /* 2023-01-01T00:00:00Z */
#define T_SPAN 63072000u    /* two years of seconds */

/* A quoted RFC 3339 timestamp: UTC instant `t` shown in one of the offsets,
 * with microseconds most of the time. */
static inline void put_timestamp(out_buf *o, rng *r, int64_t t)
{
    uint32_t oi = rng_below(r, (uint32_t)COUNT(offsets));
    int64_t local = t + (int64_t)offset_minutes[oi] * 60;
    int64_t days = local / 86400, sec = local % 86400;
    put_char(o, '"');
    put_date(o, days);
    put_char(o, 'T');
    put_2d(o, (unsigned)(sec / 3600));
    put_char(o, ':');
    put_2d(o, (unsigned)(sec / 60 % 60));
    put_char(o, ':');
    put_2d(o, (unsigned)(sec % 60));
    if (rng_pct(r, 70)) {
        uint32_t us = rng_below(r, 1000000);
        put_char(o, '.');
        for (int i = 5; i >= 0; i--) {
            o->buf[o->len + (size_t)i] = (char)('0' + us % 10);
            us /= 10;
        }
        o->len += 6;
    }
    put_str(o, offsets[oi]);
    put_char(o, '"');
}

/* ---- messages ----------------------------------------------------------- */

static const char order_properties[] =
    "{\"order_id\":{\"type\":\"integer\"},"
    "\"customer_id\":{\"type\":[\"null\",\"integer\"]},"
    "\"customer_email\":{\"type\":[\"null\",\"string\"],\"format\":\"email\"},"
    "\"customer_name\":{\"type\":[\"null\",\"string\"]},"
    "\"amount\":{\"type\":[\"null\",\"number\"],\"multipleOf\":0.01},"
    "\"tax\":{\"type\":[\"null\",\"number\"]},"
    "\"currency\":{\"type\":[\"null\",\"string\"],\"maxLength\":3},"
    "\"created_at\":{\"type\":[\"null\",\"string\"],\"format\":\"date-time\"},"
    "\"ship_date\":{\"type\":[\"null\",\"string\"],\"format\":\"date\"},"
    "\"status\":{\"type\":[\"null\",\"string\"],"
    "\"enum\":[\"pending\",\"paid\",\"shipped\",\"cancelled\",null]},"
    "\"notes\":{\"type\":[\"null\",\"string\"]},"
    "\"address\":{\"type\":[\"null\",\"object\"],\"properties\":{"
    "\"street\":{\"type\":[\"null\",\"string\"]},"
    "\"city\":{\"type\":[\"null\",\"string\"]},"
    "\"postal_code\":{\"type\":[\"null\",\"string\"]},"
    "\"country\":{\"type\":[\"null\",\"string\"]},"
    "\"geo\":{\"type\":[\"null\",\"object\"],\"properties\":{"
    "\"lat\":{\"type\":[\"null\",\"number\"]},"
    "\"lon\":{\"type\":[\"null\",\"number\"]}}}}},"
    "\"tags\":{\"type\":[\"null\",\"array\"],\"items\":{\"type\":\"string\"}}}";

static const char time_extracted[] = "\"2025-01-15T06:00:00.000000+00:00\"";

static void put_stream_name(out_buf *o, const char *stream, int index)
{
    put_str(o, stream);
    if (index >= 0) {
        put_char(o, '_');
        if (index < 100) {
            put_2d(o, (unsigned)index);
        } else { /* 3 digits or more: never the same as a 2-digit name */
            char digits[12];
            int n = snprintf(digits, sizeof(digits), "%d", index);
            for (int i = 0; i < n; i++)
                put_char(o, digits[i]);
        }
    }
}

static void put_schema(out_buf *o, const options *opt, int index)
{
    PUT_LIT(o, "{\"type\":\"SCHEMA\",\"stream\":\"");
    put_stream_name(o, opt->stream, index);
    PUT_LIT(o, "\",\"schema\":{\"type\":\"object\",\"properties\":");
    if (opt->variant == V_WIDE) {
        static const char *const kinds[] = {
            "{\"type\":[\"null\",\"integer\"]}", "{\"type\":[\"null\",\"number\"]}",
            "{\"type\":[\"null\",\"string\"]}", "{\"type\":[\"null\",\"boolean\"]}",
            "{\"type\":[\"null\",\"string\"],\"format\":\"date-time\"}"};
        static const char *const suffix[] = {"count", "ratio", "label", "active", "seen_at"};
        PUT_LIT(o, "{\"id\":{\"type\":\"integer\"}");
        for (unsigned i = 1; i < WIDE_PROPS; i++) {
            PUT_LIT(o, ",\"f");
            put_char(o, (char)('0' + i / 100));
            put_2d(o, i % 100);
            put_char(o, '_');
            put_str(o, suffix[i % 5]);
            PUT_LIT(o, "\":");
            put_str(o, kinds[i % 5]);
        }
        put_char(o, '}');
    } else {
        PUT_LIT(o, order_properties);
    }
    PUT_LIT(o, "},\"key_properties\":[");
    if (opt->keyed)
        put_str(o, opt->variant == V_WIDE ? "\"id\"" : "\"order_id\"");
    PUT_LIT(o, "]}\n");
}

static void put_order(out_buf *o, const options *opt, uint64_t key, int stream_index)
{
    PUT_LIT(o, "{\"type\":\"RECORD\",\"stream\":\"");
    put_stream_name(o, opt->stream, stream_index);
    PUT_LIT(o, "\",\"record\":{\"order_id\":");
    put_u64(o, key);

    /* the amount of generation 0, so an update can be sure to change it */
    rng base = rng_for(opt->seed, key, 0);
    int64_t cents = 100 + (int64_t)rng_below(&base, 250000);
    rng r = opt->update ? rng_for(opt->seed, key, 1) : base;
    if (opt->update)
        cents += 1 + (int64_t)rng_below(&r, 5000);

    uint32_t customer = 1 + rng_below(&r, 100000);
    rng cr = rng_for(opt->seed ^ 0xc0ffee, customer, 0); /* a customer keeps a name */
    PUT_LIT(o, ",\"customer_id\":");
    put_u64(o, customer);
    const name_pair *first = NULL, *last = NULL, *whole = NULL;
    if (rng_pct(&cr, 12)) {
        whole = &cjk_names[rng_below(&cr, (uint32_t)COUNT(cjk_names))];
    } else {
        first = &first_names[rng_below(&cr, (uint32_t)COUNT(first_names))];
        last = &last_names[rng_below(&cr, (uint32_t)COUNT(last_names))];
    }
    PUT_LIT(o, ",\"customer_email\":\"");
    if (whole != NULL) {
        put_str(o, whole->ascii);
    } else {
        put_str(o, first->ascii);
        put_char(o, '.');
        put_str(o, last->ascii);
    }
    put_u64(o, customer);
    put_char(o, '@');
    put_str(o, email_domains[rng_below(&cr, (uint32_t)COUNT(email_domains))]);
    PUT_LIT(o, "\",\"customer_name\":\"");
    if (whole != NULL) {
        put_str(o, whole->text);
    } else {
        put_str(o, first->text);
        put_char(o, ' ');
        put_str(o, last->text);
    }

    PUT_LIT(o, "\",\"amount\":");
    put_fixed(o, cents, 2);
    /* tax: a rate of 0-25% in basis points, kept to 4 decimals */
    int64_t tax_e4 = cents * (int64_t)rng_below(&r, 2501) / 100;
    PUT_LIT(o, ",\"tax\":");
    put_fixed(o, tax_e4, 4);

    const city *c = &cities[rng_below(&r, (uint32_t)COUNT(cities))];
    PUT_LIT(o, ",\"currency\":\"");
    put_str(o, c->currency);
    PUT_LIT(o, "\",\"created_at\":");
    int64_t t = T_BASE + (int64_t)rng_below(&r, T_SPAN);
    put_timestamp(o, &r, t);
    PUT_LIT(o, ",\"ship_date\":");
    if (rng_pct(&r, 8)) {
        PUT_LIT(o, "null");
    } else {
        put_char(o, '"');
        put_date(o, t / 86400 + 1 + rng_below(&r, 10));
        put_char(o, '"');
    }
    static const char *const statuses[] = {"\"pending\"",  "\"paid\"",    "\"paid\"",
                                           "\"shipped\"",  "\"shipped\"", "\"shipped\"",
                                           "\"cancelled\""};
    PUT_LIT(o, ",\"status\":");
    put_str(o, statuses[rng_below(&r, (uint32_t)COUNT(statuses))]);
    PUT_LIT(o, ",\"notes\":");
    if (rng_pct(&r, 35)) {
        PUT_LIT(o, "null");
    } else {
        put_char(o, '"');
        put_str(o, notes[rng_below(&r, (uint32_t)COUNT(notes))]);
        put_char(o, '"');
    }

    PUT_LIT(o, ",\"address\":{\"street\":\"");
    put_u64(o, 1 + rng_below(&r, 250));
    put_char(o, ' ');
    put_str(o, streets[rng_below(&r, (uint32_t)COUNT(streets))]);
    PUT_LIT(o, "\",\"city\":\"");
    put_str(o, c->name);
    PUT_LIT(o, "\",\"postal_code\":\"");
    put_str(o, c->postal_prefix);
    put_u64(o, 10 + rng_below(&r, 90));
    PUT_LIT(o, "\",\"country\":\"");
    put_str(o, c->country);
    PUT_LIT(o, "\",\"geo\":{\"lat\":");
    put_fixed(o, c->lat_e6 + (int32_t)rng_below(&r, 100001) - 50000, 6);
    PUT_LIT(o, ",\"lon\":");
    put_fixed(o, c->lon_e6 + (int32_t)rng_below(&r, 100001) - 50000, 6);
    PUT_LIT(o, "}},\"tags\":[");
    uint32_t n_tags = rng_below(&r, 4), tag = rng_below(&r, (uint32_t)COUNT(tags));
    for (uint32_t i = 0; i < n_tags; i++) {
        if (i > 0)
            put_char(o, ',');
        put_char(o, '"');
        put_str(o, tags[(tag + i * 3) % COUNT(tags)]);
        put_char(o, '"');
    }
    PUT_LIT(o, "]},\"time_extracted\":");
    PUT_LIT(o, time_extracted);
    PUT_LIT(o, "}\n");
}

static void put_wide(out_buf *o, const options *opt, uint64_t key)
{
    rng r = rng_for(opt->seed, key, opt->update ? 1 : 0);
    PUT_LIT(o, "{\"type\":\"RECORD\",\"stream\":\"");
    put_str(o, opt->stream);
    PUT_LIT(o, "\",\"record\":{\"id\":");
    put_u64(o, key);
    for (unsigned i = 1; i < WIDE_PROPS; i++) {
        static const char *const suffix[] = {
            "count\":", "ratio\":", "label\":", "active\":", "seen_at\":"};
        PUT_LIT(o, ",\"f");
        put_char(o, (char)('0' + i / 100));
        put_2d(o, i % 100);
        put_char(o, '_');
        put_str(o, suffix[i % 5]);
        uint64_t x = rng_next(&r);
        if (x % 20 == 0) { /* 5% nulls */
            PUT_LIT(o, "null");
            continue;
        }
        x >>= 8;
        switch (i % 5) {
        case 0:
            put_i64(o, (int64_t)(x % 2000000000) - 100000000);
            break;
        case 1:
            put_fixed(o, (int64_t)(x % 100000000) - 1000000, (int)(1 + (x >> 40) % 6));
            break;
        case 2:
            put_char(o, '"');
            put_str(o, words[x % COUNT(words)]);
            put_char(o, ' ');
            put_u64(o, (x >> 8) % 10000);
            put_char(o, '"');
            break;
        case 3:
            put_str(o, (x & 1) ? "true" : "false");
            break;
        default:
            put_timestamp(o, &r, T_BASE + (int64_t)(x % T_SPAN));
            break;
        }
    }
    PUT_LIT(o, "},\"time_extracted\":");
    PUT_LIT(o, time_extracted);
    PUT_LIT(o, "}\n");
}

static void put_state(out_buf *o, const options *opt, int stream_index, uint64_t key,
                      unsigned long long rows)
{
    PUT_LIT(o, "{\"type\":\"STATE\",\"value\":{\"bookmarks\":{\"");
    put_stream_name(o, opt->stream, stream_index);
    PUT_LIT(o, "\":{\"replication_key\":\"");
    put_str(o, opt->variant == V_WIDE ? "id" : "order_id");
    PUT_LIT(o, "\",\"replication_key_value\":");
    put_u64(o, key);
    PUT_LIT(o, "}},\"rows_sent\":");
    put_u64(o, rows);
    PUT_LIT(o, "}}\n");
}

static int generate(const options *opt, FILE *fp)
{
    out_buf o = {malloc(OUT_CAP), 0, fp, 0};
    if (o.buf == NULL) {
        fprintf(stderr, "gen_stream: out of memory\n");
        return -1;
    }
    int n_streams = opt->variant == V_INTERLEAVED ? (int)opt->streams : 1;
    for (int s = 0; s < n_streams; s++) {
        out_room(&o);
        put_schema(&o, opt, opt->variant == V_INTERLEAVED ? s : -1);
    }
    uint64_t key = opt->key_offset;
    int index = -1;
    for (unsigned long long i = 0; i < opt->rows; i++) {
        out_room(&o);
        key = opt->key_offset + i + 1;
        index = opt->variant == V_INTERLEAVED ? (int)(i % opt->streams) : -1;
        if (opt->variant == V_WIDE)
            put_wide(&o, opt, key);
        else
            put_order(&o, opt, key, index);
        if ((i + 1) % STATE_EVERY == 0 || i + 1 == opt->rows)
            put_state(&o, opt, index, key, i + 1);
    }
    if (opt->rows == 0) {
        out_room(&o);
        put_state(&o, opt, opt->variant == V_INTERLEAVED ? 0 : -1, key, 0);
    }
    out_flush(&o);
    free(o.buf);
    if (o.failed || fflush(fp) != 0) {
        fprintf(stderr, "gen_stream: write failed: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- command line ------------------------------------------------------- */

static const char usage_text[] =
    "Usage: gen_stream [--rows N] [--variant orders|wide|interleaved] [--keyed|--unkeyed]\n"
    "                  [--seed S] [--key-offset K] [--update] [--stream NAME]\n"
    "                  [--streams N] [--output FILE]\n"
    "\n"
    "Writes a deterministic Singer stream (SCHEMA, RECORD, STATE every 10,000 records and\n"
    "at the end) to stdout or FILE.\n"
    "\n"
    "  --rows N         records to write (default 1000)\n"
    "  --variant V      orders (13 properties, nested address, tags array; default),\n"
    "                   wide (200 properties), interleaved (--streams order streams,\n"
    "                   records round-robin)\n"
    "  --keyed          key_properties [\"order_id\"] (\"id\" for wide); the default\n"
    "  --unkeyed        key_properties []\n"
    "  --seed S         seed of every value (default 1)\n"
    "  --key-offset K   keys are K+1 .. K+N (default 0)\n"
    "  --update         same keys, changed non-key values (for an upsert run)\n"
    "  --stream NAME    stream name, or prefix NAME_00.. for interleaved (default orders,\n"
    "                   wide for the wide variant)\n"
    "  --streams N      streams of the interleaved variant, 1-10000 (default 50); from\n"
    "                   the 101st on they are named NAME_100, NAME_101, ...\n"
    "  --output FILE    write FILE instead of stdout\n";

static int parse_ull(const char *s, unsigned long long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int valid_stream_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 200)
        return 0;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return 0;
    }
    return 1;
}

/* "gen_stream: <problem>: <arg>" and the usage, exit status 2. */
static void usage_error(const char *problem, const char *arg)
{
    fprintf(stderr, "gen_stream: %s: %s\n%s", problem, arg, usage_text);
    exit(2);
}

int main(int argc, char **argv)
{
    options opt = {1000, V_ORDERS, 1, 1, 0, 0, NULL, 50, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(a, "--keyed") == 0) {
            opt.keyed = 1;
        } else if (strcmp(a, "--unkeyed") == 0) {
            opt.keyed = 0;
        } else if (strcmp(a, "--update") == 0) {
            opt.update = 1;
        } else if (v == NULL) {
            usage_error("unknown option or missing value", a);
        } else if (strcmp(a, "--rows") == 0) {
            if (parse_ull(v, &opt.rows) != 0)
                usage_error("--rows needs a non-negative integer", v);
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_ull(v, &n) != 0)
                usage_error("--seed needs a non-negative integer", v);
            opt.seed = n;
            i++;
        } else if (strcmp(a, "--key-offset") == 0) {
            if (parse_ull(v, &opt.key_offset) != 0 || opt.key_offset > (1ULL << 62))
                usage_error("--key-offset needs an integer 0 .. 2^62", v);
            i++;
        } else if (strcmp(a, "--streams") == 0) {
            if (parse_ull(v, &n) != 0 || n < 1 || n > 10000)
                usage_error("--streams needs an integer 1-10000", v);
            opt.streams = (unsigned)n;
            i++;
        } else if (strcmp(a, "--variant") == 0) {
            if (strcmp(v, "orders") == 0)
                opt.variant = V_ORDERS;
            else if (strcmp(v, "wide") == 0)
                opt.variant = V_WIDE;
            else if (strcmp(v, "interleaved") == 0)
                opt.variant = V_INTERLEAVED;
            else
                usage_error("--variant is orders, wide or interleaved", v);
            i++;
        } else if (strcmp(a, "--stream") == 0) {
            if (!valid_stream_name(v))
                usage_error("--stream needs 1-200 bytes without quotes, backslashes or "
                            "control characters",
                            v);
            opt.stream = v;
            i++;
        } else if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
            opt.output = v;
            i++;
        } else {
            usage_error("unknown option", a);
        }
    }
    if (opt.rows > (1ULL << 62) - opt.key_offset)
        usage_error("--rows plus --key-offset is too large", "past 2^62");
    if (opt.stream == NULL)
        opt.stream = opt.variant == V_WIDE ? "wide" : "orders";

    FILE *fp = stdout;
    if (opt.output != NULL && (fp = fopen(opt.output, "wb")) == NULL) {
        fprintf(stderr, "gen_stream: cannot write %s: %s\n", opt.output, strerror(errno));
        return 1;
    }
    int rc = generate(&opt, fp);
    if (fp != stdout && fclose(fp) != 0 && rc == 0) {
        fprintf(stderr, "gen_stream: closing %s: %s\n", opt.output, strerror(errno));
        rc = -1;
    }
    return rc == 0 ? 0 : 1;
}
