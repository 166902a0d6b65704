// A raw host/agent frame (tag, id, length, payload), built by hand so tests can lie about any field.
export function frame(tag: number, id: number, payload: Buffer, length = payload.length): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(tag, 0);
  h.writeUInt32LE(id, 4);
  h.writeUInt32LE(length, 8);
  return Buffer.concat([h, payload]);
}
