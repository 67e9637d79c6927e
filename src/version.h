/* version.h - the one place the release number lives. */
#ifndef TGT_VERSION_H
#define TGT_VERSION_H
#define TGT_NAME "target-pg"
#define TGT_VERSION "0.1.0"
#endif
