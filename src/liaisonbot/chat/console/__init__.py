"""The console: a terminal standing in for every chat platform."""
