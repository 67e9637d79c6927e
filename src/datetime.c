/*
 * datetime.c - the date, time and timestamp checks of datetime.h.  Pure
 * functions over (pointer, length): no allocation, no locale, no libc time
 * parsing (strptime and friends are locale- and platform-dependent and slow),
 * just fixed-position digit reads.  Parsing stops at the first problem and
 * reports it through a static string; nothing here owns memory.
 *
 * The reasons name the offending field with its two digits as written
 * ("month 13 out of range", "hour 25 out of range").  They come from tables
 * of string literals built by the preprocessor, because a reason must be a
 * static string (the callers keep the pointer) and there is no buffer to
 * format into.
 */
#include "datetime.h"

#include <string.h>

static const char FORM_TIMESTAMP[] = "not an ISO 8601 date-time";
static const char FORM_DATE[] = "not an ISO 8601 date (YYYY-MM-DD)";
static const char FORM_TIME[] = "not an ISO 8601 time";
static const char BAD_OFFSET[] = "bad UTC offset";
static const char AFTER_OFFSET[] = "unexpected text after the UTC offset";
static const char YEAR_ZERO[] = "year 0 out of range";
static const char HOUR_24[] = "hour 24 allowed only as 24:00:00";

/* "<p>00<s>" .. "<p>99<s>", indexed by the two-digit value. */
#define R10(p, t, s)                                                                               \
    p t "0" s, p t "1" s, p t "2" s, p t "3" s, p t "4" s, p t "5" s, p t "6" s, p t "7" s,        \
        p t "8" s, p t "9" s
#define R100(p, s)                                                                                 \
    R10(p, "0", s), R10(p, "1", s), R10(p, "2", s), R10(p, "3", s), R10(p, "4", s),                \
        R10(p, "5", s), R10(p, "6", s), R10(p, "7", s), R10(p, "8", s), R10(p, "9", s)

static const char *const MONTH_RANGE[100] = {R100("month ", " out of range")};
static const char *const DAY_RANGE[100] = {R100("day ", " out of range")};
static const char *const HOUR_RANGE[100] = {R100("hour ", " out of range")};
static const char *const MINUTE_RANGE[100] = {R100("minute ", " out of range")};
static const char *const SECOND_RANGE[100] = {R100("second ", " out of range")};

static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return 0;
}

static int is_digit(char c)
{
    return (unsigned)(c - '0') < 10u;
}

static int two_digits(const char *s)
{
    return is_digit(s[0]) && is_digit(s[1]);
}

static int value2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const unsigned char days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : days[month];
}

/* Why `day` (known to be beyond the month's last day) is wrong.  Only days
 * 29-31 can be valid in some months but not in this one; the rest are out of
 * range everywhere. */
static const char *day_reason(int day, int month)
{
    if (day < 1 || day > 31)
        return DAY_RANGE[day];
    switch (month) {
    case 2:
        if (day == 29)
            return "day 29 out of range for February (not a leap year)";
        return day == 30 ? "day 30 out of range for February" : "day 31 out of range for February";
    case 4:
        return "day 31 out of range for April";
    case 6:
        return "day 31 out of range for June";
    case 9:
        return "day 31 out of range for September";
    case 11:
        return "day 31 out of range for November";
    default:
        return DAY_RANGE[day];
    }
}

/* YYYY-MM-DD in s[0..10) into out; the caller has checked that 10 bytes
 * exist. */
static int check_ymd(const char *s, const char *form, tgt_datetime *out, const char **why)
{
    if (!two_digits(s) || !two_digits(s + 2) || s[4] != '-' || !two_digits(s + 5) || s[7] != '-' ||
        !two_digits(s + 8))
        return fail(why, form);
    int year = value2(s) * 100 + value2(s + 2);
    int month = value2(s + 5);
    int day = value2(s + 8);
    if (year == 0)
        return fail(why, YEAR_ZERO);
    if (month < 1 || month > 12)
        return fail(why, MONTH_RANGE[month]);
    if (day < 1 || day > days_in_month(year, month))
        return fail(why, day_reason(day, month));
    out->year = year;
    out->month = month;
    out->day = day;
    return 1;
}

/* Reads the next two-digit field of an offset at s[*i..n): after a colon in
 * the colon form, directly in the compact form.  0 when there is none. */
static int offset_field(const char *s, size_t n, size_t *i, int colon, int *value)
{
    size_t j = *i + (colon != 0);
    if (*i >= n || (colon ? s[*i] != ':' : !is_digit(s[*i])) || n - j < 2 || !two_digits(s + j))
        return 0;
    *value = value2(s + j);
    *i = j + 2;
    return 1;
}

/* Z, or +HH, +HH:MM, +HH:MM:SS, +HHMM (either sign), making up all
 * of s[0..n); the seconds are how Python writes the historical local mean
 * time offsets of the tz database (1900-01-01T05:21:10+05:21:10 in
 * Asia/Kolkata).  *seconds gets the offset east of UTC in seconds. */
static int read_offset(const char *s, size_t n, const char *form, long *seconds, const char **why)
{
    *seconds = 0;
    if (n == 0)
        return 1;
    if (s[0] == 'Z' || s[0] == 'z')
        return n == 1 ? 1 : fail(why, AFTER_OFFSET);
    if (s[0] != '+' && s[0] != '-')
        return fail(why, form);
    if (n < 3 || !two_digits(s + 1))
        return fail(why, BAD_OFFSET);
    int hours = value2(s + 1), field[2] = {0, 0};
    size_t i = 3;
    /* minutes, then seconds, all with a colon before them or none; the
     * seconds only with colons, as PostgreSQL refuses +HHMMSS */
    int colon = i < n && s[i] == ':';
    for (int f = 0; f < 1 + colon && i < n && (s[i] == ':' || is_digit(s[i])); f++)
        if (!offset_field(s, n, &i, colon, &field[f]))
            return fail(why, BAD_OFFSET);
    int minutes = field[0], secs = field[1];
    /* PostgreSQL's limits (DecodeTimezone): up to 15 hours */
    if (hours > 15 || minutes > 59 || secs > 59)
        return fail(why, BAD_OFFSET);
    if (i != n)
        return fail(why, AFTER_OFFSET);
    *seconds = (s[0] == '-' ? -1 : 1) * ((long)hours * 3600 + minutes * 60 + secs);
    return 1;
}

static int check_clock_ranges(int hour, int minute, int second, int fraction_nonzero,
                              const char **why)
{
    if (hour > 24)
        return fail(why, HOUR_RANGE[hour]);
    if (minute > 59)
        return fail(why, MINUTE_RANGE[minute]);
    /* 60 is a leap second, which PostgreSQL accepts and rolls over. */
    if (second > 60)
        return fail(why, SECOND_RANGE[second]);
    /* 24:00:00 is the end of the day; anything past it is not a time. */
    if (hour == 24 && (minute != 0 || second != 0 || fraction_nonzero))
        return fail(why, HOUR_24);
    return 1;
}

/* A clock time as read by read_clock(). */
typedef struct clock_parts {
    int hour, minute, second;
    size_t fraction;     /* offset of the '.', or 0 when there is none */
    size_t fraction_end; /* offset just past its digits (where the UTC offset starts) */
    long utc_offset;     /* seconds east of UTC; 0 without one */
} clock_parts;

/* HH:MM[:SS[.fraction]][offset] making up all of s[0..n). */
static int read_clock(const char *s, size_t n, const char *form, clock_parts *c, const char **why)
{
    if (n < 5 || !two_digits(s) || s[2] != ':' || !two_digits(s + 3))
        return fail(why, form);
    c->hour = value2(s);
    c->minute = value2(s + 3);
    c->second = 0;
    c->fraction = 0;
    int fraction_nonzero = 0;
    size_t i = 5;
    if (i < n && s[i] == ':') {
        if (n - i < 3 || !two_digits(s + i + 1))
            return fail(why, form);
        c->second = value2(s + i + 1);
        i += 3;
        if (i < n && s[i] == '.') {
            c->fraction = i;
            size_t first = ++i;
            while (i < n && is_digit(s[i])) {
                fraction_nonzero |= s[i] != '0';
                i++;
            }
            if (i == first)
                return fail(why, form);
        }
    }
    c->fraction_end = i;
    if (!check_clock_ranges(c->hour, c->minute, c->second, fraction_nonzero, why))
        return 0;
    return read_offset(s + i, n - i, form, &c->utc_offset, why);
}

/* A valid clock s[0..n) (read_clock) into out's time parts. */
static int parse_clock(const char *s, size_t n, const char *form, tgt_datetime *out,
                       const char **why)
{
    clock_parts c;
    if (!read_clock(s, n, form, &c, why))
        return 0;
    out->hour = c.hour;
    out->minute = c.minute;
    out->second = c.second;
    size_t base = (size_t)(s - out->text);
    out->fraction = c.fraction ? base + c.fraction + 1 : 0;
    out->fraction_len = c.fraction ? c.fraction_end - c.fraction - 1 : 0;
    out->utc_offset = c.utc_offset;
    out->has_time = 1;
    out->has_offset = c.fraction_end < n;
    return 1;
}

static void start(tgt_datetime *out, const char *s, size_t n)
{
    memset(out, 0, sizeof *out);
    out->text = s;
    out->len = n;
}

int tgt_datetime_parse_timestamp(const char *s, size_t n, tgt_datetime *out, const char **why)
{
    start(out, s, n);
    if (n < 10)
        return fail(why, FORM_TIMESTAMP);
    if (!check_ymd(s, FORM_TIMESTAMP, out, why))
        return 0;
    if (n == 10)
        return 1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return fail(why, FORM_TIMESTAMP);
    return parse_clock(s + 11, n - 11, FORM_TIMESTAMP, out, why);
}

int tgt_datetime_parse_date(const char *s, size_t n, tgt_datetime *out, const char **why)
{
    start(out, s, n);
    if (n != 10)
        return fail(why, FORM_DATE);
    return check_ymd(s, FORM_DATE, out, why);
}

int tgt_datetime_parse_time(const char *s, size_t n, tgt_datetime *out, const char **why)
{
    start(out, s, n);
    return parse_clock(s, n, FORM_TIME, out, why);
}

int tgt_datetime_check_timestamp(const char *s, size_t n, const char **why)
{
    tgt_datetime v;
    return tgt_datetime_parse_timestamp(s, n, &v, why);
}

int tgt_datetime_check_date(const char *s, size_t n, const char **why)
{
    tgt_datetime v;
    return tgt_datetime_parse_date(s, n, &v, why);
}

int tgt_datetime_check_time(const char *s, size_t n, const char **why)
{
    tgt_datetime v;
    return tgt_datetime_parse_time(s, n, &v, why);
}

void tgt_datetime_time_to_utc(tgt_datetime *v)
{
    if (v->utc_offset == 0)
        return;
    long t = (long)v->hour * 3600 + v->minute * 60 + v->second;
    t = ((t - v->utc_offset) % 86400 + 86400) % 86400;
    v->hour = (int)(t / 3600);
    v->minute = (int)(t / 60 % 60);
    v->second = (int)(t % 60);
    v->utc_offset = 0;
}

size_t tgt_datetime_date_prefix(const char *s, size_t n)
{
    return tgt_datetime_check_timestamp(s, n, NULL) ? 10 : 0;
}

int tgt_datetime_time_utc(const char *s, size_t n, char hms[TGT_DATETIME_HMS_LEN], size_t *fraction,
                          size_t *fraction_len)
{
    clock_parts c;
    if (!read_clock(s, n, FORM_TIME, &c, NULL))
        return 0;
    *fraction = c.fraction;
    *fraction_len = c.fraction ? c.fraction_end - c.fraction : 0;
    if (c.fraction_end == n)
        return 0; /* no offset: the time as written */
    long t = (long)c.hour * 3600 + c.minute * 60 + c.second;
    if (c.utc_offset != 0) {
        /* an offset moves the time round the clock; with none (Z, +00)
         * 24:00:00 and a leap second :60 stay as written */
        t = ((t - c.utc_offset) % 86400 + 86400) % 86400;
        c.hour = (int)(t / 3600);
        c.minute = (int)(t / 60 % 60);
        c.second = (int)(t % 60);
    }
    const int v[3] = {c.hour, c.minute, c.second};
    for (int k = 0; k < 3; k++) {
        hms[3 * k] = (char)('0' + v[k] / 10);
        hms[3 * k + 1] = (char)('0' + v[k] % 10);
        if (k < 2)
            hms[3 * k + 2] = ':';
    }
    return 1;
}
