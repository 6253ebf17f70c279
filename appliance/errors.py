"""The root of the appliance's exceptions; each package derives its own from it."""


class ApplianceError(Exception):
    """Something the appliance refuses or cannot do, with a message meant for the user."""


class ConfigError(ApplianceError, ValueError):
    """The configuration file or a command-line value is wrong."""
