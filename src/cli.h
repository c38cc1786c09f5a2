/*
 * khyve's command line, bhyve(8)-shaped. Every option is turned into
 * bhyve_config(5)-style keys (config.h), so the command line, -o and -k are
 * three spellings of one thing:
 *
 *   -c [[cpus=]N][,sockets=S][,cores=C][,threads=T][,maxcpus=M]
 *                     -> cpus, sockets, cores, threads, maxcpus
 *   -m SIZE           -> memory.size
 *   -l com1,stdio     -> lpc.com1.path=stdio
 *   -o KEY=VALUE      -> KEY
 *   -k FILE           -> every KEY=VALUE line of FILE
 *   NAME              -> name
 *
 * Options apply in order, so `-k defaults.conf -o memory.size=1G` overrides.
 */
#ifndef KHYVE_CLI_H
#define KHYVE_CLI_H

#include <stddef.h>

#include "config.h"

enum cli_result {
	CLI_RUN,        /* config is complete: run the VM */
	CLI_HELP,       /* --help was given: print the manual, exit 0 */
	CLI_ERROR,      /* err holds a one-line reason */
};

enum cli_result cli_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen);
void cli_print_help(const char *prog);

/*
 * Turn the topology keys back into one -c string for topology_parse(), so the
 * parsing and defaults live in one place whichever way the keys were set.
 */
int cli_topology_string(const struct config *cfg, char *out, size_t outlen);

#endif
