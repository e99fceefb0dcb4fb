// An independent OCPP 1.6J central system for the gateway's tests: ocpp-rpc in strict mode (its own JSON schemas
// and validator). It prints one JSON line per event on stdout and takes one JSON command per line on stdin.
//
// argv[2]: {"password": "...", "boot": "Accepted"|"Pending"|"Rejected", "interval": 300,
//           "tls": {"key": PEM path, "cert": PEM path, "ca": PEM path, "requestCert": true}}
// events:   {"event": "listening", "port": N} | {"event": "connected", "identity", "protocol", "password"}
//           {"event": "call", "method", "params"} (a call the charge point sent, after strict validation)
//           {"event": "raw", "message"} (every frame received) | {"event": "invalid", "method", "error"}
//           {"event": "result", "id", "result"} | {"event": "error", "id", "code", "message"}
//           {"event": "disconnected", "code"} | {"event": "rejected", "identity", "code"}
// commands: {"cmd": "call", "id", "method", "params"} | {"cmd": "raw", "message"}
//           {"cmd": "set", "boot": "...", "interval": N, "online": bool} | {"cmd": "close"}
'use strict';
const fs = require('fs');
const https = require('https');
const readline = require('readline');
const { RPCServer, createRPCError } = require('ocpp-rpc');

const options = JSON.parse(process.argv[2] || '{}');
const state = { boot: options.boot || 'Accepted', interval: options.interval ?? 300, online: true, nextTx: 1 };
const clients = new Set();
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const now = () => new Date().toISOString();

const server = new RPCServer({ protocols: ['ocpp1.6'], strictMode: true, callTimeoutMs: 5000, pingIntervalMs: 0 });

server.auth((accept, reject, handshake) => {
    const password = handshake.password ? handshake.password.toString('utf8') : null;
    if (!state.online) {
        emit({ event: 'rejected', identity: handshake.identity, code: 503 });
        return reject(503, 'Service unavailable');
    }
    if (options.password !== undefined && password !== options.password) {
        emit({ event: 'rejected', identity: handshake.identity, code: 401 });
        return reject(401, 'Unauthorized');
    }
    accept({ password });
});

server.on('client', (client) => {
    clients.add(client);
    emit({ event: 'connected', identity: client.identity, protocol: client.protocol,
           password: client.session.password });
    client.on('message', ({ message, outbound }) => {
        if (!outbound) emit({ event: 'raw', message: message.toString() });
    });
    client.on('strictValidationFailure', ({ messageId, method, params, result, error, outbound, isCall }) => {
        emit({ event: 'invalid', method, outbound, isCall, error: String(error && error.message) });
    });
    client.on('close', ({ code }) => {
        clients.delete(client);
        emit({ event: 'disconnected', code });
    });
    client.handle(({ method, params }) => {
        emit({ event: 'call', method, params });
        switch (method) {
            case 'BootNotification':
                return { status: state.boot, currentTime: now(), interval: state.interval };
            case 'Heartbeat':
                return { currentTime: now() };
            case 'StatusNotification':
            case 'MeterValues':
                return {};
            case 'Authorize':
                return { idTagInfo: { status: params.idTag === 'BLOCKED' ? 'Blocked' : 'Accepted' } };
            case 'StartTransaction':
                return { transactionId: state.nextTx++,
                         idTagInfo: { status: params.idTag === 'BLOCKED' ? 'Blocked' : 'Accepted' } };
            case 'StopTransaction':
                return params.idTag ? { idTagInfo: { status: 'Accepted' } } : {};
            default:
                throw createRPCError('NotImplemented', `${method} is not handled by the test central system`);
        }
    });
});

async function command(line) {
    const msg = JSON.parse(line);
    if (msg.cmd === 'set') {
        for (const key of ['boot', 'interval', 'online']) if (key in msg) state[key] = msg[key];
        if (msg.online === false) for (const client of clients) client.close({ code: 1001, force: true });
        emit({ event: 'set', id: msg.id });
        return;
    }
    if (msg.cmd === 'close') {
        for (const client of clients) client.close({ code: 1001, force: true });
        return;
    }
    const client = [...clients][0];
    if (!client) {
        emit({ event: 'error', id: msg.id, code: 'NotConnected', message: 'no charge point is connected' });
        return;
    }
    if (msg.cmd === 'raw') {
        client.sendRaw(msg.message);
        return;
    }
    try {
        const result = await client.call(msg.method, msg.params);
        emit({ event: 'result', id: msg.id, result });
    } catch (err) {
        emit({ event: 'error', id: msg.id, code: err.rpcErrorCode || err.name, message: String(err.message) });
    }
}

async function main() {
    let http;
    if (options.tls) {
        http = https.createServer({
            key: fs.readFileSync(options.tls.key), cert: fs.readFileSync(options.tls.cert),
            ca: options.tls.ca ? fs.readFileSync(options.tls.ca) : undefined,
            requestCert: !!options.tls.requestCert, rejectUnauthorized: !!options.tls.requestCert,
            minVersion: 'TLSv1.2',
        });
        http.on('upgrade', server.handleUpgrade);
        await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
    } else {
        http = await server.listen(0, '127.0.0.1');
    }
    emit({ event: 'listening', port: http.address().port });
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => { command(line).catch((err) => emit({ event: 'fatal', message: String(err) })); });
    rl.on('close', () => process.exit(0));
}

main().catch((err) => { emit({ event: 'fatal', message: String(err) }); process.exit(1); });
