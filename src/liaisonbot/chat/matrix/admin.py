"""Operator actions on the bot's Matrix account, run from the CLI (``liaisonbot matrix ...``)
while the bot is stopped: they log a client in (``session.py``) and drive the identity code
(``crosssigning.py``), so the identity code itself never needs to log in."""

from __future__ import annotations

from liaisonbot.chat.matrix.crosssigning import CrossSigning, HomeserverError
from liaisonbot.chat.matrix.session import Credentials, MatrixSetupError, login, make_client
from liaisonbot.config import Settings
from liaisonbot.service import messages as msg


async def reset_identity(settings: Settings) -> str:
    """``liaisonbot matrix reset-identity``: new cross-signing keys replace the account's
    (user-interactive auth with ``LIAISONBOT_MATRIX_PASSWORD``), saved in ``data_dir`` and,
    with a recovery key, in secret storage; the bot's device is signed. Returns the new master
    key; ``MatrixSetupError`` with one sentence otherwise. Run it while the bot is stopped."""
    creds = Credentials.from_env()
    if not creds.password:
        raise MatrixSetupError(msg.IDENTITY_NEEDS_PASSWORD)
    client = make_client(settings.matrix, creds)
    try:
        await login(client, settings.matrix, creds)
        if client.should_upload_keys:
            await client.keys_upload()
        cs = CrossSigning(client, data_dir=settings.matrix.data_dir,
                          pickle_key=creds.pickle_key, recovery_key=creds.recovery_key,
                          password=creds.password)
        try:
            state = await cs.ensure(reset=True)
        except HomeserverError as error:
            raise MatrixSetupError(msg.IDENTITY_UPLOAD_FAILED.format(error=error)) from None
        if state.problem or not state.master_key:
            raise MatrixSetupError(state.problem or "the identity was not replaced")
        return state.master_key
    finally:
        await client.close()
