"""Development tools that are not part of the installed provider (simulators, local receivers)."""
