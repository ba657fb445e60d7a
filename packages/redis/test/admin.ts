import { REDIS_URL } from '@quiesce/testkit';
import { Redis } from 'ioredis';

/**
 * Terminate, on the server, the connections whose client port is in `ports` (the upstream side of a
 * test's TCP proxy), as a restart or a failover would; returns how many.
 */
export async function terminateConnections(ports: number[]): Promise<number> {
  const admin = new Redis(REDIS_URL);
  try {
    let killed = 0;
    for (const port of ports) {
      killed += Number(
        await admin.call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${port}`, 'SKIPME', 'yes').catch(() => 0),
      );
    }
    return killed;
  } finally {
    admin.disconnect();
  }
}

/** Delete a test's keys (everything under its prefix). */
export async function dropPrefix(prefix: string): Promise<void> {
  const admin = new Redis(REDIS_URL);
  try {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
  } finally {
    admin.disconnect();
  }
}
