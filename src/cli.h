/*
 * cli.h - subcommands other than serve.  Each takes the arguments after its
 * own name (argv[0] is the subcommand name), writes errors to stderr the
 * err(3) way, and returns the process exit code (0 ok, 1 failure, 2 usage).
 */
#ifndef OE_CLI_H
#define OE_CLI_H

int cli_keygen(int argc, char **argv); /* openexec keygen [--out PREFIX] */
/* openexec verify-log --key PUB.pem --checkpoint CP FILE.jsonl */
int cli_verify_log(int argc, char **argv);
/* openexec verify-receipt --key PUB.pem FILE.json */
int cli_verify_receipt(int argc, char **argv);
int cli_mint(int argc, char **argv);
/* openexec pending [--json] */
int cli_pending(int argc, char **argv);
/* openexec resolve NONCE --outcome succeeded|failed [--result JSON] */
int cli_resolve(
    int argc,
    char **argv); /* openexec mint --key PRIV --tenant T --action A --payload JSON [--ttl S] */

/* Matches argv[*i] against "--name VALUE" or "--name=VALUE": 1 and *i
 * advanced past the value, 0 when argv[*i] is another option, -1 when the
 * value is missing. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value);
/* --help or -h */
int cli_is_help(const char *a);

#endif
