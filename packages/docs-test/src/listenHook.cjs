// Preloaded (`node --require`) into every README example the docs test runs: an example's natural
// `app.listen(3000)` binds 127.0.0.1 on an ephemeral port instead (tests never take fixed ports), and
// the real port is reported to the test over the IPC channel.
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function docsTestListen(...args) {
  const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  const first = args[0];
  const isPort =
    first === undefined ||
    first === null ||
    typeof first === 'number' ||
    (typeof first === 'string' && /^\d+$/.test(first)) ||
    (typeof first === 'object' && !('fd' in first) && !('path' in first) && !('_handle' in first));
  if (!isPort) return listen.apply(this, callback ? [...args, callback] : args);
  this.once('listening', () => {
    const address = this.address();
    if (process.send && address && typeof address === 'object') {
      process.send({ docsTestListening: address.port });
    }
  });
  return callback ? listen.call(this, 0, '127.0.0.1', callback) : listen.call(this, 0, '127.0.0.1');
};

// The IPC channel must not keep a program that finishes alive.
if (process.channel) process.channel.unref();
