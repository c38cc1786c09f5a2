/*
 * VM configuration as bhyve_config(5) models it: a flat set of dotted
 * key=value strings ("memory.size=512M", "lpc.com1.path=stdio",
 * "boot.kernel=/boot/vmlinuz"). Every command-line option is sugar for one or
 * more keys; `-o key=value` sets any key and `-k FILE` reads a file of
 * key=value lines. Later settings replace earlier ones, so a file can give
 * defaults that the command line overrides.
 *
 * Consumers read keys when they need them and validate them there, with an
 * error that names the key.
 */
#ifndef KHYVE_CONFIG_H
#define KHYVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_entry {
	char *key;
	char *value;
};

struct config {
	struct config_entry *entries;
	size_t n, cap;
};

void config_init(struct config *c);
void config_free(struct config *c);
int config_set(struct config *c, const char *key, const char *value);
const char *config_get(const struct config *c, const char *key);
const char *config_get_default(const struct config *c, const char *key, const char *dflt);

/* "key=value"; -1 with a reason if there is no '=' or the key is malformed. */
int config_set_pair(struct config *c, const char *pair, char *err, size_t errlen);

/* A file of key=value lines; '#' starts a comment; blank lines ignored. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* A boolean key: true/false/yes/no/on/off/1/0. -1 with reason if malformed. */
int config_get_bool(const struct config *c, const char *key, bool dflt, bool *out,
		    char *err, size_t errlen);

#endif
