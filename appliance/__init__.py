"""VoxGate: the appliance daemon (session engine, lines, media, store, web)."""

__version__ = "0.1.0"
