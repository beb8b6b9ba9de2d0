/**
 * Just enough protocol-buffers wire format to edit an ONNX file in place: walk a message's fields and
 * rebuild it with some fields replaced. Unchanged fields are copied byte for byte.
 */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export interface Field {
  no: number;
  wire: number;
  /** The value of a varint field (exact up to 2^53, which covers every enum and size this code reads). */
  int: number;
  /** The payload of a length-delimited field; empty otherwise. */
  bytes: Buffer;
  /** The whole field, tag included. */
  raw: Buffer;
}

function readVarint(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const byte = buf[i];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value, i + 1];
  }
  throw new Error(`malformed protobuf: bad varint at byte ${pos}`);
}

export function* fields(buf: Buffer): Generator<Field> {
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, afterTag] = readVarint(buf, pos);
    const no = Math.floor(tag / 8);
    const wire = tag % 8;
    let int = 0;
    let bytes: Buffer = EMPTY;
    if (wire === WIRE_VARINT) {
      [int, pos] = readVarint(buf, afterTag);
    } else if (wire === WIRE_LEN) {
      const [length, dataStart] = readVarint(buf, afterTag);
      pos = dataStart + length;
      if (pos > buf.length) throw new Error(`malformed protobuf: field ${no} runs past the end`);
      bytes = buf.subarray(dataStart, pos);
    } else if (wire === WIRE_I64) {
      pos = afterTag + 8;
    } else if (wire === WIRE_I32) {
      pos = afterTag + 4;
    } else {
      throw new Error(`malformed protobuf: unsupported wire type ${wire} at byte ${start}`);
    }
    yield { no, wire, int, bytes, raw: buf.subarray(start, pos) };
  }
}

const EMPTY = Buffer.alloc(0);

/** The values of a packed repeated varint field. */
export function packedVarints(payload: Buffer): number[] {
  const values: number[] = [];
  let pos = 0;
  while (pos < payload.length) {
    const [value, next] = readVarint(payload, pos);
    values.push(value);
    pos = next;
  }
  return values;
}

export function encodeVarint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

export function varintField(no: number, value: number): Buffer {
  return Buffer.concat([encodeVarint(no * 8 + WIRE_VARINT), encodeVarint(value)]);
}

export function lenField(no: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeVarint(no * 8 + WIRE_LEN), encodeVarint(payload.length), payload]);
}

/** Rebuilds `buf`, replacing each field for which `edit` returns bytes (a whole field, tag included). */
export function rewrite(buf: Buffer, edit: (field: Field) => Buffer | undefined): Buffer {
  const parts: Buffer[] = [];
  let changed = false;
  for (const field of fields(buf)) {
    const replacement = edit(field);
    if (replacement !== undefined && replacement !== field.raw) changed = true;
    parts.push(replacement ?? field.raw);
  }
  return changed ? Buffer.concat(parts) : buf;
}

/** Replaces a length-delimited field by `edit` of its payload; undefined (keep as is) when nothing changed. */
export function nested(field: Field, edit: (payload: Buffer) => Buffer): Buffer | undefined {
  const payload = edit(field.bytes);
  return payload === field.bytes ? undefined : lenField(field.no, payload);
}
