/* server/cli.h: the subcommands of the paved binary and what they share: loading the
 * bundle, the config and one vm. */
#ifndef PV_CLI_H
#define PV_CLI_H

#include <stdbool.h>

#include "bundle.h"
#include "config.h"
#include "vm.h"

#define PAVED_VERSION "0.1.0"

/* Exit codes of every command. */
enum {
    EXIT_ALLOW = 0,
    EXIT_DENY = 1,
    EXIT_USAGE = 2,
};

struct cli_engine {
    struct bundle bundle;
    struct config *cfg;
    struct vm *vm;
    /* The policy sources 'vm' was built from (those the bindings use, or all of
     * them); texts borrowed from 'bundle'. Other vms for the same config use these. */
    struct vm_source *sources;
    size_t n_sources;
};

/* Loads the config ('config_path', or the embedded default when NULL), the bundle
 * ('policies_dir' overrides the config's policies_dir; both NULL: embedded) and one vm
 * with the config's bindings when 'with_bindings'. Borrows the strings. Prints nothing;
 * on error 'err' says what failed and everything is released. */
pv_status cli_engine_open(struct cli_engine *e, const char *policies_dir, const char *config_path,
                          bool with_bindings, struct pv_err *err);
void cli_engine_close(struct cli_engine *e);

int cmd_check(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_policies(int argc, char **argv);

#endif
