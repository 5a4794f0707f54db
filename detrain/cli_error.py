"""The one error the commands raise for a problem the user can fix (detrain/cli.py prints it
as one line and exits 2). Its own module, so the command modules need not import cli.py."""


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""
