"""Integrations with the places chatroster runs from: CI systems and editors.

Each one drives the command line as a user would, so that the exit codes and outputs
documented in the README are the only contract between them and the core.
"""
