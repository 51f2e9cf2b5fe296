"""Binds every features/**/*.feature through pytest-bdd and loads the step library."""

from steps import MODULES

pytest_plugins = ["runbooks.pytest_plugin", *MODULES]
