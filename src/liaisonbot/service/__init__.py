"""Use cases of the desk and the ports they need. Imports only ``domain`` and the stdlib."""
