"""The one exception type for user mistakes: the CLI prints it as a single line, never a traceback."""


class UserError(Exception):
    """Bad argument or bad input file; the message says what is wrong and, where it helps, what to do."""
