#!/usr/bin/env python3
"""How a topic's batches compress on disk: appended against compacted batches (docs/formats/log.md,
"Compressed batches" and "Compacted batches"), from the segment files' headers alone.

For each kind (attribute bit 4: written by compaction, or appended) prints the batches, the
offsets they cover per batch (their records, but for compacted batches of bit 6, whose records
leave gaps: the header's count is their span), the bytes stored and the bytes they would take uncompressed (a zstd frame's
Frame_Content_Size, plus the header and any group trailer), and so the compression each kind
gets. bench/longrun.py --keep leaves a data dir to run it on.

Usage: bench/log_batches.py <log dir (a data dir's log/)> [topic ...]   (default: rollups)"""
import os
import struct
import sys

HEADER = 56
ATTR_COMPACTED = 0x10
ATTR_GROUP = 0x20
CODEC_MASK = 0x7
GROUP_TRAILER = 20
ZSTD_MAGIC = 0xFD2FB528


def frame_content_size(frame):
    """Frame_Content_Size of a zstd frame's header (RFC 8878, 3.1.1.1), or None when absent."""
    if len(frame) < 6 or struct.unpack_from("<I", frame, 0)[0] != ZSTD_MAGIC:
        return None
    fhd = frame[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    at = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        return None
    value = int.from_bytes(frame[at:at + size], "little")
    return value + 256 if size == 2 else value


def scan(path, stats):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + HEADER <= len(data):
        length, = struct.unpack_from("<I", data, pos + 4)
        count, attrs = struct.unpack_from("<IH", data, pos + 40)
        if length < HEADER or pos + length > len(data):
            break  # a torn tail
        trailer = GROUP_TRAILER if attrs & ATTR_GROUP else 0
        plain = length
        if attrs & CODEC_MASK:
            content = frame_content_size(data[pos + HEADER:pos + length - trailer])
            plain = HEADER + (content or 0) + trailer
        s = stats.setdefault("compacted" if attrs & ATTR_COMPACTED else "appended",
                             {"batches": 0, "records": 0, "stored": 0, "plain": 0, "compressed": 0})
        s["batches"] += 1
        s["records"] += count
        s["stored"] += length
        s["plain"] += plain
        s["compressed"] += 1 if attrs & CODEC_MASK else 0
        pos += length


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    log_dir, topics = sys.argv[1], sys.argv[2:] or ["rollups"]
    for topic in topics:
        stats = {}
        base = os.path.join(log_dir, "topics", topic)
        for part in sorted(os.listdir(base)):
            pdir = os.path.join(base, part)
            if not os.path.isdir(pdir):
                continue
            for name in sorted(os.listdir(pdir)):
                if name.endswith(".log"):
                    scan(os.path.join(pdir, name), stats)
        print(f"topic {topic}:")
        print("| batches | kind | offsets covered | per batch | compressed batches | stored MiB | uncompressed MiB "
              "| uncompressed / stored |")
        print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind, s in sorted(stats.items()):
            print(f"| {s['batches']:,} | {kind} | {s['records']:,} | {s['records'] / s['batches']:.1f} | "
                  f"{s['compressed'] / s['batches'] * 100:.0f} % | {s['stored'] / 2**20:,.1f} | "
                  f"{s['plain'] / 2**20:,.1f} | {s['plain'] / max(1, s['stored']):.2f}x |")


if __name__ == "__main__":
    main()
