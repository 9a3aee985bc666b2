"""Exceptions raised to users of model-navigator."""


class ModelNavigatorError(Exception):
    """Base class of every error model-navigator raises on purpose."""


class UserInputError(ModelNavigatorError, ValueError):
    """An argument or input is wrong; the message names it and says how to fix it."""


class FrameworkMissingError(ModelNavigatorError, ImportError):
    """A framework extra is not installed."""


class PackageError(ModelNavigatorError):
    """A .nav package or workspace cannot be read safely."""
