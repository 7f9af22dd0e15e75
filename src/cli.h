/*
 * cli.h - subcommands other than serve.  Each takes the arguments after its
 * own name (argv[0] is the subcommand name), writes errors to stderr the
 * err(3) way, and returns the process exit code (0 ok, 1 failure, 2 usage).
 */
#ifndef OE_CLI_H
#define OE_CLI_H

int cli_keygen(int argc, char **argv); /* openexec keygen [--out PREFIX] */
int cli_mint(int argc, char **argv);   /* openexec mint --key PRIV --tenant T --action A --payload JSON [--ttl S] */

#endif
