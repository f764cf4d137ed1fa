import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { Header, Pax, type HeaderData } from 'tar';

type TarType = NonNullable<HeaderData['type']>;

/** One tar entry to build by hand, hostile or not. */
export interface TarSpec {
  readonly path: string;
  readonly type?: TarType;
  readonly mode?: number;
  readonly data?: string | Buffer;
  readonly linkpath?: string;
  /** The size written in the header (defaults to the data's length). */
  readonly size?: number;
}

const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/** Header (with a pax header when the name needs one) and padded data of one entry. */
export const tarEntry = (e: TarSpec): Buffer => {
  const data = Buffer.from(e.data ?? '');
  const block = Buffer.alloc(512);
  const needPax = new Header({
    path: e.path,
    mode: e.mode ?? 0o644,
    size: e.size ?? data.length,
    type: e.type ?? 'File',
    linkpath: e.linkpath,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
  }).encode(block, 0);
  const pax = needPax ? new Pax({ path: e.path, linkpath: e.linkpath }).encode() : Buffer.alloc(0);
  return Buffer.concat([pax, block, pad(data)]);
};

export const END_OF_TAR = Buffer.alloc(1024);

export const tarOf = (entries: readonly TarSpec[]): Buffer =>
  Buffer.concat([...entries.map(tarEntry), END_OF_TAR]);

/** One zip entry to build by hand; `size` and `crc` may lie. */
export interface ZipSpec {
  readonly name: string | Buffer;
  readonly data?: string | Buffer;
  /** Full unix mode, file type included (0o100644 for a file). */
  readonly mode?: number;
  readonly deflate?: boolean;
  readonly size?: number;
  /** Reuse the local header and data of an earlier entry (an overlapping-entries bomb). */
  readonly sameDataAs?: number;
}

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A zip with unix attributes and UTF-8 names, written byte by byte. */
export const zipOf = (entries: readonly ZipSpec[]): Buffer => {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets: number[] = [];
  let offset = 0;
  entries.forEach((e, i) => {
    const name = Buffer.from(e.name);
    const data = Buffer.from(e.data ?? '');
    const stored = e.deflate === true ? deflateRawSync(data) : data;
    const method = e.deflate === true ? 8 : 0;
    const size = e.size ?? data.length;
    const crc = crc32(data);
    const common = [
      u16(20),
      u16(0x800),
      u16(method),
      u16(0),
      u16(0x21),
      u32(crc),
      u32(stored.length),
      u32(size),
    ];
    if (e.sameDataAs === undefined) {
      const local = Buffer.concat([u32(0x04034b50), ...common, u16(name.length), u16(0), name, stored]);
      offsets[i] = offset;
      locals.push(local);
      offset += local.length;
    } else {
      offsets[i] = offsets[e.sameDataAs] ?? 0;
    }
    const attrs = ((e.mode ?? 0o100644) << 16) >>> 0;
    central.push(
      Buffer.concat([
        u32(0x02014b50),
        u16((3 << 8) | 20),
        ...common,
        u16(name.length),
        u16(0),
        u16(0),
        u16(0),
        u16(0),
        u32(attrs),
        u32(offsets[i] ?? 0),
        name,
      ]),
    );
  });
  const cd = Buffer.concat(central);
  // more entries than 16 bits count: the zip64 end records carry the count
  const zip64 = entries.length > 0xffff;
  const count = zip64 ? 0xffff : entries.length;
  const eocd = Buffer.concat([
    ...(zip64 ? [zip64End(entries.length, cd.length, offset)] : []),
    u32(0x06054b50),
    u16(0),
    u16(0),
    u16(count),
    u16(count),
    u32(cd.length),
    u32(offset),
    u16(0),
  ]);
  return Buffer.concat([...locals, cd, eocd]);
};

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};

/** The zip64 end of central directory record and its locator, for a directory at `cdOffset`. */
const zip64End = (count: number, cdLength: number, cdOffset: number): Buffer =>
  Buffer.concat([
    u32(0x06064b50),
    u64(44),
    u16(45),
    u16(45),
    u32(0),
    u32(0),
    u64(count),
    u64(count),
    u64(cdLength),
    u64(cdOffset),
    u32(0x07064b50),
    u32(0),
    u64(cdOffset + cdLength),
    u32(1),
  ]);

/**
 * A tar.gz of `count` files of `mib` MiB of zeros each, made of gzip members so that building it
 * costs one compression of 1 MiB: `count` × `mib` MiB uncompressed in about 1 KiB per MiB.
 */
export const zerosBomb = (count: number, mib: number, prefix = 'zeros/'): Buffer => {
  const zeros = gzipSync(Buffer.alloc(1024 * 1024), { level: 9 });
  const members: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const header = tarEntry({ path: `${prefix}${String(i).padStart(4, '0')}`, size: mib * 1024 * 1024 });
    members.push(gzipSync(header), ...Array<Buffer>(mib).fill(zeros));
  }
  members.push(gzipSync(END_OF_TAR));
  return Buffer.concat(members);
};
