import type { IncomingMessage } from 'node:http';
import { QuiesceError } from '@quiesce/core';

/** Read a request body up to `limit` bytes (`413 PAYLOAD_TOO_LARGE` past it). */
export async function readRaw(req: IncomingMessage, limit: number, what = 'queued writes'): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new QuiesceError(
      'PAYLOAD_TOO_LARGE',
      `body: ${declared} bytes is over the ${limit}-byte limit for ${what}`,
      {
        field: 'body',
      },
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new QuiesceError('PAYLOAD_TOO_LARGE', `body: over the ${limit}-byte limit for ${what}`, {
        field: 'body',
      });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
