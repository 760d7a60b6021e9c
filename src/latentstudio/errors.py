"""The one exception type for failures a user can cause and fix."""


class UserError(Exception):
    """A problem with the user's input (path, flag, file, checkpoint) and how to fix it.

    The command line prints its message on one line and exits with status 2.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the work after what it had done was saved; the command line exits 130."""
