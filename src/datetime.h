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
int tgt_datetime_time_utc(const char *s, size_t n, char hms[TGT_DATETIME_HMS_LEN],
                          size_t *fraction, size_t *fraction_len);

/* For a date column given a full timestamp ("2020-01-31T10:00:00Z"): the
 * length of the leading date part when s is a valid timestamp, else 0. */
size_t tgt_datetime_date_prefix(const char *s, size_t n);

#endif
