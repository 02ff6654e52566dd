/* Identity mapping: which local account a verified identity names ([identity] in the config).
 * rule = map: a map file of "local_user claim_value" lines; rule = email_local: the local part
 * of a verified email in the configured domain. No match: deny. */
#ifndef NL_MAPPING_H
#define NL_MAPPING_H

#include <jansson.h>
#include "nl_config.h"

#define NL_MAP_MAX_FILE (4 * 1024 * 1024)

/* Map claims to a local user name. Re-reads the map file when it changed (mtime/size).
 * Returns 0 and a new string in *local_user, NL_ERR_NOT_FOUND when nothing matches, or
 * NL_ERR_CONFIG / NL_ERR_PERM for a bad map file (err names file and line). Thread-safe. */
int nl_map_identity(const struct nl_config *cfg, const json_t *claims, char **local_user, char *err,
                    size_t errlen);
/* Check a map file's syntax and mode (for nhsloginctl check). */
int nl_map_check_file(const char *path, char *err, size_t errlen);

#endif
