#!/usr/bin/env node
/**
 * A TCP relay that delays every chunk by a fixed time in each direction, keeping order: a
 * stand-in for `tc netem delay` on kernels without sch_netem (test/netns.e2e.test.ts).
 * Usage: node delay_relay.js LISTEN_HOST TARGET_HOST:PORT DELAY_MS; prints "relay listening on
 * HOST:PORT" once bound (port chosen by the kernel).
 */
const net = require('net');
const [listenHost, target, delayArg] = process.argv.slice(2);
const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const delayMs = Number(delayArg);

/** Forward a's data to b after delayMs; timers of equal delay fire in the order they were set. */
function pipeDelayed(a, b) {
  a.on('data', (chunk) => setTimeout(() => b.writable && b.write(chunk), delayMs));
  a.on('end', () => setTimeout(() => b.end(), delayMs));
  a.on('error', () => setTimeout(() => b.destroy(), delayMs));
  a.on('close', () => setTimeout(() => b.destroy(), delayMs + 1));
}

const server = net.createServer((client) => {
  const upstream = net.connect(targetPort, targetHost);
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
});
server.listen(0, listenHost, () => console.log(`relay listening on ${listenHost}:${server.address().port}`));
