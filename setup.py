"""Builds the C companion of the QuickJS binding (appliance/engine/_qjsglue.c)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("appliance.engine._qjsglue", ["appliance/engine/_qjsglue.c"])])
