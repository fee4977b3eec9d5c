"""appliance: a private AI assistant that runs on one box."""

__version__ = "0.1.0"
