// A Matrix client with Element's crypto engine (matrix-js-sdk + Rust crypto in WASM), driven
// by newline-delimited JSON over stdin/stdout. tests/support/element.py is the driver.
//
// Requests:  {"id": 1, "cmd": "login", ...args}
// Replies:   {"id": 1, "ok": true, "result": ...} | {"id": 1, "ok": false, "error": "..."}
// Pushed:    {"event": {...}}      a timeline event, again each time its decryption state changes
//            {"to_device": {...}}  a to-device message (m.room_key from whom, m.room_key.withheld)
//
// Everything the SDK logs goes to stderr; stdout carries only the protocol.

// Node 20: matrix-js-sdk 43 asks for Node 22; Promise.withResolvers is the only gap.
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

const out = process.stdout.write.bind(process.stdout);
for (const name of ["log", "info", "debug", "trace", "warn"]) {
    console[name] = (...args) => console.error(...args);
}

// Imported after the polyfill (static imports would be evaluated first).
const sdk = await import("matrix-js-sdk");
const cryptoApi = await import("matrix-js-sdk/lib/crypto-api/index.js");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.ELEMENT_LOG_LEVEL || "warn");

const MEGOLM = "m.megolm.v1.aes-sha2";

let client = null;
let password = null;
const events = new Map(); // event id -> MatrixEvent

function send(obj) {
    out(JSON.stringify(obj) + "\n");
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(cond, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        if (await cond()) return;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
    }
}

function crypto() {
    const c = client?.getCrypto();
    if (!c) throw new Error("not logged in (no crypto)");
    return c;
}

// ------------------------------------------------------------------------------- events

function record(ev) {
    const encrypted = ev.isEncrypted();
    const failure = ev.isDecryptionFailure() ? (ev.decryptionFailureReason ?? "UNKNOWN_ERROR") : null;
    const content = failure ? {} : ev.getContent();
    const rel = content["m.relates_to"] || {};
    return {
        event_id: ev.getId(),
        room_id: ev.getRoomId(),
        sender: ev.getSender(),
        type: ev.getType(),
        state_key: ev.getStateKey() ?? null,
        content,
        encrypted,
        decrypted: encrypted && !failure,
        decryption_failure: failure,
        thread_root: rel.rel_type === "m.thread" ? rel.event_id : null,
        origin_server_ts: ev.getTs(),
    };
}

function publish(ev) {
    const id = ev.getId();
    if (!id || id.startsWith("~")) return; // local echo, not yet on the server
    if (ev.isEncrypted() && (ev.isBeingDecrypted() || ev.shouldAttemptDecryption())) return; // not settled
    events.set(id, ev);
    send({ event: record(ev) });
}

function onToDevice(payload) {
    const m = payload.message || {};
    const content = m.content || {};
    if (m.type !== "m.room_key" && m.type !== "m.room_key.withheld" && m.type !== "m.forwarded_room_key") return;
    send({
        to_device: {
            type: m.type,
            sender: m.sender,
            sender_device: payload.encryptionInfo?.senderDevice ?? content.from_device ?? null,
            encrypted: payload.encryptionInfo != null,
            room_id: content.room_id ?? null,
            session_id: content.session_id ?? null,
            code: content.code ?? null,
        },
    });
}

// ----------------------------------------------------------------------------- commands

async function login(a) {
    if (client) throw new Error("already logged in");
    let accessToken = a.access_token;
    let deviceId = a.device_id;
    let userId = a.user_id;
    password = a.password ?? null;
    if (!accessToken) {
        const anon = sdk.createClient({ baseUrl: a.base_url });
        const resp = await anon.loginRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: a.user_id },
            password: a.password,
            initial_device_display_name: a.device_name || "element-harness",
        });
        accessToken = resp.access_token;
        deviceId = resp.device_id;
        userId = resp.user_id;
    }
    client = sdk.createClient({ baseUrl: a.base_url, userId, accessToken, deviceId });
    await client.initRustCrypto({ useIndexedDB: false });
    client.on(sdk.RoomEvent.Timeline, (ev) => publish(ev));
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => publish(ev));
    client.on(sdk.ClientEvent.ReceivedToDeviceMessage, onToDevice);
    const prepared = new Promise((resolve, reject) => {
        client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
            if (state === "PREPARED" || state === "SYNCING") resolve();
            if (state === "ERROR" && !client.isInitialSyncComplete()) reject(data?.error ?? new Error("sync error"));
        });
    });
    await client.startClient({ initialSyncLimit: 50, pollTimeout: 1000 });
    await prepared;
    return { user_id: userId, device_id: deviceId, access_token: accessToken };
}

async function bootstrapCrossSigning() {
    const c = crypto();
    await c.bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
            // Synapse takes a first upload without user-interactive auth (MSC3967).
            const auth = password
                ? {
                      type: "m.login.password",
                      identifier: { type: "m.id.user", user: client.getUserId() },
                      password,
                  }
                : null;
            await makeRequest(auth);
        },
    });
    await until(() => c.isCrossSigningReady(), 20000, "cross-signing ready");
    return ownIdentity();
}

async function ownIdentity() {
    const c = crypto();
    const status = await c.getDeviceVerificationStatus(client.getUserId(), client.getDeviceId());
    return {
        ready: await c.isCrossSigningReady(),
        master_key: await c.getCrossSigningKeyId(cryptoApi.CrossSigningKey.Master),
        self_signing_key: await c.getCrossSigningKeyId(cryptoApi.CrossSigningKey.SelfSigning),
        device_signed: Boolean(status?.signedByOwner),
    };
}

function setIsolationMode(a) {
    const mode =
        a.mode === "only_signed"
            ? new cryptoApi.OnlySignedDevicesIsolationMode()
            : a.mode === "all"
              ? new cryptoApi.AllDevicesIsolationMode(false)
              : null;
    if (!mode) throw new Error(`unknown isolation mode ${a.mode}; use "all" or "only_signed"`);
    crypto().setDeviceIsolationMode(mode);
    return { mode: a.mode };
}

async function waitRoom(roomId, encrypted, timeoutMs) {
    await until(
        async () => {
            const room = client.getRoom(roomId);
            if (!room || room.getMyMembership() !== "join") return false;
            return !encrypted || (await crypto().isEncryptionEnabledInRoom(roomId));
        },
        timeoutMs,
        `room ${roomId} joined${encrypted ? " and encrypted" : ""}`,
    );
}

async function createRoom(a) {
    const initial_state = a.encrypted
        ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }]
        : [];
    const resp = await client.createRoom({ name: a.name, invite: a.invite || [], initial_state });
    await waitRoom(resp.room_id, Boolean(a.encrypted), a.timeout_ms ?? 30000);
    return { room_id: resp.room_id };
}

async function join(a) {
    await client.joinRoom(a.room_id);
    await until(() => client.getRoom(a.room_id)?.getMyMembership() === "join", a.timeout_ms ?? 30000, "join");
    return { room_id: a.room_id, encrypted: await crypto().isEncryptionEnabledInRoom(a.room_id) };
}

async function invite(a) {
    await client.invite(a.room_id, a.user_id);
    return {};
}

async function sendText(a) {
    const content = { msgtype: a.msgtype || "m.text", body: a.text, "m.mentions": {} };
    if (a.thread_root) {
        content["m.relates_to"] = {
            rel_type: "m.thread",
            event_id: a.thread_root,
            is_falling_back: true,
            "m.in_reply_to": { event_id: a.thread_root },
        };
    }
    const resp = await client.sendEvent(a.room_id, a.thread_root ?? null, "m.room.message", content);
    return { event_id: resp.event_id };
}

async function encryptionInfo(a) {
    const ev = events.get(a.event_id);
    if (!ev) throw new Error(`unknown event ${a.event_id}`);
    const info = await crypto().getEncryptionInfoForEvent(ev);
    if (!info) return null;
    return {
        shield_colour: cryptoApi.EventShieldColour[info.shieldColour],
        shield_reason: info.shieldReason == null ? null : cryptoApi.EventShieldReason[info.shieldReason],
    };
}

async function deviceStatus(a) {
    const c = crypto();
    await c.getUserDeviceInfo([a.user_id], true);
    const s = await c.getDeviceVerificationStatus(a.user_id, a.device_id);
    if (!s) return null;
    return {
        signed_by_owner: s.signedByOwner,
        cross_signing_verified: s.crossSigningVerified,
        locally_verified: s.locallyVerified,
        verified: s.isVerified(),
    };
}

async function devices(a) {
    const map = await crypto().getUserDeviceInfo([a.user_id], true);
    const found = map.get(a.user_id) || new Map();
    return [...found.keys()];
}

function setBlacklistUnverified(a) {
    // AllDevicesIsolationMode + this = Element's "never send to unverified sessions": room keys
    // are withheld (m.room_key.withheld, code m.unverified) from every device not verified.
    crypto().globalBlacklistUnverifiedDevices = Boolean(a.on);
    return { on: Boolean(a.on) };
}

async function crossSignDevice(a) {
    await crypto().crossSignDevice(a.device_id);
    return {};
}

async function newRecoveryKey() {
    const key = await crypto().createRecoveryKeyFromPassphrase();
    return { recovery_key: key.encodedPrivateKey };
}

async function userStatus(a) {
    const s = await crypto().getUserVerificationStatus(a.user_id);
    return {
        known: s.known,
        verified: s.isCrossSigningVerified(),
        was_verified: s.wasCrossSigningVerified(),
        needs_user_approval: s.needsUserApproval,
    };
}

async function stop() {
    if (client) {
        client.stopClient();
    }
    return {};
}

const COMMANDS = {
    login,
    bootstrap_cross_signing: bootstrapCrossSigning,
    own_identity: ownIdentity,
    set_isolation_mode: setIsolationMode,
    create_room: createRoom,
    join,
    invite,
    send: sendText,
    encryption_info: encryptionInfo,
    device_status: deviceStatus,
    devices,
    set_blacklist_unverified: setBlacklistUnverified,
    cross_sign_device: crossSignDevice,
    new_recovery_key: newRecoveryKey,
    user_status: userStatus,
    stop,
};

// --------------------------------------------------------------------------------- loop

const readline = await import("node:readline");
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
    if (!line.trim()) return;
    let req;
    try {
        req = JSON.parse(line);
    } catch (e) {
        send({ id: null, ok: false, error: `bad JSON: ${e.message}` });
        return;
    }
    const fn = COMMANDS[req.cmd];
    if (!fn) {
        send({ id: req.id, ok: false, error: `unknown command ${req.cmd}` });
        return;
    }
    Promise.resolve()
        .then(() => fn(req))
        .then(
            (result) => {
                send({ id: req.id, ok: true, result: result ?? null });
                if (req.cmd === "stop") setImmediate(() => process.exit(0));
            },
            (err) => send({ id: req.id, ok: false, error: String(err?.stack || err) }),
        );
});
rl.on("close", () => {
    client?.stopClient();
    process.exit(0);
});
send({ ready: true, node: process.version });
