"""The case board: a read-only web view of an office's cases behind its OpenID Connect login."""
