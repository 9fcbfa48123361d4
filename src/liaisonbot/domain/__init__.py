"""The request desk's rules: pure Python, standard library only, no I/O."""
