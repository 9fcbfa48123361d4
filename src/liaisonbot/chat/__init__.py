"""Platform adapters (console, Slack, Matrix) and the rendering of neutral posts."""
