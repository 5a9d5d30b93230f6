"""The one exception base of the project; each package derives its own from it."""


class HotlineError(Exception):
    """Base of every error this project raises on purpose."""
