"""Which member devices get the bot's room keys (``[matrix] exclude_insecure_devices``).

nio's ``/keys/query`` answer drops the cross-signing keys, so ``LiaisonClient.keys_query``
keeps them (``master_keys``, ``self_signing_keys``) and ``DeviceTrust`` computes, per queried
user, the devices signed by the user's self-signing key that is signed by their master key.
Before a group session is shared (``apply``), devices that are not cross-signed are put on nio's
blacklist (nio then shares nothing with them and starts a new session when that changes) and
get ``m.room_key.withheld`` with code ``m.unverified``, as Element does; devices that became
cross-signed are taken off it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from nio import AsyncClient, KeysQueryResponse
from nio.api import Api
from nio.exceptions import LocalProtocolError

from liaisonbot.chat.matrix.keys import key_of, signed_devices
from liaisonbot.chat.matrix.pins import Pins

log = logging.getLogger(__name__)
WITHHELD_REASON = "The sender only shares keys with devices cross-signed by their owner."


@dataclass
class SignedKeysQueryResponse(KeysQueryResponse):
    """nio's answer plus the cross-signing keys it leaves out."""

    master_keys: dict[str, Any] = field(default_factory=dict)
    self_signing_keys: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, parsed_dict: dict[Any, Any]) -> Any:  # type: ignore[override]
        resp = KeysQueryResponse.from_dict(parsed_dict)
        if not isinstance(resp, KeysQueryResponse):
            return resp
        out = cls(resp.device_keys, resp.failures)
        out.master_keys = dict(parsed_dict.get("master_keys") or {})
        out.self_signing_keys = dict(parsed_dict.get("self_signing_keys") or {})
        return out


class DeviceTrust:
    """Cross-signed devices per user, from the last ``/keys/query`` that covered the user.
    A member whose master key is not the pinned one (``pins.py``) has none."""

    def __init__(self, own_user: str = "") -> None:
        self.signed: dict[str, set[str]] = {}
        self.own_user = own_user
        self.pins = Pins()

    def update(self, resp: SignedKeysQueryResponse) -> None:
        for user_id, devices in resp.device_keys.items():
            signed = signed_devices(
                user_id, resp.master_keys.get(user_id), resp.self_signing_keys.get(user_id),
                devices if isinstance(devices, dict) else {})
            master = key_of(resp.master_keys.get(user_id), user_id, "master")
            if master and user_id != self.own_user and not self.pins.see(user_id, master):
                # Held: the new identity's devices count for nothing; devices verified under
                # the pinned identity before (this process) keep their trust.
                if (user_id, master) in self.pins.newly_held:
                    log.warning("matrix member's cross-signing identity changed; held",
                                extra={"user": user_id, "master_key": master})
                signed = self.signed.get(user_id, set()) & set(devices or {})
            self.signed[user_id] = signed

    def is_held(self, user_id: str) -> bool:
        pin = self.pins.pins.get(user_id)
        return pin is not None and pin.held is not None

    def is_signed(self, user_id: str, device_id: str) -> bool:
        return device_id in self.signed.get(user_id, set())


class LiaisonClient(AsyncClient):
    """nio's client whose key queries also feed ``trust``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trust = DeviceTrust(self.user_id)
        #: (session id, user, device) already told ``m.unverified``.
        self._withheld_sent: set[tuple[str, str, str]] = set()

    async def keys_query(self) -> Any:
        user_list = self.users_for_key_query
        if not user_list:
            raise LocalProtocolError("No key query required.")
        method, path, data = Api.keys_query(self.access_token, user_list)
        resp = await self._send(SignedKeysQueryResponse, method, path, data)
        if isinstance(resp, SignedKeysQueryResponse):
            self.trust.update(resp)
        return resp

    def apply_trust(self, room_id: str, exclude: bool = True) -> list[tuple[str, str]]:
        """Blacklist the room members' devices that are not cross-signed, take signed ones
        off the blacklist; returns the excluded (user, device) pairs. With ``exclude`` false
        (the setting turned off), every device comes off the blacklist (the bot blacklists
        nothing else)."""
        assert self.olm is not None
        room = self.rooms[room_id]
        excluded = []
        for user_id in room.users:
            for device in self.device_store.active_user_devices(user_id):
                if user_id == self.user_id and device.id == self.device_id:
                    continue
                if (not exclude and not self.trust.is_held(user_id)) \
                        or self.trust.is_signed(user_id, device.id):
                    if self.olm.is_device_blacklisted(device):
                        self.unblacklist_device(device)
                        log.info("matrix device cross-signed now; it gets room keys",
                                 extra={"user": user_id, "device": device.id})
                else:
                    if not self.olm.is_device_blacklisted(device):
                        self.blacklist_device(device)
                        log.info("matrix device not cross-signed; no room keys for it",
                                 extra={"user": user_id, "device": device.id})
                    excluded.append((user_id, device.id))
        return excluded

    async def send_withheld(self, room_id: str, excluded: list[tuple[str, str]]) -> None:
        """Tell excluded devices (once per session) why they get no key: ``m.unverified``."""
        assert self.olm is not None
        session = self.olm.outbound_group_sessions.get(room_id)
        if session is None or not excluded:
            return
        messages: dict[str, dict[str, Any]] = {}
        for user_id, device_id in excluded:
            mark = (session.id, user_id, device_id)
            if mark in self._withheld_sent:
                continue
            self._withheld_sent.add(mark)
            messages.setdefault(user_id, {})[device_id] = {
                "algorithm": "m.megolm.v1.aes-sha2", "room_id": room_id,
                "session_id": session.id, "sender_key": self.olm.account.identity_keys[
                    "curve25519"], "code": "m.unverified", "reason": WITHHELD_REASON,
                "from_device": self.device_id}
        if not messages:
            return
        path = f"/_matrix/client/v3/sendToDevice/m.room_key.withheld/{uuid4()}"
        async with await self.send("PUT", path, json.dumps({"messages": messages}), headers={
                "Authorization": f"Bearer {self.access_token}",
                "Content-Type": "application/json"}) as response:
            if response.status != 200:
                log.info("matrix m.room_key.withheld not sent",
                         extra={"room": room_id, "status": response.status})
