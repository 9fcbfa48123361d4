"""liaisonbot: the shared desk between prosecutors' offices on Slack and Matrix."""

__version__ = "0.1.0"
