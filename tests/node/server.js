// Starts a real CameoDB server (the binary in CAMEODB_BIN, default target/debug/cameodb) on a
// free loopback port with its own data directory, and stops it again.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startServer() {
  const bin = process.env.CAMEODB_BIN
    || path.join(__dirname, '..', '..', 'target', 'debug', 'cameodb');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cameodb-node-'));
  const httpPort = await freePort();
  const clusterPort = await freePort();
  const child = spawn(bin, [
    'serve', '--data-dir', dataDir,
    '--http-addr', `127.0.0.1:${httpPort}`,
    '--cluster-addr', `127.0.0.1:${clusterPort}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`cameodb exited early (${child.exitCode}): ${stderr}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`cameodb did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { startServer };
