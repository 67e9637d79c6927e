/*
 * datetime.h - checks that a string is a date, time or timestamp that
 * PostgreSQL will read the same way, before it goes into a COPY stream.
 *
 * Catching bad values here (instead of letting COPY fail on a whole chunk)
 * lets the error name the input line, stream and property.  Pure functions,
 * no allocation.  The session runs with TimeZone=UTC and DateStyle=ISO, so a
 * timestamp without an offset means UTC.
 *
 * Accepted forms (ISO 8601 / RFC 3339 profile):
 *   date:      YYYY-MM-DD                       (year 0001..9999)
 *   time:      HH:MM[:SS[.fraction]][offset]    (24:00:00 allowed)
 *   timestamp: date ('T' | 't' | ' ') time, or a date alone (midnight)
 *   offset:    Z | z | (+|-) HH[:MM[:SS]] | (+|-) HH[MM]   (|HH| <= 15; the
 *              seconds are Python's spelling of historical local mean time
 *              offsets, e.g. +05:21:10; PostgreSQL reads them exactly, but
 *              not in the compact form +052110)
 *   fraction:  1 or more digits (PostgreSQL rounds past 6)
 * Ranges are checked: month 1-12, day within the month (leap years per the
 * Gregorian rule), hour 0-23 (or 24:00:00 exactly), minute 0-59, second
 * 0-60 (a leap second: PostgreSQL accepts :60 and rolls over).
 */
#ifndef TGT_DATETIME_H
#define TGT_DATETIME_H

#include <stddef.h>

/* Each returns 1 when s[0..n) is valid for the column kind, else 0 and, if
 * why is not NULL, points *why at a short static reason ("month 13 out of
 * range", "not an ISO 8601 date-time"). */
int tgt_datetime_check_timestamp(const char *s, size_t n, const char **why);
int tgt_datetime_check_date(const char *s, size_t n, const char **why);
int tgt_datetime_check_time(const char *s, size_t n, const char **why);

/* A checked date, time or timestamp: the text as written and the parts the
 * check read from it (what a driver hands its warehouse, drivers/row.h).
 * The parts are as written, not converted: a warehouse that keeps no offset
 * moves the clock by utc_offset itself. */
typedef struct tgt_datetime {
    const char *text; /* borrowed: the value as written, valid */
    size_t len;
    int year, month, day;     /* 0 for a time */
    int hour, minute, second; /* 0 for a date alone; hour 24 and second 60 can occur */
    size_t fraction;          /* text[fraction..fraction + fraction_len): the digits */
    size_t fraction_len;      /* after the '.'; 0 when there are none */
    long utc_offset;          /* seconds east of UTC; 0 without an offset (UTC) */
    int has_time;             /* 0 for a date alone */
    int has_offset;           /* the text ends in an offset (Z included) */
} tgt_datetime;

/* The checks above, also filling *out (which borrows s) when valid. */
int tgt_datetime_parse_timestamp(const char *s, size_t n, tgt_datetime *out, const char **why);
int tgt_datetime_parse_date(const char *s, size_t n, tgt_datetime *out, const char **why);
int tgt_datetime_parse_time(const char *s, size_t n, tgt_datetime *out, const char **why);

/* Length of the "HH:MM:SS" that tgt_datetime_time_utc writes. */
#define TGT_DATETIME_HMS_LEN 8

/* For a time column, which holds UTC times (PostgreSQL's time input would
 * silently drop an offset): when the valid time s[0..n) carries a UTC
 * offset, writes the time converted to UTC as "HH:MM:SS" into hms (no NUL;
 * round the clock: 02:00+05:30 is 20:30:00) and returns 1; the fraction
 * digits, unchanged by the conversion, are s[*fraction..+*fraction_len)
 * including the '.' (*fraction_len 0: none).  Z and +00:00 only drop the
 * offset (24:00:00Z stays 24:00:00).  Returns 0 when s has no offset (keep
 * it as written) or is not a valid time. */
int tgt_datetime_time_utc(const char *s, size_t n, char hms[TGT_DATETIME_HMS_LEN], size_t *fraction,
                          size_t *fraction_len);

/* For a time column: moves a parsed time's clock parts to UTC round the
 * clock (02:00+05:30 becomes 20:30:00) and sets utc_offset to 0; the text
 * and has_offset stay as written.  Z and +00:00 change nothing (24:00:00Z
 * stays 24:00:00). */
void tgt_datetime_time_to_utc(tgt_datetime *v);

/* For a date column given a full timestamp ("2020-01-31T10:00:00Z"): the
 * length of the leading date part when s is a valid timestamp, else 0. */
size_t tgt_datetime_date_prefix(const char *s, size_t n);

#endif
