// The npm `socks` package as an independent client of socksgated.
//   node socks-client.js bind PROXY PORT EXPECT_HOST  -> prints "bound HOST PORT",
//        waits for the remote to connect, prints "remote HOST", echoes one
//        line back through the relay, prints "ok"
//   node socks-client.js udp PROXY PORT DEST_HOST DEST_PORT COUNT
//        UDP ASSOCIATE with createUDPFrame/parseUDPFrame; prints "udp N/COUNT"
const { SocksClient } = require('socks');
const dgram = require('dgram');
const [mode, proxyHost, proxyPort, ...rest] = process.argv.slice(2);
const proxy = { host: proxyHost, port: Number(proxyPort), type: 5 };

async function bind() {
  const info = await new Promise((resolve, reject) => {
    const client = new SocksClient({
      proxy, command: 'bind',
      destination: { host: rest[0], port: 0 },
      timeout: 10000,
    });
    client.on('bound', (i) => console.log(`bound ${i.remoteHost.host} ${i.remoteHost.port}`));
    client.on('established', resolve);
    client.on('error', reject);
    client.connect();
  });
  console.log(`remote ${info.remoteHost.host}`);
  const sock = info.socket;
  sock.once('data', (d) => {
    sock.write(d);
    sock.end();
    console.log('ok');
  });
}

async function udp() {
  const [dhost, dport, count] = [rest[0], Number(rest[1]), Number(rest[2])];
  const udp = dgram.createSocket('udp4');
  await new Promise((r) => udp.bind(0, r));
  const info = await new Promise((resolve, reject) => {
    const client = new SocksClient({
      proxy, command: 'associate',
      destination: { host: '0.0.0.0', port: udp.address().port },
      timeout: 10000,
    });
    client.on('established', resolve);
    client.on('error', reject);
    client.connect();
  });
  let got = 0;
  udp.on('message', (msg) => {
    const f = SocksClient.parseUDPFrame(msg);
    if (f.data.toString() === `hello ${f.data.toString().split(' ')[1]}` && f.remoteHost.port === dport) got++;
  });
  for (let i = 0; i < count; i++) {
    const frame = SocksClient.createUDPFrame({
      remoteHost: { host: dhost, port: dport }, data: Buffer.from(`hello ${i}`),
    });
    udp.send(frame, info.remoteHost.port, info.remoteHost.host);
    await new Promise((r) => setTimeout(r, 20));
  }
  // Every answer, or 10 s: not a fixed wait that a slow machine misses.
  for (let t = 0; t < 200 && got < count; t++) await new Promise((r) => setTimeout(r, 50));
  console.log(`udp ${got}/${count}`);
  info.socket.end();
  udp.close();
  process.exit(got === count ? 0 : 1);
}

(mode === 'bind' ? bind() : udp()).catch((e) => { console.log(`error ${e.message}`); process.exit(1); });
