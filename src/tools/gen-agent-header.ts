// Writes native/include/stockade-agent.h from src/vm/protocol.ts: the agent's message structs, decoders and encoders.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AGENT_LIMITS, AGENT_PROTOCOL_VERSION, CREATE_FLAGS, GUEST_MESSAGES, GUEST_PATHS, HOST_MESSAGES, MOUNT_FLAGS, MOUNT_TYPES,
  SIGNAL_FLAGS, SPAWN_FLAGS, STREAMS, NET_ROUTE_FLAGS, NET_FAMILIES,
  type FieldKind, type MessageDef,
} from '../vm/protocol';

const lower = (s: string): string => s.toLowerCase();

function defines(prefix: string, table: Readonly<Record<string, number>>): string[] {
  return Object.entries(table).map(([name, value]) => `#define ${prefix}${name} ${value}u`);
}

function structField(name: string, kind: FieldKind): string[] {
  switch (kind) {
    case 'u32': return [`uint32_t ${name};`];
    case 'i32': return [`int32_t ${name};`];
    case 'u64': return [`uint64_t ${name};`];
    case 'blob': return [`const uint8_t *${name};`, `uint32_t ${name}_len;`];
    case 'u32s': return [`const uint32_t *${name};`, `uint32_t ${name}_count;`];
    // Points into the frame: the wire form ends every string with a NUL the decoder checked.
    case 'str': return [`const char *${name};`, `uint32_t ${name}_len;`];
    case 'bytes': return [`const uint8_t *${name};`, `uint32_t ${name}_len;`];
    // NULL-terminated, as execve wants it.
    case 'strs': return [`const char *${name}[STK_AGENT_MAX_STRS + 1];`, `uint32_t ${name}_count;`];
  }
}

function struct(side: string, name: string, def: MessageDef): string {
  const fields = Object.entries(def.fields).flatMap(([f, k]) => structField(f, k));
  const body = fields.length > 0 ? fields.map((f) => `  ${f}`).join('\n') : '  char unused;';
  return `struct stk_agent_${side}_${lower(name)} {\n${body}\n};`;
}

function unsupported(message: string, kind: FieldKind): never {
  throw new Error(`gen-agent-header: ${message}: a ${kind} field in this direction has no C helper`);
}

function decoder(name: string, def: MessageDef): string {
  const reads = Object.entries(def.fields).map(([f, k]) => {
    const call = k === 'strs' ? `stk_rd_strs(&r, m->${f}, &m->${f}_count)`
      : k === 'str' ? `stk_rd_str(&r, &m->${f}, &m->${f}_len)`
        : k === 'bytes' ? `stk_rd_bytes(&r, &m->${f}, &m->${f}_len)`
          : k === 'blob' ? `stk_rd_blob(&r, &m->${f}, &m->${f}_len)`
            : k === 'u32s' ? unsupported(name, k)
              : `stk_rd_${k}(&r, &m->${f})`;
    return `  if (${call} < 0) return "${f}";`;
  });
  return [
    `/* NULL when the payload is a well-formed ${name}, else the name of the field that is not. */`,
    `static inline const char *stk_agent_decode_${lower(name)}(const uint8_t *p, uint32_t n, struct stk_agent_h_${lower(name)} *m)`,
    '{',
    '  struct stk_rd r = { p, n };',
    ...(Object.keys(def.fields).length === 0 ? ['  (void)m;'] : []),
    ...reads,
    '  return r.n == 0 ? NULL : "(end)";',
    '}',
  ].join('\n');
}

function encoder(name: string, def: MessageDef): string {
  const writes = Object.entries(def.fields).map(([f, k]) => {
    const call = k === 'str' ? `stk_wr_str(&w, m->${f})`
      : k === 'bytes' ? `stk_wr_bytes(&w, m->${f}, m->${f}_len)`
        : k === 'strs' ? `stk_wr_strs(&w, m->${f}, m->${f}_count)`
          : k === 'u32s' ? `stk_wr_u32s(&w, m->${f}, m->${f}_count)`
            : k === 'blob' ? unsupported(name, k)
              : `stk_wr_${k}(&w, m->${f})`;
    return `  ${call};`;
  });
  return [
    `/* Writes a whole ${name} frame into buf; its length, or -1 when it does not fit. */`,
    `static inline int32_t stk_agent_encode_${lower(name)}(uint8_t *buf, uint32_t cap, uint32_t id, const struct stk_agent_g_${lower(name)} *m)`,
    '{',
    '  struct stk_wr w = { buf, 0, cap, 0 };',
    ...(Object.keys(def.fields).length === 0 ? ['  (void)m;'] : []),
    `  stk_wr_u32(&w, STK_AGENT_G_${name});`,
    '  stk_wr_u32(&w, id);',
    '  stk_wr_u32(&w, 0);',
    ...writes,
    '  if (w.overflow || w.len - STK_AGENT_FRAME_HEADER > STK_AGENT_MAX_GUEST_PAYLOAD) return -1;',
    '  stk_put_u32(buf + 8, w.len - STK_AGENT_FRAME_HEADER);',
    '  return (int32_t)w.len;',
    '}',
  ].join('\n');
}

const PRIMITIVES = `
static inline uint32_t stk_get_u32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void stk_put_u32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* What is left of a payload; every read checks it first. */
struct stk_rd { const uint8_t *p; uint32_t n; };

static inline int stk_rd_u32(struct stk_rd *r, uint32_t *v)
{
  if (r->n < 4) return -1;
  *v = stk_get_u32(r->p);
  r->p += 4; r->n -= 4;
  return 0;
}

static inline int stk_rd_i32(struct stk_rd *r, int32_t *v)
{
  uint32_t u;
  if (stk_rd_u32(r, &u) < 0) return -1;
  *v = (int32_t)u;
  return 0;
}

static inline int stk_rd_str(struct stk_rd *r, const char **s, uint32_t *len)
{
  uint32_t l;
  if (stk_rd_u32(r, &l) < 0 || l >= r->n) return -1;
  if (r->p[l] != 0 || memchr(r->p, 0, l) != NULL) return -1;
  *s = (const char *)r->p; *len = l;
  r->p += l + 1; r->n -= l + 1;
  return 0;
}

static inline int stk_rd_bytes(struct stk_rd *r, const uint8_t **b, uint32_t *len)
{
  uint32_t l;
  if (stk_rd_u32(r, &l) < 0 || l > r->n || l > STK_AGENT_MAX_CHUNK) return -1;
  *b = r->p; *len = l;
  r->p += l; r->n -= l;
  return 0;
}

static inline int stk_rd_u64(struct stk_rd *r, uint64_t *v)
{
  uint32_t lo, hi;
  if (stk_rd_u32(r, &lo) < 0 || stk_rd_u32(r, &hi) < 0) return -1;
  *v = (uint64_t)hi << 32 | lo;
  return 0;
}

/* A blob is bounded by the frame alone (the plan of a CREATE, the state JSON of a hook). */
static inline int stk_rd_blob(struct stk_rd *r, const uint8_t **b, uint32_t *len)
{
  uint32_t l;
  if (stk_rd_u32(r, &l) < 0 || l > r->n) return -1;
  *b = r->p; *len = l;
  r->p += l; r->n -= l;
  return 0;
}

static inline int stk_rd_strs(struct stk_rd *r, const char **v, uint32_t *count)
{
  uint32_t c, len;
  if (stk_rd_u32(r, &c) < 0 || c > STK_AGENT_MAX_STRS) return -1;
  for (uint32_t i = 0; i < c; i++)
    if (stk_rd_str(r, &v[i], &len) < 0) return -1;
  v[c] = NULL; *count = c;
  return 0;
}

/* A frame being written; overflow is sticky so the writes need no checks of their own. */
struct stk_wr { uint8_t *p; uint32_t len, cap; int overflow; };

static inline void stk_wr_raw(struct stk_wr *w, const void *src, uint32_t n)
{
  if (w->overflow || n > w->cap - w->len) { w->overflow = 1; return; }
  if (n > 0) memcpy(w->p + w->len, src, n);
  w->len += n;
}

static inline void stk_wr_u32(struct stk_wr *w, uint32_t v)
{
  uint8_t b[4];
  stk_put_u32(b, v);
  stk_wr_raw(w, b, 4);
}

static inline void stk_wr_i32(struct stk_wr *w, int32_t v) { stk_wr_u32(w, (uint32_t)v); }

static inline void stk_wr_u64(struct stk_wr *w, uint64_t v)
{
  stk_wr_u32(w, (uint32_t)v);
  stk_wr_u32(w, (uint32_t)(v >> 32));
}

static inline void stk_wr_u32s(struct stk_wr *w, const uint32_t *v, uint32_t n)
{
  if (n > STK_AGENT_MAX_U32S) { w->overflow = 1; return; }
  stk_wr_u32(w, n);
  for (uint32_t i = 0; i < n; i++) stk_wr_u32(w, v[i]);
}

static inline void stk_wr_str(struct stk_wr *w, const char *s)
{
  size_t l = strlen(s);
  if (l > STK_AGENT_MAX_GUEST_STR) l = STK_AGENT_MAX_GUEST_STR;
  stk_wr_u32(w, (uint32_t)l);
  stk_wr_raw(w, s, (uint32_t)l);
  stk_wr_raw(w, "", 1);
}

static inline void stk_wr_bytes(struct stk_wr *w, const uint8_t *b, uint32_t n)
{
  stk_wr_u32(w, n);
  stk_wr_raw(w, b, n);
}
`;

export function renderAgentHeader(): string {
  const hostDefs = Object.entries(HOST_MESSAGES) as [string, MessageDef][];
  const guestDefs = Object.entries(GUEST_MESSAGES) as [string, MessageDef][];
  if (guestDefs.some(([, d]) => Object.values(d.fields).includes('strs'))) {
    throw new Error('gen-agent-header: a guest message with a strs field needs stk_wr_strs');
  }
  return [
    '/* Generated by src/tools/gen-agent-header.ts from src/vm/protocol.ts. Do not edit. */',
    '#ifndef STOCKADE_AGENT_H',
    '#define STOCKADE_AGENT_H',
    '',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '#include <string.h>',
    '',
    `#define STK_AGENT_VERSION ${AGENT_PROTOCOL_VERSION}u`,
    ...defines('STK_AGENT_', AGENT_LIMITS),
    ...defines('STK_AGENT_SPAWN_', SPAWN_FLAGS),
    ...defines('STK_AGENT_MOUNT_', MOUNT_FLAGS),
    ...defines('STK_AGENT_FS_', MOUNT_TYPES),
    ...defines('STK_AGENT_STREAM_', STREAMS),
    ...defines('STK_AGENT_CREATE_', CREATE_FLAGS),
    ...defines('STK_AGENT_SIGNAL_', SIGNAL_FLAGS),
    ...defines('STK_AGENT_NET_ROUTE_', NET_ROUTE_FLAGS),
    ...defines('STK_AGENT_NET_', NET_FAMILIES),
    ...Object.entries(GUEST_PATHS).map(([name, value]) => `#define STK_AGENT_PATH_${name} ${JSON.stringify(value)}`),
    '',
    '/* Tags of what the host sends (H) and what the agent sends (G). */',
    ...hostDefs.map(([n, d]) => `#define STK_AGENT_H_${n} 0x${d.tag.toString(16)}u`),
    ...guestDefs.map(([n, d]) => `#define STK_AGENT_G_${n} 0x${d.tag.toString(16)}u`),
    '',
    '/* Whether a host tag is a stream message (id 0, no reply). */',
    `#define STK_AGENT_H_IS_STREAM(tag) (${hostDefs.filter(([, d]) => d.stream === true).map(([n]) => `(tag) == STK_AGENT_H_${n}`).join(' || ')})`,
    PRIMITIVES,
    ...hostDefs.map(([n, d]) => struct('h', n, d)),
    '',
    ...guestDefs.map(([n, d]) => struct('g', n, d)),
    '',
    ...hostDefs.map(([n, d]) => decoder(n, d)),
    '',
    ...guestDefs.map(([n, d]) => encoder(n, d)),
    '',
    '#endif',
    '',
  ].join('\n');
}

if (require.main === module) {
  const dir = join(__dirname, '..', '..', 'native', 'include');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'stockade-agent.h'), renderAgentHeader());
}
