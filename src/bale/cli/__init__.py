"""The command line: argument parsing, rendering and exit codes. Nothing else imports it."""
