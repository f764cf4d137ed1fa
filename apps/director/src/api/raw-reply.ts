import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** Hijacks `reply`, sends 200 with its headers so far plus `headers`; the caller writes and ends the body. */
export const takeOverReply = (reply: FastifyReply, headers: OutgoingHttpHeaders): ServerResponse => {
  reply.hijack();
  const res = reply.raw;
  const set: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) set[k] = v;
  res.writeHead(200, { ...set, ...headers });
  return res;
};
