"""The Matrix adapter: a nio client with E2EE, inbound commands and relays, an m.notice gateway."""
