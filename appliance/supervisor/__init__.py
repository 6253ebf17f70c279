"""Supervision: systemd readiness and watchdog, health figures."""
