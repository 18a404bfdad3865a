"""Rewrites a version 2 forecast checkpoint as version 3, both read and written from
docs/formats/forecast-checkpoint.md alone (zstd by its command-line tool): how the seed
corpus/forecast_checkpoint/v3-one-series-with-state was made from v2-one-series-with-state.

    python3 fuzz/forecast_checkpoint_v3_seed.py V2_FILE > V3_FILE
"""
import struct, subprocess, sys, zlib, tempfile, os

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def zigzag(v):
    return ((v << 1) ^ (v >> 63)) & ((1 << 64) - 1)

class R:
    def __init__(self, b): self.b, self.at = b, 0
    def get(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.at); self.at += struct.calcsize("<" + fmt); return v[0]
    def raw(self, n):
        v = self.b[self.at:self.at + n]; self.at += n; return v

src = open(sys.argv[1], "rb").read()
assert src[:8] == b"MAREFCST" and struct.unpack_from("<I", src, 8)[0] == 2
r = R(src[24:])
body = bytearray()
for _ in range(3): body += struct.pack("<I", r.get("I"))
parts = r.get("I"); body += struct.pack("<I", parts)
for _ in range(parts): body += struct.pack("<q", r.get("q"))
n = r.get("Q"); body += struct.pack("<Q", n)
for _ in range(n):
    sensor = r.get("Q"); fl = r.get("H"); field = r.raw(fl); partition = r.get("i")
    body += struct.pack("<QH", sensor, fl) + field + struct.pack("<i", partition)
    numbers, shape = [], bytearray()
    first = r.get("q"); nv = r.get("I")
    shape += struct.pack("<qI", first, nv)
    numbers += [r.raw(8) for _ in range(nv)]
    for _ in range(2):
        l = r.get("I"); shape += struct.pack("<I", l) + r.raw(l)
    has = r.get("B"); shape += bytes([has])
    if has:
        shape += struct.pack("<qqq", r.get("q"), r.get("q"), r.get("q")) + bytes([r.get("B")])
        numbers += [r.raw(8) for _ in range(4)]
        books, leads = r.get("I"), r.get("I"); shape += struct.pack("<II", books, leads)
        for _ in range(books * leads):
            ne = r.get("I"); shape += varint(ne); prev = None
            for i in range(ne):
                o = r.get("q"); numbers.append(r.raw(8))
                shape += varint(zigzag(o)) if prev is None else varint(o - prev); prev = o
        np_ = r.get("I"); shape += struct.pack("<I", np_)
        for _ in range(np_):
            shape += struct.pack("<q", r.get("q")); numbers += [r.raw(8) for _ in range(books * leads)]
    record = struct.pack("<I", len(numbers)) + bytes(nb[k] for k in range(8) for nb in numbers) + bytes(shape)
    with tempfile.NamedTemporaryFile(delete=False) as t:
        t.write(record)
    packed = subprocess.run(["zstd", "-q", "-c", t.name], check=True, capture_output=True).stdout
    os.unlink(t.name)
    body += struct.pack("<I", len(packed)) + packed
assert r.at == len(r.b)
sys.stdout.buffer.write(b"MAREFCST" + struct.pack("<IQI", 3, len(body), zlib.crc32(body)) + bytes(body))
