"""The Slack adapter: Bolt listeners (HTTP and Socket Mode), Block Kit cards, the gateway.

Environment
-----------
``LIAISONBOT_SLACK_SIGNING_SECRET``
    Verifies ``POST /slack/events`` (HTTP mode).
``LIAISONBOT_SLACK_BOT_TOKEN``
    The bot token (``xoxb-…``) of a single workspace.
``LIAISONBOT_SLACK_BOT_TOKENS``
    Several workspaces: ``T1=xoxb-…,T2=xoxb-…`` (team id = bot token, comma separated).
    Both variables may be set; each token is checked with ``auth.test`` at start and the team
    it belongs to is learnt from the answer (the ``T…=`` prefix is then only a cross-check).
``LIAISONBOT_SLACK_APP_TOKEN``
    The app-level token (``xapp-…``, scope ``connections:write``) for ``mode = "socket"``.

References: users and rooms are built team-qualified (``slack:T1/U1``, ``slack:T1/C1``); the
config may bind either form. A room bound without its team (``slack:C1``) is posted to through
the only workspace, or, with several, the workspace it was last seen from (else the first).
"""
